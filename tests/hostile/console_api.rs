//! The console's send API (issue 16): what a client controls — the `to` numbers, the file
//! names, the `notify` address and the multipart framing — cannot add a recipient or a header,
//! dial around the dial plan, or crash or stall the reader.

use axum::body::Body;
use faxgate::app::console::auth::{Role, Scope, User, Via, Who};
use faxgate::app::console::submit::{self, Heading, Upload};
use faxgate::config::Config;
use faxgate::smtp::session::Policy;
use proptest::prelude::*;

fn admin() -> Who {
    Who {
        user: User {
            name: "ann".into(),
            role: Role::Admin,
            scope: Scope::default(),
        },
        via: Via::Token,
    }
}

fn policy() -> Policy {
    Policy::from_config(&Config::default(), false)
}

#[test]
fn console_api_numbers_cannot_smuggle_addresses_or_dial_around_the_plan() {
    let p = policy();
    let rows: &[(&str, &str)] = &[
        ("+12125550123\r\nRCPT TO:<x@evil.example>", "bad-number"),
        ("+12125550123@evil.example", "bad-number"),
        ("+12125550123>", "bad-number"),
        ("<+12125550123>", "bad-number"),
        ("FAX=+12125550123", "bad-number"),
        ("+12125550123/T33S=1", "bad-number"),
        ("+12125550123%evil.example", "bad-number"),
        ("+1212555O123", "bad-number"),
        ("+١٢١٢٥٥٥٠١٢٣", "bad-number"),
        ("%2B19005550123", "bad-number"),
        ("\u{202e}+12125550123", "bad-number"),
        ("+1212555012345678901234567890", "bad-number"),
        // The dial plan's own attacks: premium, international, a trunk prefix behind our
        // country code, a NANP Caribbean area, service codes.
        ("+19005550123", "number-refused"),
        ("+1 (900) 555-0123", "number-refused"),
        ("+442079460000", "number-refused"),
        ("+1 011 44 20 7946 0000", "number-refused"),
        ("+18095550123", "number-refused"),
        ("+1411", "number-refused"),
    ];
    for (to, want) in rows {
        match submit::recipients(&p, &admin(), &[to.to_string()], &[]) {
            Ok(r) => panic!("{to:?} accepted as {r:?}"),
            Err(e) => assert_eq!(e.code(), *want, "{to:?}: {e}"),
        }
    }
}

/// A national number, with the separators people type, gets the global form in its address
/// (found by the property below: it was `FAX=9888871646@localhost`).
#[test]
fn console_api_national_number_gets_a_global_address() {
    let p = policy();
    let to = ".. (98  -8(8-8((7-16()46".to_string();
    let r = submit::recipients(&p, &admin(), std::slice::from_ref(&to), &[]).unwrap();
    assert_eq!(r[0].address, "FAX=+19888871646@localhost");
    assert_eq!(r[0].destination.e164, "+19888871646");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever is written as `to`, an accepted recipient is exactly `FAX=+digits@ourhost`,
    /// inside our country and not premium (the embedded plan), and nothing panics.
    #[test]
    fn console_api_any_to_yields_only_plain_fax_addresses(to in "\\PC{0,40}|[+0-9 ().\\-]{0,24}") {
        let p = policy();
        if let Ok(r) = submit::recipients(&p, &admin(), std::slice::from_ref(&to), &[]) {
            let a = &r[0].address;
            let digits = a
                .strip_prefix("FAX=+")
                .and_then(|x| x.strip_suffix("@localhost"))
                .unwrap_or_else(|| panic!("{to:?} -> {a}"));
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()), "{} -> {}", to, a);
            prop_assert!(r[0].destination.e164.starts_with("+1"), "{} -> {:?}", to, r[0]);
            prop_assert!(!r[0].destination.e164.starts_with("+1900"), "{}", to);
        }
    }
}

#[test]
fn console_api_file_names_and_notify_cannot_add_headers() {
    let p = policy();
    let r = submit::recipients(&p, &admin(), &["+12125550123".into()], &[]).unwrap();
    let h = Heading {
        user: "ann".into(),
        mail_from: "postmaster@localhost".into(),
        date: 1_796_000_000,
        message_id: "x@localhost".into(),
        resolution: None,
    };
    let files = [Upload {
        filename: Some("a.pdf\"\r\nBcc: evil@example.org\r\nX-Evil: 1\r\n\r\n.pdf".into()),
        bytes: b"%PDF-1.4\n%%EOF\n".to_vec(),
    }];
    let raw = submit::build_message(&h, &r, &files, Some("line\r\n.\r\nBcc: x@y\r\n")).unwrap();
    // The header section is ours alone: no field from the file name or the cover text. (A
    // lone `.` line in a part's content is content: the spooled file is not SMTP-framed, and
    // whoever relays it dot-stuffs it.)
    let text = String::from_utf8_lossy(&raw);
    let head = text.split("\r\n\r\n").next().unwrap();
    let names: Vec<&str> = head
        .lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    assert_eq!(
        names,
        [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type"
        ],
        "{text}"
    );
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let to: Vec<_> = m.to().unwrap().iter().filter_map(|a| a.address()).collect();
    assert_eq!(to, ["FAX=+12125550123@localhost"]);
    assert!(m.bcc().is_none());
    use mail_parser::MimeHeaders;
    for part in m.parts.iter() {
        for h in part.headers() {
            let name = h.name();
            assert!(
                !name.eq_ignore_ascii_case("bcc") && !name.eq_ignore_ascii_case("x-evil"),
                "a part got header {name}:\n{text}"
            );
        }
        if let Some(n) = part.attachment_name() {
            assert!(!n.contains(['\r', '\n', '"']), "{n:?}");
        }
    }
    let cfg = Config::default();
    for n in [
        "a@b.example\r\nBcc: x@y.example",
        "a@b.example, x@y.example",
        "<a@b.example>",
        "a@[127.0.0.1]",
        "",
    ] {
        let e = submit::sender(&cfg, Some(n));
        assert!(
            e.as_ref().is_err_and(|e| e.code() == "bad-notify"),
            "{n:?}: {:?}",
            e.map(|x| x.0)
        );
    }
}

#[tokio::test]
async fn console_api_malformed_multipart_is_refused_without_panic_or_growth() {
    let ct = Some("multipart/form-data; boundary=B");
    let limit = 64 * 1024;
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"--B".to_vec(),
        b"--B\r\n".to_vec(),
        b"--B\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\n+12125550123".to_vec(),
        b"--B\r\nContent-Disposition: form-data\r\n\r\nx\r\n--B--\r\n".to_vec(),
        b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n".to_vec(),
        // A header line longer than anything real, and more header lines than any part has.
        [
            b"--B\r\nContent-Disposition: form-data; name=\"to\"\r\nX: ".as_slice(),
            &vec![b'a'; 200_000],
            b"\r\n\r\n1\r\n--B--\r\n",
        ]
        .concat(),
        [
            b"--B\r\n".as_slice(),
            &b"X-H: 1\r\n".repeat(5000),
            b"Content-Disposition: form-data; name=\"to\"\r\n\r\n1\r\n--B--\r\n",
        ]
        .concat(),
        // A `to` over its own limit, and thousands of tiny fields.
        [
            b"--B\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\n".as_slice(),
            &vec![b'1'; 10_000],
            b"\r\n--B--\r\n",
        ]
        .concat(),
        b"--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n"
            .repeat(2000)
            .into_iter()
            .chain(b"--B--\r\n".iter().copied())
            .collect(),
        vec![0u8; 100_000],
    ];
    for (i, b) in bodies.into_iter().enumerate() {
        match submit::read_form(Body::from(b), ct, None, limit).await {
            // A well-formed but empty form is not an error of the reader (the check refuses it).
            Ok(f) => assert!(
                f.files.len() <= submit::MAX_FILES && f.to.len() <= 1,
                "body {i}: {f:?}"
            ),
            Err(e) => {
                let s = e.status().as_u16();
                assert!((400..500).contains(&s), "body {i}: {s} {e}");
            }
        }
    }
}
