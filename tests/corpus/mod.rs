//! The test corpus: built once by `tests/corpus/make-corpus.sh` (Debian tools only) into
//! `target/test-corpus/<hash of the script>/`, so reruns are free and a changed script
//! rebuilds. Concurrent test processes build into private directories and rename.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::common::require_tool;

/// Every tool the corpus script runs, with its Debian package.
pub const TOOLS: [(&str, &str); 9] = [
    ("perl", "perl"),
    ("gs", "ghostscript"),
    ("/usr/bin/convert", "imagemagick"),
    ("pnmtotiff", "netpbm"),
    ("pbmmake", "netpbm"),
    ("pnmpad", "netpbm"),
    ("pnmcat", "netpbm"),
    ("tiffcp", "libtiff-tools"),
    ("tiffinfo", "libtiff-tools"),
];

/// The corpus directory (built on first use), with `TEXT_PAGES` text pages.
pub fn corpus_with(text_pages: u32) -> PathBuf {
    for (bin, pkg) in TOOLS {
        require_tool(bin, pkg);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("tests/corpus/make-corpus.sh");
    let body = std::fs::read(&script).expect("corpus script");
    let hash = Sha256::digest(&body);
    let key: String = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
    let dir = root
        .join("target/test-corpus")
        .join(format!("{key}-{text_pages}"));
    if dir.join("edge-mmr.tif").is_file() {
        return dir;
    }
    let tmp = root.join("target/test-corpus").join(format!(
        "tmp-{key}-{text_pages}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("corpus dir");
    let out = Command::new("bash")
        .arg(&script)
        .env("OUT", &tmp)
        .env("TEXT_PAGES", text_pages.to_string())
        .output()
        .expect("run make-corpus.sh");
    assert!(
        out.status.success(),
        "make-corpus.sh failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another process finished first: use theirs.
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert!(dir.join("edge-mmr.tif").is_file());
    dir
}

/// The small corpus `cargo test` uses (4 text pages + 2 photo pages per resolution, edges).
pub fn corpus() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| corpus_with(4))
}
