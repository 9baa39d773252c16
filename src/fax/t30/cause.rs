//! Completion causes: a flat, numbered registry with one-line meanings (the spandsp / HylaFAX
//! shape), each classed for the scheduler as retry, fail or done.
//!
//! Numbers are stable: they are stored in job records and shown in reports. Busy and no-answer
//! are the modem layer's (it never starts the engine); every other end of a call is here.

/// What the scheduler should do with the job after a call ended with a [`Cause`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CauseClass {
    /// The call did what it was asked: the job is finished.
    Done,
    /// A later attempt may succeed (line trouble, a busy or confused remote).
    Retry,
    /// Retrying cannot help (incompatible remote, bad document, local refusal).
    Fail,
}

macro_rules! causes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $class:ident, $text:literal; )*) => {
        /// Why a T.30 call ended. See the module docs; [`Cause::ALL`] lists the registry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Cause {
            $( $(#[$doc])* $name = $num, )*
        }

        impl Cause {
            /// Every cause, in number order.
            pub const ALL: &'static [Cause] = &[$(Cause::$name,)*];

            /// The stable number.
            pub fn number(self) -> u16 {
                self as u16
            }

            /// One line saying what happened.
            pub fn meaning(self) -> &'static str {
                match self { $(Cause::$name => $text,)* }
            }

            /// What the scheduler does about it.
            pub fn class(self) -> CauseClass {
                match self { $(Cause::$name => CauseClass::$class,)* }
            }

            /// The cause with this number.
            pub fn from_number(n: u16) -> Option<Cause> {
                Cause::ALL.iter().copied().find(|c| c.number() == n)
            }
        }
    };
}

causes! {
    /// Every page sent or received and confirmed; the call ended with DCN.
    Ok = 0, Done, "all pages transferred and confirmed";
    /// T.30 time-out T1: no DIS (calling) or no DCS (answering) within T1 of the call starting.
    T1Expired = 1, Retry, "T1 expired: the remote never identified itself as a fax machine";
    /// A command went unanswered three times (T.30 flow charts: repeat count 3, T4 each).
    NoResponse = 2, Retry, "the remote stopped answering commands (three repeats, T4 each)";
    /// T.30 time-out T2: the receiver waited T2 for a command or page that never came.
    T2Expired = 3, Retry, "T2 expired waiting for the next command or page";
    /// FTT at the slowest rate, or the fallback attempt limit reached.
    TrainingFailed = 4, Retry, "training failed at every rate tried";
    /// The remote sent DCN before the document was done.
    UnexpectedDcn = 5, Retry, "the remote disconnected in the middle of the document";
    /// RTN for the same page more times than allowed.
    PageRejected = 6, Retry, "the remote rejected a page (RTN) too many times";
    /// The remote cannot receive faxes, or shares no modulation/width with us.
    Incompatible = 7, Fail, "the remote has no capability in common with this document";
    /// Annex A: ECM block could not be completed even at the slowest rate.
    EcmFailed = 8, Retry, "error correction gave up on a block at the lowest rate";
    /// A frame or answer that makes no sense in the current state (T.30 protocol violation).
    ProtocolError = 9, Retry, "the remote sent a signal that is invalid at this point";
    /// The modem reported the carrier gone or an error outside any expected exchange.
    CarrierLost = 10, Retry, "the line dropped (carrier lost) during the call";
    /// The page source could not code a page: our document is at fault.
    DocumentError = 11, Fail, "a page of the document could not be coded for sending";
    /// The receive side's sink refused the page (disk full, limits).
    SinkError = 12, Fail, "a received page could not be stored";
    /// Received page data beyond the engine's limit (per page or per block).
    TooMuchData = 13, Fail, "the remote sent more page data than the limits allow";
    /// The call was aborted locally (shutdown, operator).
    LocalAbort = 14, Fail, "the call was aborted locally";
    /// RNR answered for longer than T5 (Annex A flow control).
    T5Expired = 15, Retry, "T5 expired: the remote stayed not ready (RNR)";
    /// The receiving side ended with some pages but not a confirmed end of procedure.
    PartialReceive = 16, Done, "the call ended after some pages were received";
    /// The remote asked for a procedure interrupt (PIN/PIP) that this gateway cannot serve.
    Interrupted = 17, Fail, "the remote requested an operator (procedure interrupt)";
    /// Polling requested but the remote has nothing to send.
    NothingToPoll = 18, Fail, "polling requested but the remote has no document";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_numbered_and_classed() {
        let mut seen = std::collections::HashSet::new();
        for c in Cause::ALL {
            assert!(seen.insert(c.number()), "duplicate number");
            assert_eq!(Cause::from_number(c.number()), Some(*c));
            assert!(!c.meaning().is_empty() && !c.meaning().contains('\n'));
        }
        assert_eq!(Cause::Ok.class(), CauseClass::Done);
        assert_eq!(Cause::T1Expired.class(), CauseClass::Retry);
        assert_eq!(Cause::Incompatible.class(), CauseClass::Fail);
        assert_eq!(Cause::from_number(999), None);
    }
}
