//! Benchmark (not a test): a 10-page fine MMR exchange with ECM, two T.30 engines back to back
//! on the in-memory line. Prints the CPU time of the whole exchange (engines, line, MMR coding
//! and decoding of full A4 pages) and of the engines and line alone (pre-coded pages, a sink
//! that only counts bytes). Anchor (issue 9): well under a second of CPU.
//!
//! Run: `cargo run --release --example t30_bench`

use faxgate::fax::t30::line::{Line, Side};
use faxgate::fax::t30::pages::{PagesSink, PagesSource};
use faxgate::fax::t30::{
    Cause, Engine, EngineConfig, PageCoding, PageQuality, PageSink, PageSource, SinkError,
    SourceError, VResolution, Wanted, Width,
};
use faxgate::image::{Page, Resolution};
use std::time::Duration;

fn cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A full A4 fine page (1728 × 2287) with text-like marks.
fn a4_fine(seed: u32) -> Page {
    let rows = 2287;
    let mut p = Page::new(1728, rows, Resolution::FINE).unwrap();
    let mut x: u32 = 0x1234_5678 ^ seed.wrapping_mul(0x9E37_79B9);
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    for line in 0..90 {
        let y0 = 60 + line * 24;
        let mut xx = 100;
        while xx < 1600 {
            let w = 4 + next() % 14;
            let h = 10 + next() % 8;
            for y in y0..(y0 + h).min(rows) {
                for c in xx..xx + w {
                    p.set(c, y, true);
                }
            }
            xx += w + 3 + next() % 10;
        }
    }
    p
}

struct Precoded(Vec<Vec<u8>>);

impl PageSource for Precoded {
    fn page_count(&self) -> usize {
        self.0.len()
    }
    fn ends_document(&self, page: usize) -> bool {
        page + 1 == self.0.len()
    }
    fn wanted(&self, _page: usize) -> Wanted {
        Wanted {
            resolution: VResolution::Fine,
            width: Width::A4,
        }
    }
    fn encode(&mut self, page: usize, _c: &PageCoding) -> Result<Vec<u8>, SourceError> {
        Ok(self.0[page].clone())
    }
}

struct Counter(usize);

impl PageSink for Counter {
    fn start_page(&mut self, _c: &PageCoding) {}
    fn data(&mut self, b: &[u8]) {
        self.0 += b.len();
    }
    fn end_page(&mut self) -> PageQuality {
        PageQuality {
            rows: 2287,
            bad_rows: 0,
            longest_bad_run: 0,
        }
    }
    fn finish_page(&mut self, _a: bool) -> Result<(), SinkError> {
        Ok(())
    }
}

fn cfg(id: &str) -> EngineConfig {
    EngineConfig {
        local_id: id.into(),
        ecm: true,
        ..EngineConfig::default()
    }
}

fn main() {
    let pages: Vec<Page> = (0..10).map(a4_fine).collect();

    let t0 = cpu_time();
    let sink = PagesSink::new();
    let got = sink.pages();
    let a = Engine::sender(
        cfg("bench A"),
        Box::new(PagesSource::new(vec![pages.clone()])),
    );
    let b = Engine::receiver(cfg("bench B"), Box::new(sink));
    let mut line = Line::new(a, b);
    line.run(1_000_000).expect("call ends");
    let full = cpu_time() - t0;
    let r = line.engine(Side::Caller).report();
    assert_eq!(r.cause, Some(Cause::Ok));
    let rx = got.lock().unwrap();
    assert!(
        rx.iter().zip(&pages).all(|(g, s)| g.page == *s),
        "pixel-exact"
    );
    let bytes: usize = r.pages.iter().map(|p| p.bytes).sum();
    println!(
        "10-page fine MMR ECM exchange: {} pages, {} coded bytes, simulated line time {:.1} s",
        rx.len(),
        bytes,
        r.duration.as_secs_f64()
    );
    println!(
        "  CPU, engines + line + MMR encode/decode: {:.1} ms",
        full.as_secs_f64() * 1e3
    );

    // The same exchange with the coding taken out: what the engines and the line cost.
    let mut coded = Vec::new();
    let mut src = PagesSource::new(vec![pages]);
    let coding = PageCoding {
        coding: faxgate::fax::t30::Coding::Mmr,
        resolution: VResolution::Fine,
        width: Width::A4,
        k: 4,
        min_line_bits: 0,
        ecm: true,
    };
    for i in 0..10 {
        coded.push(src.encode(i, &coding).unwrap());
    }
    let t0 = cpu_time();
    let a = Engine::sender(cfg("bench A"), Box::new(Precoded(coded)));
    let b = Engine::receiver(cfg("bench B"), Box::new(Counter(0)));
    let mut line = Line::new(a, b);
    line.run(1_000_000).expect("call ends");
    let bare = cpu_time() - t0;
    assert_eq!(line.engine(Side::Answerer).report().cause, Some(Cause::Ok));
    println!(
        "  CPU, engines + line only (pre-coded pages): {:.2} ms",
        bare.as_secs_f64() * 1e3
    );
    println!("  anchor: well under 1 s of CPU (issue 9)");
}
