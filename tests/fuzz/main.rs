//! The fuzz campaign (issue 21): proptest harnesses over every parser that reads what a
//! stranger sends, runnable on stable Rust. One module per target:
//!
//! | module | target | input |
//! |---|---|---|
//! | [`smtp`] | `smtp::session::Session` | arbitrary byte chunks; one reply per command line, bounded buffer |
//! | [`mime`] | `offramp::mime::extract` + `mime_guard` | mutated real emails and the issue-21 attacks; the guard never under-counts |
//! | [`address`] | RFC 3192 address parsing and the dial plan | mutated addresses; no dial-string injection |
//! | [`tiff`] | `image::tiff::read_bytes` and the Profile S checker | mutated TIFFs from the real writer and the fixtures |
//! | [`t30`] | T.30 frames (`fcf`, `dis`) and the HDLC bit decoder | mutated real frames and HDLC bit streams |
//! | [`modem`] | DLE unstuffing and the Class 1 / AT response parser | mutated modem byte streams |
//!
//! Every case starts from a seed: the files under `tests/fixtures/fuzz/<target>/` (real
//! fixtures, the attacks of issue 21, and every input a campaign ever found, kept as
//! regressions) plus seeds built by the real encoders. A seed is mutated (bit flips,
//! interesting values, truncation, insertion of random bytes or of the target's tokens,
//! duplication, splicing with another seed), then run in its own thread under a deadline
//! (`FAXGATE_FUZZ_TIMEOUT_MS`, default 20 000): a hang fails with the input in hex, as does a
//! panic, and the thread's peak of live heap is checked against a bound per target (a counting
//! global allocator). Failing inputs are also written to `target/fuzz-failures/`.
//!
//! `FAXGATE_FUZZ_CASES` sets the cases per property (default 2000: the whole target stays well
//! under a minute in a debug build). A long campaign:
//!
//! ```text
//! FAXGATE_FUZZ_CASES=2000000 cargo test --release --test fuzz
//! FAXGATE_FUZZ_CASES=200000 cargo test --release --test fuzz -- smtp   # one target
//! ```
//!
//! A found input goes under `tests/fixtures/fuzz/<target>/` (named after what it does) once
//! fixed; proptest also records the failing case in `tests/proptest-regressions/<module>.txt`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::*;

mod address;
mod mime;
mod modem;
mod smtp;
mod t30;
mod tiff;

// ---- bounded allocation: live heap per thread ----

/// The system allocator, counting live and peak heap octets of the calling thread.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|l| {
        let v = l.get() + delta;
        l.set(v);
        let _ = PEAK.try_with(|p| {
            if v > p.get() {
                p.set(v);
            }
        });
    });
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

// ---- configuration ----

/// Cases per property: `FAXGATE_FUZZ_CASES`, else 2000.
pub fn cases() -> u32 {
    std::env::var("FAXGATE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Deadline of one case: `FAXGATE_FUZZ_TIMEOUT_MS`, else 20 s (a debug build on a loaded
/// machine; a release campaign can set less).
pub fn deadline() -> Duration {
    Duration::from_millis(
        std::env::var("FAXGATE_FUZZ_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20_000),
    )
}

/// The proptest configuration every property uses.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // A hang costs a deadline per shrink step: keep shrinking short.
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    }
}

// ---- seeds ----

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every file under `tests/fixtures/<dir>` (recursively, sorted; `README.md` and scripts
/// left out).
pub fn files_under(dir: &str) -> Vec<Vec<u8>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if !path
                .file_name()
                .is_some_and(|n| n == "README.md" || n.to_string_lossy().ends_with(".py"))
            {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&fixtures().join(dir), &mut paths);
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// The seed corpus of a target: `tests/fixtures/fuzz/<target>/` plus `extra`.
pub fn corpus(target: &str, extra: Vec<Vec<u8>>) -> Arc<Vec<Vec<u8>>> {
    let mut v = files_under(&format!("fuzz/{target}"));
    assert!(
        !v.is_empty(),
        "no seeds under tests/fixtures/fuzz/{target}/"
    );
    v.extend(extra);
    Arc::new(v)
}

// ---- running one case ----

fn hex(data: &[u8]) -> String {
    const MAX: usize = 16 * 1024;
    let mut s: String = data.iter().take(MAX).map(|b| format!("{b:02x}")).collect();
    if data.len() > MAX {
        s.push_str(&format!("… ({} octets in all)", data.len()));
    }
    s
}

/// Keeps a failing input where it is easy to turn into a regression seed.
fn save_failure(target: &str, data: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let _ = std::fs::create_dir_all(&dir);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let p = dir.join(format!("{target}-{h:016x}.bin"));
    let _ = std::fs::write(&p, data);
    p.display().to_string()
}

/// Runs `f(input)` in its own thread (2 MiB stack, as a tokio worker has) under
/// [`deadline`]; fails with the input in hex when it panics, overruns the deadline, or when
/// the thread's live heap ever exceeded `max_heap` octets.
pub fn run_case<F>(target: &'static str, input: Vec<u8>, max_heap: usize, f: F)
where
    F: FnOnce(&[u8]) + Send + 'static,
{
    let input = Arc::new(input);
    let (tx, rx) = mpsc::channel();
    let data = input.clone();
    let handle = std::thread::Builder::new()
        .name(format!("fuzz-{target}"))
        .stack_size(2 << 20)
        .spawn(move || {
            let base = LIVE.with(Cell::get);
            PEAK.with(|p| p.set(base));
            f(&data);
            let peak = PEAK.with(Cell::get) - base;
            let _ = tx.send(peak);
        })
        .expect("spawn a fuzz case");
    match rx.recv_timeout(deadline()) {
        Ok(peak) => {
            let _ = handle.join();
            if peak > max_heap as isize {
                let saved = save_failure(target, &input);
                panic!(
                    "{target}: live heap reached {peak} octets (bound {max_heap}) on input \
                     (saved as {saved}): {}",
                    hex(&input)
                );
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // The thread cannot be stopped; it is left running and the test fails.
            let saved = save_failure(target, &input);
            panic!(
                "{target}: no result within {:?} on input (saved as {saved}): {}",
                deadline(),
                hex(&input)
            );
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let why = match handle.join() {
                Err(e) => e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default(),
                Ok(()) => String::new(),
            };
            let saved = save_failure(target, &input);
            panic!(
                "{target}: panicked ({why}) on input (saved as {saved}): {}",
                hex(&input)
            );
        }
    }
}

// ---- mutation ----

/// One edit of a seed. Positions and lengths are taken modulo the data's length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// XOR one octet (never with 0).
    Flip(usize, u8),
    /// Overwrite with a boundary value (0, 0x7F, 0x80, 0xFF, or a 16/32-bit extreme).
    Interesting(usize, u8),
    /// Cut the data here.
    Truncate(usize),
    /// Insert random octets.
    Insert(usize, Vec<u8>),
    /// Remove a run.
    Delete(usize, usize),
    /// Repeat a run up to 64 times.
    Duplicate(usize, usize, u8),
    /// Insert one of the target's tokens.
    Token(usize, usize),
    /// Insert a run of another seed.
    Splice(usize, usize, usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => (any::<usize>(), 0..8u8).prop_map(|(i, k)| Mutation::Interesting(i, k)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<usize>(), 1..64usize, 1..64u8)
            .prop_map(|(i, n, k)| Mutation::Duplicate(i, n, k)),
        3 => (any::<usize>(), any::<usize>()).prop_map(|(i, t)| Mutation::Token(i, t)),
        1 => (any::<usize>(), any::<usize>(), any::<usize>(), 1..512usize)
            .prop_map(|(i, s, a, n)| Mutation::Splice(i, s, a, n)),
    ]
}

/// Applies `muts` to a copy of `seed`.
pub fn apply(seed: &[u8], muts: &[Mutation], tokens: &[&[u8]], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for m in muts {
        let n = v.len();
        let at = |i: usize| if n == 0 { 0 } else { i % (n + 1) };
        match m {
            Mutation::Flip(i, b) if n > 0 => v[i % n] ^= b,
            Mutation::Interesting(i, k) if n > 0 => {
                let i = i % n;
                let bytes: &[u8] = match k {
                    0 => &[0],
                    1 => &[0x7F],
                    2 => &[0x80],
                    3 => &[0xFF],
                    4 => &[0xFF, 0xFF],
                    5 => &[0xFF, 0xFF, 0xFF, 0xFF],
                    6 => &[0x00, 0x00, 0x00, 0x80],
                    _ => &[0xFF, 0xFF, 0xFF, 0x7F],
                };
                for (j, b) in bytes.iter().enumerate() {
                    if let Some(x) = v.get_mut(i + j) {
                        *x = *b;
                    }
                }
            }
            Mutation::Truncate(i) => v.truncate(at(*i)),
            Mutation::Insert(i, bytes) => {
                let i = at(*i);
                v.splice(i..i, bytes.iter().copied());
            }
            Mutation::Delete(i, len) if n > 0 => {
                let i = i % n;
                let end = (i + len).min(n);
                v.drain(i..end);
            }
            Mutation::Duplicate(i, len, times) if n > 0 => {
                let i = i % n;
                let run = v[i..(i + len).min(n)].to_vec();
                for _ in 0..*times {
                    v.splice(i..i, run.iter().copied());
                }
            }
            Mutation::Token(i, t) if !tokens.is_empty() => {
                let i = at(*i);
                let tok = tokens[t % tokens.len()];
                v.splice(i..i, tok.iter().copied());
            }
            Mutation::Splice(i, s, a, len) if !seeds.is_empty() => {
                let other = &seeds[s % seeds.len()];
                if !other.is_empty() {
                    let a = a % other.len();
                    let run = &other[a..(a + len).min(other.len())];
                    let i = at(*i);
                    v.splice(i..i, run.iter().copied());
                }
            }
            _ => {}
        }
    }
    v
}

/// A seed of `seeds` (sometimes left as it is) with up to eight mutations.
pub fn mutated(
    seeds: Arc<Vec<Vec<u8>>>,
    tokens: &'static [&'static [u8]],
) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    (
        0..n,
        prop_oneof![1 => Just(Vec::new()), 9 => proptest::collection::vec(mutation(), 1..8)],
    )
        .prop_map(move |(i, muts)| apply(&seeds[i], &muts, tokens, &seeds))
}

#[test]
fn harness_catches_a_panic_and_names_the_input() {
    let r = std::panic::catch_unwind(|| {
        run_case("selftest", b"\x01\x02".to_vec(), 1 << 20, |d| {
            assert!(d.len() > 5, "short input");
        })
    });
    let e = r.unwrap_err();
    let msg = e.downcast_ref::<String>().unwrap();
    assert!(msg.contains("short input") && msg.contains("0102"), "{msg}");
}

#[test]
fn harness_catches_unbounded_allocation() {
    let r = std::panic::catch_unwind(|| {
        run_case("selftest", b"\x03".to_vec(), 1 << 20, |_| {
            let v = vec![1u8; 4 << 20];
            std::hint::black_box(&v);
        })
    });
    let e = r.unwrap_err();
    let msg = e.downcast_ref::<String>().unwrap();
    assert!(msg.contains("live heap") && msg.contains("03"), "{msg}");
}
