//! The rendering budget: how much work one page may take, and when the caller wants rendering
//! stopped (a deadline passed, the gateway is shutting down).
//!
//! PURE. The renderer never reads the clock. It counts *work units* as it goes — fine-grained
//! steps whose cost does not depend on the machine (see [`units`]) — in a per-page [`Meter`],
//! which refuses a page whose work passes the budget's [`Budget::page_work`] limit, and every
//! [`FLUSH`] units asks the caller's [`Budget::check`] whether to go on. The caller's check is
//! where time is measured and cancellation is seen (the I/O shell: `offramp::budget`).
//!
//! Work is charged *before* the work it stands for wherever the cost can be known first (an
//! edge list's sweep, a picture's pixels, a page's content stream operators), so a page that
//! would be too costly is refused without being drawn.

use std::sync::Mutex;

use super::ErrorKind;

/// Units between two calls of [`Budget::check`] from one page (a few hundred microseconds of
/// work at most: the check may read the clock).
pub const FLUSH: u64 = 16_384;

/// Work units one page may take by default (`[offramp] render_work_limit`).
///
/// Measured (`tests/hostile/render.rs`, `render_real_documents_fit_the_default_budget`): the
/// real pages the tests render — dense 9.5 pt text through Ghostscript's pdfwrite, a 300 dpi A4
/// photograph, the corpus' fax TIFFs, the fixture emails — take at most 0.52 M units; the
/// largest picture [`super::Limits`] lets through (64 megapixels) about 4 M. Two million line
/// segments take at least 8 M however they are drawn (an operator, two for the segment, one for
/// a row each), and far more as one path left to hayro ([`units::GENERAL_SEGMENT`]), so 6 M
/// refuses such a page on its own while every real page keeps a tenfold margin.
pub const DEFAULT_PAGE_WORK: u64 = 6_000_000;

/// What the work units stand for, each about one elementary step of the renderer.
pub mod units {
    /// One content stream operator interpreted (counted through form XObjects, once per use).
    pub const OPERATOR: u64 = 1;
    /// One line segment of a path (flattening it, building its edge).
    pub const SEGMENT: u64 = 2;
    /// One edge visited on one row by the scan converter, or one span painted.
    pub const EDGE_ROW: u64 = 1;
    /// Pixels of a picture decoded, or painted on the page, per unit.
    pub const PIXELS: u64 = 32;
    /// One glyph placed (its bitmap stamped from the cache).
    pub const GLYPH: u64 = 1;
    /// One path element drawn by hayro's general renderer (for pages our device cannot
    /// draw): it strokes and fills with anti-aliased coverage in RGBA, far slower per segment
    /// than our device, and cannot be stopped once started, so it is charged beforehand.
    pub const GENERAL_SEGMENT: u64 = 16;
    /// One glyph drawn by hayro's general renderer (a small path fill there).
    pub const GENERAL_GLYPH: u64 = 8;

    /// Units for `n` pixels.
    pub fn pixels(n: u64) -> u64 {
        n / PIXELS + 1
    }
}

/// Why the caller wants rendering stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// The caller's time limit passed.
    Time,
    /// The caller cancelled (the gateway is stopping).
    Cancelled,
}

impl Interrupt {
    /// The error for page `page`.
    pub fn at(self, page: u32) -> ErrorKind {
        match self {
            Interrupt::Time => ErrorKind::TimeBudget { page },
            Interrupt::Cancelled => ErrorKind::Cancelled { page },
        }
    }
}

/// The caller's side of rendering: a work limit per page and a check, asked before each page
/// and every [`FLUSH`] units of work inside one. Shared by the threads that render pages of one
/// document at once, hence `&self` and `Sync`.
pub trait Budget: Sync {
    /// Work units one page may take; [`u64::MAX`] for no limit.
    fn page_work(&self) -> u64 {
        u64::MAX
    }

    /// `Err` to stop at page `page` (1-based): [`ErrorKind::TimeBudget`],
    /// [`ErrorKind::Cancelled`] or any other kind the caller chooses.
    fn check(&self, page: u32) -> Result<(), ErrorKind>;

    /// Asked before page `page` is started.
    fn before_page(&self, page: u32) -> Result<(), ErrorKind> {
        self.check(page)
    }

    /// Told the work a page took once its meter is done with it (finished or stopped); for
    /// callers that report or measure it.
    fn page_done(&self, _page: u32, _units: u64) {}
}

/// No limit, no interruption.
pub struct Unlimited;

impl Budget for Unlimited {
    fn check(&self, _page: u32) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl<F: Fn(u32) -> bool + Sync> Budget for F {
    /// A closure answering "may rendering go on at page `n`?"; no means
    /// [`ErrorKind::TimeBudget`].
    fn check(&self, page: u32) -> Result<(), ErrorKind> {
        if self(page) {
            Ok(())
        } else {
            Err(ErrorKind::TimeBudget { page })
        }
    }
}

/// The caller's interruption check: `Some` to stop. It may read the clock or an atomic flag;
/// the renderer only calls it.
pub type Check = Box<dyn Fn() -> Option<Interrupt> + Send + Sync>;

/// A work limit per page plus the caller's interruption check.
pub struct Limited {
    page_work: u64,
    check: Check,
}

impl Limited {
    /// `page_work` units per page (0: no limit), interrupted when `check` says so.
    pub fn new(page_work: u64, check: Check) -> Limited {
        Limited {
            page_work: if page_work == 0 { u64::MAX } else { page_work },
            check,
        }
    }

    /// A work limit only.
    pub fn work(page_work: u64) -> Limited {
        Limited::new(page_work, Box::new(|| None))
    }
}

impl Budget for Limited {
    fn page_work(&self) -> u64 {
        self.page_work
    }

    fn check(&self, page: u32) -> Result<(), ErrorKind> {
        match (self.check)() {
            Some(i) => Err(i.at(page)),
            None => Ok(()),
        }
    }
}

/// One page's work, counted on the thread that renders it. Cheap to charge: an addition and a
/// compare; the budget's check is asked every [`FLUSH`] units. Once it has refused, it keeps
/// refusing with the same error (drawing after that is skipped, not resumed).
pub struct Meter<'b> {
    budget: &'b dyn Budget,
    page: u32,
    limit: u64,
    spent: u64,
    pending: u64,
    stopped: Option<ErrorKind>,
}

impl<'b> Meter<'b> {
    /// A meter for page `page` (1-based) of `budget`.
    pub fn new(budget: &'b dyn Budget, page: u32) -> Meter<'b> {
        Meter {
            budget,
            page,
            limit: budget.page_work(),
            spent: 0,
            pending: 0,
            stopped: None,
        }
    }

    /// A meter that never refuses (for callers outside a document: tests, tools).
    pub fn unlimited() -> Meter<'static> {
        Meter::new(&Unlimited, 1)
    }

    /// Units this page may take ([`u64::MAX`]: no limit).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The page being counted.
    pub fn page(&self) -> u32 {
        self.page
    }

    /// Units charged to this page so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Moves on to page `page` (1-based): the work count starts again, and the budget is asked
    /// before the page starts.
    pub fn next_page(&mut self, page: u32) -> Result<(), ErrorKind> {
        self.stopped()?;
        if self.spent > 0 {
            self.budget.page_done(self.page, self.spent);
        }
        self.page = page;
        self.spent = 0;
        self.pending = 0;
        let r = self.budget.before_page(page);
        self.stop_on(r)
    }

    /// Charges `units` of work about to be done on this page: `Err` when the page's limit is
    /// passed or the budget's check says stop.
    #[inline]
    pub fn charge(&mut self, units: u64) -> Result<(), ErrorKind> {
        self.stopped()?;
        self.spent = self.spent.saturating_add(units);
        if self.spent > self.limit {
            let e = ErrorKind::WorkBudget {
                page: self.page,
                limit: self.limit,
            };
            self.stopped = Some(e.clone());
            return Err(e);
        }
        self.pending = self.pending.saturating_add(units);
        if self.pending >= FLUSH {
            self.pending = 0;
            let r = self.budget.check(self.page);
            return self.stop_on(r);
        }
        Ok(())
    }

    /// Asks the budget's check now, whatever was charged.
    pub fn check(&mut self) -> Result<(), ErrorKind> {
        self.stopped()?;
        self.pending = 0;
        let r = self.budget.check(self.page);
        self.stop_on(r)
    }

    /// The error this meter stopped with, if it did.
    pub fn stopped(&self) -> Result<(), ErrorKind> {
        match &self.stopped {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn stop_on(&mut self, r: Result<(), ErrorKind>) -> Result<(), ErrorKind> {
        if let Err(e) = &r {
            self.stopped = Some(e.clone());
        }
        r
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        if self.spent > 0 {
            self.budget.page_done(self.page, self.spent);
        }
    }
}

/// A [`Budget`] that remembers every page it was asked about and the work each page took (for
/// tests of the renderer's call pattern, and to measure documents), and refuses from page
/// `stop_at` on.
pub struct Recording {
    stop_at: u32,
    page_work: u64,
    asked: Mutex<Vec<u32>>,
    done: Mutex<Vec<(u32, u64)>>,
}

impl Recording {
    /// Refuses pages `stop_at` and later with [`ErrorKind::TimeBudget`]; `page_work` per page.
    pub fn new(stop_at: u32, page_work: u64) -> Recording {
        Recording {
            stop_at,
            page_work,
            asked: Mutex::new(Vec::new()),
            done: Mutex::new(Vec::new()),
        }
    }

    /// Never refuses, no work limit: for measuring.
    pub fn measuring() -> Recording {
        Recording::new(u32::MAX, u64::MAX)
    }

    /// The work of each page done, in the order they were done: (page, units).
    pub fn work(&self) -> Vec<(u32, u64)> {
        self.done.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The most work any one page took.
    pub fn max_page_work(&self) -> u64 {
        self.work().iter().map(|&(_, u)| u).max().unwrap_or(0)
    }

    /// The pages asked about, each once, in the order first asked.
    pub fn asked(&self) -> Vec<u32> {
        let v = self.asked.lock().map(|v| v.clone()).unwrap_or_default();
        let mut out: Vec<u32> = Vec::new();
        for p in v {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}

impl Budget for Recording {
    fn page_work(&self) -> u64 {
        self.page_work
    }

    fn check(&self, page: u32) -> Result<(), ErrorKind> {
        if let Ok(mut v) = self.asked.lock() {
            v.push(page);
        }
        if page >= self.stop_at {
            Err(ErrorKind::TimeBudget { page })
        } else {
            Ok(())
        }
    }

    fn page_done(&self, page: u32, units: u64) {
        if let Ok(mut v) = self.done.lock() {
            v.push((page, units));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    #[test]
    fn meter_refuses_past_the_page_limit_and_stays_refused() {
        let b = Limited::work(100);
        let mut m = Meter::new(&b, 3);
        assert!(m.charge(60).is_ok());
        assert!(m.charge(40).is_ok());
        let e = m.charge(1).unwrap_err();
        assert_eq!(
            e,
            ErrorKind::WorkBudget {
                page: 3,
                limit: 100
            }
        );
        // Sticky: nothing more is accepted, not even a free charge or a new page.
        assert_eq!(m.charge(0).unwrap_err(), e);
        assert_eq!(m.next_page(4).unwrap_err(), e);
    }

    #[test]
    fn work_counts_per_page() {
        let b = Limited::work(100);
        let mut m = Meter::new(&b, 1);
        m.charge(90).unwrap();
        m.next_page(2).unwrap();
        assert_eq!(m.spent(), 0);
        m.charge(90).unwrap();
        assert_eq!(
            m.charge(20).unwrap_err(),
            ErrorKind::WorkBudget {
                page: 2,
                limit: 100
            }
        );
    }

    #[test]
    fn zero_means_no_work_limit() {
        let b = Limited::work(0);
        let mut m = Meter::new(&b, 1);
        m.charge(u64::MAX).unwrap();
        m.charge(u64::MAX).unwrap();
    }

    #[test]
    fn the_check_is_asked_every_flush_units_and_before_pages() {
        let calls = std::sync::Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let b = Limited::new(
            0,
            Box::new(move || {
                c.fetch_add(1, Ordering::Relaxed);
                None
            }),
        );
        let mut m = Meter::new(&b, 1);
        for _ in 0..FLUSH - 1 {
            m.charge(1).unwrap();
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        m.charge(1).unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        m.next_page(2).unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // One large charge is one check, not one per FLUSH units.
        m.charge(10 * FLUSH).unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn interruptions_name_the_page() {
        let flag = std::sync::Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let b = Limited::new(
            0,
            Box::new(move || f.load(Ordering::Relaxed).then_some(Interrupt::Cancelled)),
        );
        let mut m = Meter::new(&b, 7);
        m.charge(FLUSH).unwrap();
        flag.store(true, Ordering::Relaxed);
        assert_eq!(
            m.charge(FLUSH).unwrap_err(),
            ErrorKind::Cancelled { page: 7 }
        );
        let t = Limited::new(0, Box::new(|| Some(Interrupt::Time)));
        assert_eq!(
            Meter::new(&t, 2).check().unwrap_err(),
            ErrorKind::TimeBudget { page: 2 }
        );
        assert_eq!(
            t.before_page(5).unwrap_err(),
            ErrorKind::TimeBudget { page: 5 }
        );
    }

    #[test]
    fn the_work_of_each_page_is_reported() {
        let b = Recording::measuring();
        {
            let mut m = Meter::new(&b, 1);
            m.charge(5).unwrap();
            m.next_page(2).unwrap();
            m.charge(7).unwrap();
            m.charge(1).unwrap();
        }
        assert_eq!(b.work(), vec![(1, 5), (2, 8)]);
        assert_eq!(b.max_page_work(), 8);
        assert_eq!(b.asked(), vec![2]);
    }

    #[test]
    fn closures_are_budgets() {
        let b = |page: u32| page < 3;
        assert!(b.before_page(2).is_ok());
        assert_eq!(b.check(3).unwrap_err(), ErrorKind::TimeBudget { page: 3 });
        assert_eq!(b.page_work(), u64::MAX);
    }
}
