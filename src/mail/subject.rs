//! PURE: the fax number written at the start of a Subject, for subject addressing
//! (`[offramp] subject_address`).
//!
//! Some sites' MTAs rewrite or refuse `FAX=+…` local parts (aliasing, address policies); for
//! them one fixed local part (e.g. `fax@gateway`) takes the number from the Subject instead.
//! The number must come first, optionally after a `Fax:` label, and is written as a person
//! writes it: `+12125550123 Invoice`, `Fax: +1 212 555 0123 - Invoice`, `+1 (212) 555-0123:
//! Invoice`. It ends at the first character that is not a digit or a separator (space, `-`,
//! `.`, `(`, `)`, `/`); the rest of the Subject, after any `:`, `-`, `,` or `;` and spaces, is
//! the fax's subject. A number with `+` is global (RFC 3192's global-phone, country code
//! first); one without is a site number, accepted only with `smtp.accept_plain_digits`, as for
//! a plain-digits local part. The dial plan then checks it like any other recipient.

use super::address::{AddressError, AddressForm, FaxAddress, MAX_E164_DIGITS, Number};

/// Subject characters looked at (ours): a number and its label are far shorter.
pub const MAX_SCAN: usize = 200;

/// The number at the start of `subject` and the rest of the subject.
pub fn number_from_subject(
    subject: &str,
    site_forms: bool,
) -> Result<(FaxAddress, &str), AddressError> {
    let s = strip_label(subject.trim_start());
    let (global, body) = match s.strip_prefix('+') {
        Some(b) => (true, b.trim_start()),
        None => (false, s),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(AddressError::BadNumber(
            "the Subject must start with the fax number, e.g. \"+12125550123 Invoice\"",
        ));
    }
    let end = body
        .char_indices()
        .take(MAX_SCAN)
        .find(|&(_, c)| !(c.is_ascii_digit() || " -.()/".contains(c)))
        .map(|(i, _)| i)
        .unwrap_or_else(|| {
            body.char_indices()
                .nth(MAX_SCAN)
                .map(|(i, _)| i)
                .unwrap_or(body.len())
        });
    let digits: String = body[..end].chars().filter(char::is_ascii_digit).collect();
    // International prefix (up to 4) + 15 digits is the longest meaningful site number, as
    // for a local part.
    if digits.len() > MAX_E164_DIGITS + 4 || (global && digits.len() > MAX_E164_DIGITS) {
        return Err(AddressError::BadNumber(
            "the number at the start of the Subject has too many digits (end it with \":\")",
        ));
    }
    let number = match (global, site_forms) {
        (true, _) => Number::Global(digits),
        (false, true) => Number::Site(digits),
        (false, false) => {
            return Err(AddressError::BadNumber(
                "the number at the start of the Subject needs + and the country code",
            ));
        }
    };
    let rest = body[end..].trim_start_matches([':', '-', ',', ';', ' ', '\t']);
    Ok((
        FaxAddress {
            number,
            subaddress: None,
            form: AddressForm::Subject,
        },
        rest.trim_end(),
    ))
}

/// The fax's own subject: `subject` without the number at its start (unchanged when it has
/// none). What the offramp prints where a Subject goes, for subject-addressed messages.
pub fn rest_of_subject(subject: &str, site_forms: bool) -> &str {
    match number_from_subject(subject, site_forms) {
        Ok((_, rest)) => rest,
        Err(_) => subject,
    }
}

/// `Fax:`, `Fax -`, `fax=` or `FAX` before the number (any case); `Re:`/`Fwd:` are not
/// skipped (a reply does not re-send a fax).
fn strip_label(s: &str) -> &str {
    let Some(head) = s.get(..3) else {
        return s;
    };
    if !head.eq_ignore_ascii_case("fax") {
        return s;
    }
    let after = &s[3..];
    let after = after.trim_start();
    let after = after
        .strip_prefix([':', '=', '-'])
        .unwrap_or(after)
        .trim_start();
    // "Faxes for …" is not a label: only a label directly before the number counts.
    if after.starts_with(['+', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        after
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> (String, String) {
        let (f, rest) = number_from_subject(s, false).expect(s);
        let Number::Global(d) = f.number else {
            panic!("site number for {s}")
        };
        (d, rest.to_owned())
    }

    #[test]
    fn written_forms() {
        let want = ("12125550123".to_string(), "Invoice 42".to_string());
        for s in [
            "+12125550123 Invoice 42",
            "Fax: +1 212 555 0123 Invoice 42",
            "FAX +1 (212) 555-0123: Invoice 42",
            "fax=+1.212.555.0123 - Invoice 42",
            "  + 1 212 555 0123, Invoice 42  ",
        ] {
            assert_eq!(num(s), want, "{s}");
        }
        assert_eq!(num("+12125550123"), ("12125550123".into(), String::new()));
    }

    #[test]
    fn refusals_name_the_problem() {
        for (s, why) in [
            ("Invoice 42", "must start with the fax number"),
            ("", "must start with the fax number"),
            ("Faxes for +1 212", "must start"),
            ("2125550123 Invoice", "needs + and the country code"),
            ("+1 212 555 0123 4567 8901 Invoice", "too many digits"),
        ] {
            let e = number_from_subject(s, false).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
        let (f, rest) = number_from_subject("2125550123 Invoice", true).unwrap();
        assert_eq!(f.number, Number::Site("2125550123".into()));
        assert_eq!(rest, "Invoice");
    }

    #[test]
    fn rest_of_subject_keeps_a_subject_without_number() {
        assert_eq!(rest_of_subject("+12125550123: Hi", false), "Hi");
        assert_eq!(rest_of_subject("Hi there", false), "Hi there");
        // Never panics on any text, multi-byte included.
        for s in ["Fax", "fa", "+", "+é", "Fax: é", "ｆａｘ +1", "+1\u{0}2"] {
            let _ = rest_of_subject(s, true);
        }
    }
}
