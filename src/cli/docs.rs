//! The installed documentation made from the sources it describes (issue 19): `faxgate(8)` and
//! one page per verb from the clap definitions (clap_mangen), bash/zsh/fish completions from the
//! same definitions (clap_complete), and `faxgate.toml(5)` from the commented appliance config
//! `firmware-config/faxgate.toml` — the one place every key is documented with its default — so
//! the page and the file cannot disagree.
//!
//! `faxgate generate-docs DIR` writes them all; the Debian package ships the copies
//! under `systemd/debian/`, and `tests/debian_package.rs` fails when those copies differ from
//! what this module makes from the current sources (see README "Debian package" for why they
//! are checked in rather than made by a build step: `cargo deb` stays one command, also when
//! cross-building, where the built binary cannot run on the build host).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;

use super::Cli;

/// The commented appliance configuration, as installed in `/etc/faxgate/faxgate.toml`.
pub const FIRMWARE_CONFIG: &str = include_str!("../../firmware-config/faxgate.toml");

/// Section of the command's pages: `faxgate` is a system daemon and its administration tool.
const MAN_SECTION: &str = "8";

/// Largest documented config file this parser accepts (ours is ~20 KiB): a limit all the same,
/// since the generator also reads files an operator names in tests.
const MAX_CONFIG_DOC_BYTES: usize = 1 << 20;

/// One generated file: its path relative to the output directory, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// E.g. `man/faxgate.8`, `completions/faxgate.bash`.
    pub path: String,
    /// The file's bytes.
    pub contents: Vec<u8>,
}

/// Why documentation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    /// The documented config is larger than [`MAX_CONFIG_DOC_BYTES`].
    #[error("documented config is {0} bytes, more than the {MAX_CONFIG_DOC_BYTES} accepted")]
    TooLarge(usize),
    /// Rendering failed (clap_mangen writes to a `Vec`, so this is an internal error).
    #[error("rendering {page}: {source}")]
    Render {
        /// The page.
        page: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The output directory could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Every generated file, in a fixed order; pure (no clock: pages carry no date, so that the
/// checked-in copies are reproducible).
pub fn generate_all() -> Result<Vec<Generated>, DocsError> {
    let mut out = man_pages()?;
    out.push(Generated {
        path: "man/faxgate.toml.5".into(),
        contents: config_man_page(FIRMWARE_CONFIG)?.into_bytes(),
    });
    out.extend(completions());
    Ok(out)
}

/// `faxgate(8)` and `faxgate-VERB(8)` for every visible verb.
pub fn man_pages() -> Result<Vec<Generated>, DocsError> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let version = env!("CARGO_PKG_VERSION");
    let render = |c: clap::Command, name: String| -> Result<Generated, DocsError> {
        let man = clap_mangen::Man::new(c)
            .section(MAN_SECTION)
            .source(format!("faxgate {version}"))
            .manual("faxgate manual");
        let mut buf = Vec::new();
        man.render(&mut buf).map_err(|source| DocsError::Render {
            page: name.clone(),
            source,
        })?;
        Ok(Generated {
            path: format!("man/{name}.{MAN_SECTION}"),
            contents: buf,
        })
    };
    // Every visible command at any depth (`faxgate-queue-list(8)`), as the SUBCOMMANDS lists
    // name them; `build` gave each its display name. Depth-first, bounded by clap's tree.
    let mut out = Vec::new();
    let mut todo = vec![cmd];
    while let Some(c) = todo.pop() {
        let name = c.get_display_name().unwrap_or(c.get_name()).to_string();
        todo.extend(c.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        out.push(render(c, name)?);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// bash, zsh and fish completions from the clap definitions.
pub fn completions() -> Vec<Generated> {
    use clap_complete::Shell;
    [
        (Shell::Bash, "completions/faxgate.bash"),
        (Shell::Zsh, "completions/_faxgate"),
        (Shell::Fish, "completions/faxgate.fish"),
    ]
    .into_iter()
    .map(|(shell, path)| {
        let mut cmd = Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "faxgate", &mut buf);
        Generated {
            path: path.into(),
            contents: buf,
        }
    })
    .collect()
}

/// One documented key (or several keys sharing one comment) in a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocKey {
    /// The key lines as written, e.g. `listen = ["0.0.0.0:25", "[::]:25"]`; a key shown
    /// commented out (optional, absent by default) keeps no `#`.
    pub lines: Vec<String>,
    /// The key names, in order.
    pub names: Vec<String>,
    /// The comment above them, one string per comment line, `#` stripped.
    pub text: Vec<String>,
}

/// A `[section]` or `[[section]]` of the documented config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSection {
    /// As written, e.g. `[[modem]]`.
    pub header: String,
    /// Comment lines just above the header.
    pub intro: Vec<String>,
    /// Its keys in file order.
    pub keys: Vec<DocKey>,
}

/// The documented config: the file's opening comment and its sections.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDoc {
    /// The comment block before the first section.
    pub preamble: Vec<String>,
    /// Sections in file order.
    pub sections: Vec<DocSection>,
}

/// A `key = value` line (the key a bare TOML key: letters, digits, `_`, `-`).
fn key_of(line: &str) -> Option<&str> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(k)
}

/// Parses the commented config: which comment documents which key. Never panics; text that is
/// neither a comment, a header nor a key line (a multi-line array's continuation) is kept with
/// the key above it.
pub fn parse_config_doc(text: &str) -> Result<ConfigDoc, DocsError> {
    if text.len() > MAX_CONFIG_DOC_BYTES {
        return Err(DocsError::TooLarge(text.len()));
    }
    let mut doc = ConfigDoc::default();
    let mut comments: Vec<String> = Vec::new();
    // Whether the last non-blank line was a key line: a key directly below a key shares its
    // comment (`max_connections` / `max_connections_per_ip`).
    let mut after_key = false;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            after_key = false;
            continue;
        }
        if line.starts_with('[') {
            let intro = if doc.sections.is_empty() && doc.preamble.is_empty() {
                // The file's opening block is the preamble, not the first section's intro.
                doc.preamble = std::mem::take(&mut comments);
                Vec::new()
            } else {
                std::mem::take(&mut comments)
            };
            doc.sections.push(DocSection {
                header: line.to_string(),
                intro,
                keys: Vec::new(),
            });
            after_key = false;
            continue;
        }
        // A commented-out example key (`# tls_ca_file = "…"`: one space, then a line that is
        // TOML by itself) documents an optional key, absent by default.
        let line = match line.strip_prefix('#') {
            Some(c) => {
                let c = c.strip_prefix(' ').unwrap_or(c);
                let example = !c.starts_with(char::is_whitespace)
                    && key_of(c).is_some()
                    && c.parse::<toml_edit::DocumentMut>().is_ok();
                if !example {
                    comments.push(c.to_string());
                    after_key = false;
                    continue;
                }
                c
            }
            None => line,
        };
        let Some(section) = doc.sections.last_mut() else {
            continue;
        };
        let shares = after_key && comments.is_empty();
        match (key_of(line), section.keys.last_mut()) {
            (Some(k), Some(last)) if shares => {
                last.lines.push(line.to_string());
                last.names.push(k.to_string());
            }
            (Some(k), _) => section.keys.push(DocKey {
                lines: vec![line.to_string()],
                names: vec![k.to_string()],
                text: std::mem::take(&mut comments),
            }),
            (None, Some(last)) => last.lines.push(line.to_string()),
            (None, None) => {}
        }
        after_key = true;
    }
    Ok(doc)
}

/// Escapes text for roff: backslashes, and a leading `.` or `'` that would read as a request.
fn roff(s: &str) -> String {
    let s = s.replace('\\', "\\e").replace('-', "\\-");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

/// `faxgate.toml(5)` from the commented config `text`.
pub fn config_man_page(text: &str) -> Result<String, DocsError> {
    let doc = parse_config_doc(text)?;
    let mut m = String::new();
    let _ = writeln!(
        m,
        ".TH FAXGATE.TOML 5 \"\" \"faxgate {}\" \"faxgate manual\"",
        env!("CARGO_PKG_VERSION")
    );
    m.push_str(".SH NAME\nfaxgate.toml \\- faxgate configuration file\n");
    m.push_str(".SH SYNOPSIS\n/etc/faxgate/faxgate.toml\n");
    m.push_str(".SH DESCRIPTION\n");
    paragraph(&mut m, &doc.preamble);
    m.push_str(
        ".PP\nThe sections and keys follow, each with the value the appliance configuration \
         sets (marked \\(lqappliance:\\(rq where it differs from the default) and its meaning.\n",
    );
    for s in &doc.sections {
        let _ = writeln!(m, ".SH \"{}\"", roff(&s.header).replace('"', "\\(dq"));
        paragraph(&mut m, &s.intro);
        for k in &s.keys {
            m.push_str(".TP\n");
            for (i, l) in k.lines.iter().enumerate() {
                if i > 0 {
                    m.push_str(".TQ\n");
                }
                m.push_str(&tag(l));
            }
            paragraph(&mut m, &k.text);
        }
    }
    m.push_str(
        ".SH ENVIRONMENT\nAny key can be set from the environment as \
         \\fBFAXGATE_\\fISECTION\\fB__\\fIKEY\\fR.\n",
    );
    m.push_str(
        ".SH FILES\n.TP\n/etc/faxgate/faxgate.toml\nThe configuration \\fBfaxgate run\\fR \
         reads (the systemd unit names it).\n.TP\n/etc/faxgate/modems/\nModem profiles.\n",
    );
    m.push_str(".SH SEE ALSO\n\\fBfaxgate\\fR(8), \\fBfaxgate\\-check\\-config\\fR(8), \\fBfaxgate\\-setup\\fR(8)\n");
    Ok(m)
}

/// A key line as a `.TP` tag: the key in bold, the value as written (quotes kept).
fn tag(line: &str) -> String {
    match key_of(line) {
        Some(k) => {
            let rest = line.split_once('=').map_or("", |(_, v)| v);
            format!("\\fB{}\\fR = {}\n", roff(k), roff(rest.trim()))
        }
        None => format!("{}\n", roff(line)),
    }
}

/// Comment lines as roff text: filled as a paragraph, except that an indented line (a list
/// or continuation in the file) starts a new line as it does in the file, and an empty
/// comment line leaves a blank line.
fn paragraph(m: &mut String, lines: &[String]) {
    for l in lines {
        if l.is_empty() {
            m.push_str(".sp\n");
        } else {
            m.push_str(&roff(l));
            m.push('\n');
        }
    }
}

/// `faxgate generate-docs DIR`: writes every generated file under `dir`.
pub fn main(dir: &Path) -> ExitCode {
    let files = match generate_all() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("faxgate: {}", super::chain(&e));
            return ExitCode::FAILURE;
        }
    };
    for f in files {
        let path = dir.join(&f.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, &f.contents));
        if let Err(source) = written {
            let e = DocsError::Write {
                path: path.display().to_string(),
                source,
            };
            eprintln!("faxgate: {}", super::chain(&e));
            return ExitCode::FAILURE;
        }
        println!("{}", path.display());
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of the appliance config, as toml_edit reads it, is documented in the page,
    /// with the comment above it: the page and the file agree.
    #[test]
    fn every_key_of_the_firmware_config_is_in_the_man_page_with_its_comment() {
        let doc = parse_config_doc(FIRMWARE_CONFIG).unwrap();
        let page = config_man_page(FIRMWARE_CONFIG).unwrap();
        let parsed: toml_edit::DocumentMut = FIRMWARE_CONFIG.parse().unwrap();
        let mut seen = 0;
        for (section, item) in parsed.iter() {
            let tables: Vec<&toml_edit::Table> = match item {
                toml_edit::Item::Table(t) => vec![t],
                toml_edit::Item::ArrayOfTables(a) => a.iter().collect(),
                _ => panic!("top-level key {section} outside a section"),
            };
            for t in tables {
                for (key, _) in t.iter() {
                    // Documented by its own comment, or (a table documented as a whole, like
                    // [[route]]) by its section's opening comment.
                    let documented = doc.sections.iter().any(|s| {
                        s.header.trim_matches(['[', ']']) == section
                            && (s.keys.iter().any(|k| {
                                k.names.iter().any(|n| n == key)
                                    && !k.text.is_empty()
                                    && k.text.iter().all(|l| page.contains(&roff(l)))
                            }) || s.intro.iter().any(|l| {
                                l.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                                    .any(|w| w == key)
                                    && page.contains(&roff(l))
                            }))
                    });
                    assert!(
                        documented,
                        "[{section}] {key} is not documented in the page"
                    );
                    assert!(
                        page.contains(&format!("\\fB{}\\fR = ", roff(key))),
                        "{section}.{key}"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen > 80, "only {seen} keys seen");
    }

    #[test]
    fn a_commented_out_example_key_is_documented_as_optional() {
        let doc = parse_config_doc(FIRMWARE_CONFIG).unwrap();
        let relay = doc.sections.iter().find(|s| s.header == "[relay]").unwrap();
        let ca = relay
            .keys
            .iter()
            .find(|k| k.names == ["tls_ca_file"])
            .expect("tls_ca_file documented");
        assert!(ca.text.iter().any(|l| l.contains("Extra CA certificate")));
    }

    #[test]
    fn keys_without_their_own_comment_share_the_one_above() {
        let doc =
            parse_config_doc("[a]\n# Both limits.\nx = 1\ny = 2\n\n# Other.\nz = 3\n").unwrap();
        let keys = &doc.sections[0].keys;
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].names, ["x", "y"]);
        assert_eq!(keys[0].text, ["Both limits."]);
        assert_eq!(keys[1].names, ["z"]);
    }

    #[test]
    fn roff_requests_in_comments_are_escaped() {
        let page = config_man_page("# .so /etc/passwd\n[a]\n# 'x \\ y\nk = 1\n").unwrap();
        assert!(page.contains("\\&.so /etc/passwd"));
        assert!(page.contains("\\&'x \\e y"));
    }

    #[test]
    fn the_parser_never_panics_and_refuses_oversized_input() {
        for t in [
            "",
            "[",
            "=",
            "# = x",
            "[a]\n=\n#=\n  \n",
            "x = 1\n[b]\n\"q\" = 2",
        ] {
            let _ = config_man_page(t).unwrap();
        }
        assert!(matches!(
            parse_config_doc(&"#".repeat(MAX_CONFIG_DOC_BYTES + 1)),
            Err(DocsError::TooLarge(_))
        ));
    }

    #[test]
    fn one_page_per_visible_verb_and_three_completions() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|g| g.path.as_str()).collect();
        for p in [
            "man/faxgate.8",
            "man/faxgate-queue.8",
            "man/faxgate-setup.8",
        ] {
            assert!(names.contains(&p), "{p} missing from {names:?}");
        }
        let bash = &completions()[0];
        assert!(String::from_utf8_lossy(&bash.contents).contains("queue"));
    }
}
