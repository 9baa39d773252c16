//! The crate's structure (issue 15 acceptance): no import circle between the top-level modules
//! (the children of `crate`: `app`, `config`, `spool`, …).
//!
//! The check reads `src/**/*.rs`, collects every `crate::<module>` reference outside comments
//! and test code (`use` items and paths alike, `use crate::{a, b::c}` groups included), and
//! builds the graph "module A's code names module B". A circle in it fails the test, naming
//! the modules and the first place each edge was seen.
//!
//! Test code is left out because tests may reach anywhere: a file's rest after a
//! `#[cfg(test)]` line followed by `mod tests {`, and the files of `#[cfg(test)] mod x;`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges known to close a circle today, each with the change that removes it. The test fails
/// on any other circle, and on an entry here whose edge is gone (delete the entry then, so
/// that the circle cannot come back unnoticed).
/// Edges allowed to close a circle, with why and when each goes: none today. An entry whose
/// edge disappears fails the test, so the list cannot go stale.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: the `mod` items of `src/lib.rs`.
fn top_level_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let name = l.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The directory holding the child modules of the module in `file`.
fn child_dir(file: &Path) -> PathBuf {
    let parent = file.parent().unwrap();
    match file.file_name().and_then(|n| n.to_str()) {
        Some("mod.rs" | "lib.rs" | "main.rs") => parent.to_path_buf(),
        _ => parent.join(file.file_stem().unwrap()),
    }
}

/// Files that are test modules (`#[cfg(test)]` then `mod x;`).
fn test_module_files(file: &Path, text: &str) -> Vec<PathBuf> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut out = Vec::new();
    for w in lines.windows(2) {
        if w[0] == "#[cfg(test)]"
            && let Some(name) = w[1]
                .strip_prefix("pub ")
                .unwrap_or(w[1])
                .strip_prefix("mod ")
                .and_then(|s| s.strip_suffix(';'))
        {
            let dir = child_dir(file);
            out.push(dir.join(format!("{}.rs", name.trim())));
            out.push(dir.join(name.trim()).join("mod.rs"));
        }
    }
    out
}

/// The code of `text` without its test module (everything after a `#[cfg(test)]` line followed
/// by `mod tests {`) and without `//` comments (doc links are not dependencies). Lines keep
/// their numbers.
fn code_lines(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if l.trim() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|n| n.trim().starts_with("mod tests"))
        {
            break;
        }
        let code = match l.find("//") {
            // `//` inside a string literal (a URL) is rare in this code base and only ever
            // hides text after it, never invents a reference.
            Some(at) => &l[..at],
            None => l,
        };
        out.push(code.to_owned());
    }
    out
}

/// The top-level module names referred to as `crate::name` (or inside `crate::{…}`) in `code`,
/// with the line (0-based index into `code`) of each.
fn references(code: &[String]) -> Vec<(String, usize)> {
    let joined: String = code.iter().map(|l| format!("{l}\n")).collect();
    let line_of = |at: usize| joined[..at].matches('\n').count();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(rel) = joined[from..].find("crate::") {
        let at = from + rel;
        from = at + "crate::".len();
        // `faxgate_crate::x` or `my_crate::x` are not us.
        if joined[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        let rest = &joined[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first name of each item at depth one.
            let mut depth = 1;
            let mut item_start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let name = ident(&group[item_start..i]);
                        if !name.is_empty() {
                            out.push((name, line_of(from + 1 + item_start)));
                        }
                        item_start = i + 1;
                        if c == '}' {
                            break;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push((name, line_of(at)));
            }
        }
    }
    out
}

/// Edge (from, to) → first place seen (`path:line`).
type Graph = BTreeMap<(String, String), String>;

fn crate_graph() -> Graph {
    let root = src();
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let modules = top_level_modules(&lib);
    assert!(
        modules.len() >= 10,
        "src/lib.rs lists too few modules: {modules:?}"
    );
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|p| {
            let t = std::fs::read_to_string(&p).unwrap();
            (p, t)
        })
        .collect();
    let tests: BTreeSet<PathBuf> = texts
        .iter()
        .flat_map(|(p, t)| test_module_files(p, t))
        .collect();
    let mut graph = Graph::new();
    for (path, text) in &texts {
        let rel = path.strip_prefix(&root).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if !modules.contains(&top) || tests.contains(path) {
            continue; // lib.rs, main.rs, test files
        }
        let code = code_lines(text);
        for (to, line) in references(&code) {
            if to != top && modules.contains(&to) {
                graph
                    .entry((top.clone(), to))
                    .or_insert_with(|| format!("src/{}:{}", rel.display(), line + 1));
            }
        }
    }
    graph
}

/// A circle in the graph of `edges`, as the list of its modules (first repeated at the end),
/// or `None`.
fn find_cycle<'a>(edges: impl Iterator<Item = (&'a str, &'a str)>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    // Depth-first search with an explicit stack (no recursion): 0 unseen, 1 on the path, 2 done.
    let mut state: BTreeMap<&str, u8> = next.keys().map(|k| (*k, 0)).collect();
    for &start in next.keys() {
        if state[start] != 0 {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        state.insert(start, 1);
        while let Some((node, i)) = path.last().copied() {
            match next[node].get(i) {
                Some(&to) => {
                    path.last_mut().unwrap().1 += 1;
                    match state[to] {
                        0 => {
                            state.insert(to, 1);
                            path.push((to, 0));
                        }
                        1 => {
                            let from = path.iter().position(|(n, _)| *n == to).unwrap();
                            let mut cycle: Vec<String> =
                                path[from..].iter().map(|(n, _)| n.to_string()).collect();
                            cycle.push(to.to_string());
                            return Some(cycle);
                        }
                        _ => {}
                    }
                }
                None => {
                    state.insert(node, 2);
                    path.pop();
                }
            }
        }
    }
    None
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = crate_graph();
    // The scanner must see the crate as it is (a broken scanner finds no circle either).
    for edge in [("cli", "spool"), ("app", "spool"), ("spool", "job")] {
        assert!(
            graph.contains_key(&(edge.0.to_owned(), edge.1.to_owned())),
            "the scan missed {} → {}: {graph:#?}",
            edge.0,
            edge.1
        );
    }
    let allowed: BTreeSet<(&str, &str)> = ALLOWED.iter().map(|(a, b, _)| (*a, *b)).collect();
    let stale: Vec<_> = allowed
        .iter()
        .filter(|(a, b)| !graph.contains_key(&(a.to_string(), b.to_string())))
        .collect();
    assert!(
        stale.is_empty(),
        "these allowed edges are gone: delete them from ALLOWED in tests/structure.rs: {stale:?}"
    );
    let edges = graph
        .keys()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .filter(|e| !allowed.contains(e));
    if let Some(cycle) = find_cycle(edges) {
        let places: Vec<String> = cycle
            .windows(2)
            .map(|w| {
                let at = &graph[&(w[0].clone(), w[1].clone())];
                format!("  {} → {} (first at {at})", w[0], w[1])
            })
            .collect();
        panic!(
            "import circle between modules: {}\n{}",
            cycle.join(" → "),
            places.join("\n")
        );
    }
}

#[test]
fn the_scanner_reads_groups_skips_comments_and_tests_and_finds_circles() {
    let text = "use crate::{config::Config, spool::{Spool, JobId}, job};\n\
                // crate::app in a comment\n\
                /// [`crate::smtp`] in a doc\n\
                fn f() { crate::image::Page::new(); my_crate::fax::x(); }\n\
                #[cfg(test)]\n\
                mod tests {\n\
                    use crate::delivery;\n\
                }\n";
    let refs = references(&code_lines(text));
    let names: Vec<&str> = refs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["config", "spool", "job", "image"]);
    assert_eq!(refs[3].1, 3, "line numbers are kept");

    let lib = "pub mod app;\nmod job;\n// mod not;\npub mod spool;\n";
    assert_eq!(
        top_level_modules(lib).into_iter().collect::<Vec<_>>(),
        ["app", "job", "spool"]
    );
    let tests = test_module_files(Path::new("/s/spool/mod.rs"), "#[cfg(test)]\nmod tests;\n");
    assert!(tests.contains(&PathBuf::from("/s/spool/tests.rs")));

    assert_eq!(find_cycle([("a", "b"), ("b", "c")].into_iter()), None);
    assert_eq!(
        find_cycle([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")].into_iter()),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        find_cycle([("x", "y"), ("y", "y")].into_iter()),
        Some(vec!["y".into(), "y".into()])
    );
}
