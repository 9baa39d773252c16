//! The rendering budget's I/O half: the wall clock and the cancel flag behind the pure
//! renderer's [`render::budget`](crate::image::render::budget).
//!
//! One budget per message ([`for_message`]): its time limit (`[offramp] render_time_limit`)
//! counts from when it is made, across every part and page of the message; its work limit
//! (`[offramp] render_work_limit`) applies to each page, in machine-independent work units. The
//! renderer asks [`Deadline::interrupt`] before each page and every
//! [`FLUSH`](crate::image::render::budget::FLUSH) units of work inside one, so a page stops
//! within a fraction of a millisecond of work after the deadline passes or [`Cancel::cancel`]
//! is called — except inside hayro's general renderer, which cannot be interrupted and is
//! charged its estimated work before it starts instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::image::render::budget::{Interrupt, Limited};

/// The rendering limits of one message (`[offramp] render_time_limit` and
/// `render_work_limit`; the shell converts the section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time for the whole message; zero: no time limit.
    pub time: Duration,
    /// Work units per page; 0: no limit.
    pub page_work: u64,
}

/// A cancel flag shared by the renderings in progress: set once (at shutdown), seen by each
/// at its next check.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks every rendering that watches this flag to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A wall-clock limit counted from [`Deadline::start`], and a cancel flag.
#[derive(Debug, Clone)]
pub struct Deadline {
    started: Instant,
    /// `None`: no time limit.
    limit: Option<Duration>,
    cancel: Cancel,
}

impl Deadline {
    /// Starts the clock now: `limit` from now (zero: no time limit), or sooner if `cancel` is
    /// set.
    pub fn start(limit: Duration, cancel: &Cancel) -> Deadline {
        Deadline {
            started: Instant::now(),
            limit: (!limit.is_zero()).then_some(limit),
            cancel: cancel.clone(),
        }
    }

    /// Whether rendering should stop now, and why (cancellation first: it is not the
    /// document's fault).
    pub fn interrupt(&self) -> Option<Interrupt> {
        if self.cancel.is_cancelled() {
            return Some(Interrupt::Cancelled);
        }
        match self.limit {
            Some(l) if self.started.elapsed() > l => Some(Interrupt::Time),
            _ => None,
        }
    }

    /// The renderer's budget: this deadline and `page_work` units per page (0: no limit).
    pub fn budget(self, page_work: u64) -> Limited {
        Limited::new(page_work, Box::new(move || self.interrupt()))
    }
}

/// The budget for rendering one message within `limits` (the [`Limits`] themselves, or the
/// `[offramp]` section they are made from), starting now.
pub fn for_message(limits: impl Into<Limits>, cancel: &Cancel) -> Limited {
    let l = limits.into();
    Deadline::start(l.time, cancel).budget(l.page_work)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::render::ErrorKind;
    use crate::image::render::budget::{Budget, Meter};

    #[test]
    fn cancel_is_seen_by_every_clone() {
        let c = Cancel::new();
        let d = Deadline::start(Duration::ZERO, &c);
        assert_eq!(d.interrupt(), None);
        c.clone().cancel();
        assert_eq!(d.interrupt(), Some(Interrupt::Cancelled));
        let b = d.budget(0);
        assert_eq!(b.check(3).unwrap_err(), ErrorKind::Cancelled { page: 3 });
    }

    #[test]
    fn a_passed_deadline_stops_at_the_next_check() {
        // A limit of one nanosecond has passed by the time it is asked (no sleeping).
        let d = Deadline::start(Duration::from_nanos(1), &Cancel::new());
        let started = d.started;
        while started.elapsed() <= Duration::from_nanos(1) {}
        let b = d.budget(0);
        let mut m = Meter::new(&b, 2);
        assert_eq!(m.check().unwrap_err(), ErrorKind::TimeBudget { page: 2 });
    }

    #[test]
    fn zero_is_no_time_limit_and_work_comes_from_the_limits() {
        let l = Limits {
            time: Duration::ZERO,
            page_work: 10,
        };
        let b = for_message(l, &Cancel::new());
        assert_eq!(b.page_work(), 10);
        assert!(b.check(1).is_ok());
        let mut m = Meter::new(&b, 1);
        assert_eq!(
            m.charge(11).unwrap_err(),
            ErrorKind::WorkBudget { page: 1, limit: 10 }
        );
    }
}
