//! `cargo bench --bench codec`: pages per second for decoding and encoding MH, MR and MMR on
//! the text-fine and photo-fine corpus, faxgate next to libtiff measured in the same run
//! (`tests/bench/libtiff_codec.c`, compiled here with `gcc -ltiff`), then the peak RSS of
//! `faxgate convert` next to `tiffcp` on the same file (`/usr/bin/time -v`).
//!
//! Debian packages: libtiff-dev, gcc, time, plus the corpus tools (see make-corpus.sh).
//! `BENCH_TEXT_PAGES` (default 50) and `BENCH_REPS` (default 5; the best repetition counts).

#[path = "../common/mod.rs"]
mod common;
#[path = "../corpus/mod.rs"]
mod corpus;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use faxgate::image::Page;
use faxgate::image::codec::Coding;
use faxgate::image::tiff::{self, Limits, Profile, Writer};

fn env_u32(k: &str, d: u32) -> u32 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

fn build_harness() -> PathBuf {
    common::require_tool("gcc", "gcc");
    assert!(
        Path::new("/usr/include/x86_64-linux-gnu/tiffio.h").exists()
            || Path::new("/usr/include/tiffio.h").exists(),
        "install libtiff-dev"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench-libtiff_codec");
    let st = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(root.join("tests/bench/libtiff_codec.c"))
        .arg("-ltiff")
        .status()
        .expect("gcc");
    assert!(st.success(), "gcc failed (Debian: gcc, libtiff-dev)");
    out
}

/// Best pages/s of libtiff over `reps` runs of the harness.
fn libtiff(bin: &Path, args: &[&str]) -> (f64, u64) {
    let out = Command::new(bin).args(args).output().expect("run harness");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut best = 0.0f64;
    let mut bytes = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let pages: f64 = f[1].parse().unwrap();
        let secs: f64 = f[3].parse().unwrap();
        bytes = f[5].parse().unwrap();
        best = best.max(pages / secs);
    }
    (best, bytes)
}

fn best_of(reps: u32, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut n = 0;
    for _ in 0..reps {
        let t = Instant::now();
        n = f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    (n as f64 / best, n)
}

fn encode_all(pages: &[Page], coding: Coding) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::with_capacity(8 << 20)), Profile::F(coding)).unwrap();
    for p in pages {
        w.write_page(p).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn peak_rss_kb(cmd: &mut Command) -> u64 {
    let out = cmd.output().expect("/usr/bin/time");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("time -v output")
}

fn main() {
    let text_pages = env_u32("BENCH_TEXT_PAGES", 50);
    let reps = env_u32("BENCH_REPS", 5);
    let dir = corpus::corpus_with(text_pages);
    let harness = build_harness();
    println!(
        "corpus: {} ({text_pages} text pages, 2 photo pages per resolution); best of {reps}",
        dir.display()
    );
    println!(
        "{:<11} {:<7} {:<4} {:>12} {:>12} {:>7}",
        "set", "op", "code", "faxgate p/s", "libtiff p/s", "ratio"
    );
    let mut worst = f64::MAX;
    for set in ["text-fine", "photo-fine"] {
        let raw_path = dir.join(format!("{set}-raw.tif"));
        let raw = tiff::read_bytes(&std::fs::read(&raw_path).unwrap(), Limits::default()).unwrap();
        for (name, coding) in [
            ("mh", Coding::Mh),
            ("mr", Coding::Mr { k: 4 }),
            ("mmr", Coding::Mmr),
        ] {
            let file = dir.join(format!("{set}-{name}.tif"));
            let data = std::fs::read(&file).unwrap();
            // Ours and libtiff's alternate, one repetition each, so that load from other
            // processes on the machine hits both alike; the best repetition of each counts.
            let (mut ours, mut theirs) = (0.0f64, 0.0f64);
            for _ in 0..reps {
                let (o, n) = best_of(1, || {
                    tiff::read_bytes(&data, Limits::default()).unwrap().len()
                });
                assert_eq!(n, raw.len());
                ours = ours.max(o);
                theirs = theirs.max(libtiff(&harness, &["decode", file.to_str().unwrap(), "1"]).0);
            }
            println!(
                "{set:<11} {:<7} {name:<4} {ours:>12.1} {theirs:>12.1} {:>6.2}x",
                "decode",
                ours / theirs
            );
            worst = worst.min(ours / theirs);
            let (mut ours, mut theirs) = (0.0f64, 0.0f64);
            let (mut size, mut their_size) = (0, 0);
            for _ in 0..reps {
                let (o, _) = best_of(1, || {
                    size = encode_all(&raw, coding).len();
                    raw.len()
                });
                ours = ours.max(o);
                let (t, b) = libtiff(&harness, &["encode", raw_path.to_str().unwrap(), name, "1"]);
                theirs = theirs.max(t);
                their_size = b;
            }
            println!(
                "{set:<11} {:<7} {name:<4} {ours:>12.1} {theirs:>12.1} {:>6.2}x   ({size} vs {their_size} bytes)",
                "encode",
                ours / theirs
            );
            worst = worst.min(ours / theirs);
        }
    }
    println!("worst ratio: {worst:.2}x (target >= 1.5x, stretch 3x)");

    common::require_tool("/usr/bin/time", "time");
    let tmp = tempfile::tempdir().unwrap();
    let src = dir.join("text-fine-raw.tif");
    let ours = peak_rss_kb(
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg(common::faxgate_bin())
            .arg("convert")
            .arg(&src)
            .arg(tmp.path().join("ours.tif"))
            .args(["--coding", "mh"]),
    );
    let theirs = peak_rss_kb(
        Command::new("/usr/bin/time")
            .args(["-v", "tiffcp", "-c", "g3:1d:fill", "-f", "lsb2msb"])
            .arg(&src)
            .arg(tmp.path().join("theirs.tif")),
    );
    println!(
        "peak RSS converting {} ({} bytes) to MH: faxgate convert {ours} KiB, tiffcp {theirs} KiB",
        src.display(),
        std::fs::metadata(&src).unwrap().len()
    );
}
