//! Why a fax to one recipient ended the way it did, in words a sender understands, together
//! with the machine-readable RFC 3463 status and the `X-Fax` diagnostic of the DSN.
//!
//! PURE data. The fax transmitter's numbered completion causes (T.30 and modem level) are
//! mapped onto these few outcomes when a job reaches its final state; a person reading the
//! report needs to know *what to do next* (check the number, try later, send a PDF instead),
//! not which T.30 frame was missing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The outcome of one recipient of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "kebab-case")]
pub enum Cause {
    /// Every page was confirmed by the receiving machine (T.30 MCF after the last page).
    Delivered,
    /// The message had nothing we could fax (no body text, no attachment).
    NothingToFax,
    /// An attachment of a type we cannot render (`what` names it).
    UnsupportedAttachment {
        /// The part, as shown to the sender (`part 2 "letter.docx" (application/…)`).
        part: String,
        /// What it is, in words.
        what: String,
    },
    /// An attachment that is damaged (broken encoding, truncated file) or did not render.
    DamagedAttachment {
        /// The part.
        part: String,
        /// What is wrong, in words.
        detail: String,
    },
    /// A page too complex to render within `offramp.render_work_limit` (drawing it would take
    /// more work than one page may).
    TooComplex {
        /// The part.
        part: String,
        /// The page of that part (1-based).
        page: u32,
        /// Work units one page may take.
        limit: u64,
    },
    /// Rendering the message took longer than `offramp.render_time_limit`.
    RenderTimeout {
        /// The part being rendered when time ran out.
        part: String,
        /// The page of that part (1-based).
        page: u32,
        /// The limit, in seconds.
        seconds: u64,
    },
    /// The gateway stopped while rendering the message. Not an outcome for the sender: the
    /// message is rendered again at the next start (never put in a report).
    Interrupted,
    /// The document has more pages than `offramp.max_pages`.
    TooManyPages {
        /// Pages the document has.
        pages: u32,
        /// The limit.
        max: u32,
    },
    /// The dial plan forbids the number (premium rate, international, deny list).
    Blocked {
        /// The number as the sender wrote it.
        number: String,
        /// Why, in words.
        reason: String,
    },
    /// The line was busy on every try.
    Busy {
        /// Dials made.
        tries: u32,
    },
    /// Nobody answered on any try.
    NoAnswer {
        /// Dials made.
        tries: u32,
    },
    /// Something answered that is not a fax machine (a voice or no T.30 DIS, T.30 §5.2 T1).
    NotAFax,
    /// The call broke during a page and tries ran out.
    LineFailed {
        /// 1-based page that was being sent when the line failed.
        page: u32,
        /// Tries made.
        tries: u32,
    },
    /// The receiver refused our coding or page format (T.30: no compatible DIS/DCS, repeated
    /// FTT at the lowest speed, or RTN on every page).
    CodingRefused,
    /// The job ran out of time (`retry.kill_after`) before any of the above became final.
    Expired {
        /// Tries made.
        tries: u32,
    },
    /// A fault of the gateway itself (disk, configuration) that made it give up.
    GatewayError {
        /// What failed.
        detail: String,
    },
    /// The gateway stopped (crashed, or was killed) while it was preparing this message, so
    /// the message was set aside at the next start instead of being tried again: one message
    /// must never be able to stop the gateway over and over (ours).
    Quarantined,
}

/// RFC 3464 §2.3.3 `Action` values used by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// The fax was delivered (all pages confirmed).
    Delivered,
    /// Final failure.
    Failed,
    /// Not final yet: the gateway will keep trying (a delay report).
    Delayed,
}

impl Action {
    /// The field value.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Delivered => "delivered",
            Action::Failed => "failed",
            Action::Delayed => "delayed",
        }
    }
}

impl Cause {
    /// True only for [`Cause::Delivered`].
    pub fn is_success(&self) -> bool {
        matches!(self, Cause::Delivered)
    }

    /// RFC 3463 subject.detail (the class is 2, 4 or 5 by the action, see [`Cause::status`]).
    ///
    /// - X.6.0 other media error; X.6.1 media not supported; X.6.3 conversion required but not
    ///   supported (the receiver refused our coding); X.6.5 conversion failed;
    /// - X.3.4 message too big for system; X.7.1 delivery not authorized;
    /// - X.4.1 no answer from host; X.4.2 bad connection; X.4.7 delivery time expired;
    /// - X.1.1 bad destination mailbox: the number does not lead to a fax machine;
    /// - X.3.0 other mail system status: the gateway's own fault.
    fn subject_detail(&self) -> (u8, u8) {
        match self {
            Cause::Delivered => (0, 0),
            Cause::NothingToFax => (6, 0),
            Cause::UnsupportedAttachment { .. } => (6, 1),
            Cause::DamagedAttachment { .. } => (6, 5),
            Cause::TooManyPages { .. } | Cause::TooComplex { .. } | Cause::RenderTimeout { .. } => {
                (3, 4)
            }
            Cause::Interrupted => (3, 0),
            Cause::Blocked { .. } => (7, 1),
            Cause::Busy { .. } | Cause::NoAnswer { .. } => (4, 1),
            Cause::NotAFax => (1, 1),
            Cause::LineFailed { .. } => (4, 2),
            Cause::CodingRefused => (6, 3),
            Cause::Expired { .. } => (4, 7),
            Cause::GatewayError { .. } => (3, 0),
            // RFC 3463 X.6.0: other or undefined media error — the content is the suspect.
            Cause::Quarantined => (6, 0),
        }
    }

    /// The RFC 3463 status code for this cause reported with `action`.
    pub fn status(&self, action: Action) -> String {
        let class = match action {
            Action::Delivered => 2,
            Action::Failed => 5,
            Action::Delayed => 4,
        };
        let (s, d) = self.subject_detail();
        format!("{class}.{s}.{d}")
    }

    /// A short keyword for the `Diagnostic-Code: X-Fax; …` field (ours).
    pub fn keyword(&self) -> &'static str {
        match self {
            Cause::Delivered => "delivered",
            Cause::NothingToFax => "nothing-to-fax",
            Cause::UnsupportedAttachment { .. } => "unsupported-attachment",
            Cause::DamagedAttachment { .. } => "bad-attachment",
            Cause::TooManyPages { .. } => "too-many-pages",
            Cause::TooComplex { .. } => "too-complex",
            Cause::RenderTimeout { .. } => "render-timeout",
            Cause::Interrupted => "interrupted",
            Cause::Blocked { .. } => "blocked",
            Cause::Busy { .. } => "busy",
            Cause::NoAnswer { .. } => "no-answer",
            Cause::NotAFax => "not-a-fax",
            Cause::LineFailed { .. } => "line-failed",
            Cause::CodingRefused => "coding-refused",
            Cause::Expired { .. } => "expired",
            Cause::GatewayError { .. } => "gateway-error",
            Cause::Quarantined => "quarantined",
        }
    }

    /// The cause in plain words for the sender. Names and details that came from outside
    /// (an attachment's file name, the number as written) are escaped
    /// ([`crate::logging::Untrusted`]): these words go into reports and logs.
    pub fn words(&self) -> String {
        use crate::logging::untrusted;
        let tries = |n: &u32| {
            if *n == 1 {
                "1 try".to_string()
            } else {
                format!("{n} tries")
            }
        };
        match self {
            Cause::Delivered => "The fax was sent and every page was confirmed by the receiving machine.".into(),
            Cause::NothingToFax => {
                "There was nothing to fax in the message: no text and no attachment that can be faxed.".into()
            }
            Cause::UnsupportedAttachment { part, what } => format!(
                "Attachment type not supported: {} is {}. Send it as PDF, TIFF, an image or plain text instead.",
                untrusted(part),
                untrusted(what)
            ),
            Cause::DamagedAttachment { part, detail } => {
                format!("{} could not be faxed: {}.", untrusted(part), untrusted(detail))
            }
            Cause::TooManyPages { pages, max } => {
                format!("The document has {pages} pages; this gateway sends at most {max}.")
            }
            Cause::TooComplex { part, page, limit } => format!(
                "Page {page} of {part} is too complex to render: it needs more than the {limit} \
                 work units this gateway allows for a page; the fax was not sent. Simplify the \
                 page (for example print it to PDF as an image) and send it again."
            ),
            Cause::RenderTimeout {
                part,
                page,
                seconds,
            } => format!(
                "Page {page} of {part} needs more than {seconds} s to render (the time this \
                 gateway allows for a message); the fax was not sent. Send simpler pages, or \
                 fewer of them at a time."
            ),
            Cause::Interrupted => {
                "The fax gateway stopped while preparing the fax; it prepares it again when it starts.".into()
            }
            Cause::Blocked { number, reason } => {
                format!(
                    "The number {} is blocked by policy: {}.",
                    untrusted(number),
                    untrusted(reason)
                )
            }
            Cause::Busy { tries: n } => format!("The line was busy after {}.", tries(n)),
            Cause::NoAnswer { tries: n } => format!("There was no answer after {}.", tries(n)),
            Cause::NotAFax => {
                "The number answered, but not as a fax machine (perhaps a phone or an answering machine).".into()
            }
            Cause::LineFailed { page, tries: n } => format!(
                "The line failed while sending page {page} (after {}).",
                tries(n)
            ),
            Cause::CodingRefused => {
                "The receiving machine refused our coding: it could not accept the pages in any format we can send.".into()
            }
            Cause::Expired { tries: n } => format!(
                "The fax could not be sent in the time allowed (after {}).",
                tries(n)
            ),
            Cause::GatewayError { detail } => {
                format!(
                    "The fax gateway had an internal problem: {}.",
                    untrusted(detail)
                )
            }
            Cause::Quarantined => "The fax gateway stopped while it was preparing this message, \
                so the message was set aside for the administrator and was not faxed. Please \
                send the document again in another form (for example a plain PDF)."
                .into(),
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_rfc3463_classes() {
        let table: &[(Cause, Action, &str)] = &[
            (Cause::Delivered, Action::Delivered, "2.0.0"),
            (Cause::NothingToFax, Action::Failed, "5.6.0"),
            (Cause::Busy { tries: 3 }, Action::Failed, "5.4.1"),
            (Cause::Busy { tries: 1 }, Action::Delayed, "4.4.1"),
            (Cause::NotAFax, Action::Failed, "5.1.1"),
            (Cause::CodingRefused, Action::Failed, "5.6.3"),
            (
                Cause::Blocked {
                    number: "+1900".into(),
                    reason: "premium rate".into(),
                },
                Action::Failed,
                "5.7.1",
            ),
            (
                Cause::LineFailed { page: 2, tries: 3 },
                Action::Failed,
                "5.4.2",
            ),
            (Cause::Expired { tries: 9 }, Action::Failed, "5.4.7"),
            (
                Cause::TooComplex {
                    part: "part 2".into(),
                    page: 1,
                    limit: 8,
                },
                Action::Failed,
                "5.3.4",
            ),
            (
                Cause::RenderTimeout {
                    part: "part 2".into(),
                    page: 3,
                    seconds: 120,
                },
                Action::Failed,
                "5.3.4",
            ),
        ];
        for (c, a, want) in table {
            assert_eq!(c.status(*a), *want, "{c:?}");
        }
    }

    #[test]
    fn words_name_what_matters() {
        assert_eq!(
            Cause::Busy { tries: 3 }.words(),
            "The line was busy after 3 tries."
        );
        assert_eq!(
            Cause::NoAnswer { tries: 1 }.words(),
            "There was no answer after 1 try."
        );
        assert!(
            Cause::LineFailed { page: 4, tries: 2 }
                .words()
                .contains("page 4")
        );
        let u = Cause::UnsupportedAttachment {
            part: "part 2 \"a.docx\"".into(),
            what: "a Word document (.docx)".into(),
        };
        assert!(u.words().starts_with("Attachment type not supported"));
        assert!(u.words().contains("a.docx"));
    }

    #[test]
    fn render_budget_words_name_the_page_the_part_and_the_limit() {
        let t = Cause::RenderTimeout {
            part: "part 2 \"doc.pdf\" (application/pdf)".into(),
            page: 1,
            seconds: 60,
        };
        assert!(
            t.words().starts_with(
                "Page 1 of part 2 \"doc.pdf\" (application/pdf) needs more than 60 s to render"
            ),
            "{}",
            t.words()
        );
        assert!(t.words().contains("the fax was not sent"));
        let c = Cause::TooComplex {
            part: "part 3 \"map.pdf\"".into(),
            page: 7,
            limit: 8_000_000,
        };
        assert!(
            c.words()
                .starts_with("Page 7 of part 3 \"map.pdf\" is too complex to render")
        );
        assert!(c.words().contains("8000000 work units"));
        assert_eq!(c.keyword(), "too-complex");
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(serde_json::from_value::<Cause>(j).unwrap(), c);
    }

    #[test]
    fn serde_round_trip() {
        let c = Cause::LineFailed { page: 3, tries: 2 };
        let j = serde_json::to_value(&c).unwrap();
        assert_eq!(j["cause"], "line-failed");
        assert_eq!(serde_json::from_value::<Cause>(j).unwrap(), c);
    }
}
