//! The modem's byte stream: DLE unstuffing (`fax::modem::dle`) and the Class 1 / AT response
//! parser (`fax::modem::at`), on mutated modem output (`tests/fixtures/fuzz/modem/`).
//!
//! Properties: no panic, hang or unbounded heap; a response line never holds more than
//! `MAX_LINE` octets of text; DLE stuffing round-trips through the unstuffer whatever the
//! chunking, ending exactly at `<DLE><ETX>`.

use proptest::prelude::*;

use faxgate::fax::modem::at::{self, MAX_LINE, Response, ResponseParser};
use faxgate::fax::modem::dle::{self, Marker, Unstuffer};

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r",
    b"\n",
    b"OK",
    b"CONNECT",
    b"CONNECT 9600",
    b"NO CARRIER",
    b"ERROR",
    b"+FCERROR",
    b"RING",
    b"NMBR=",
    b"AT",
    b"+FRM=",
    b"24,48,72,96",
    b"\x10",
    b"\x10\x03",
    b"\x10\x04",
    b"\x10\x10",
    b"\x10\x1a",
    b"\xff",
];

fn seeds() -> std::sync::Arc<Vec<Vec<u8>>> {
    crate::corpus(
        "modem",
        vec![dle::stuff_block(&(0..=255u8).collect::<Vec<_>>())],
    )
}

fn check(data: &[u8]) {
    // The AT parser: whole and byte by byte agree.
    let mut p = ResponseParser::new();
    let mut whole = Vec::new();
    p.push_all(data, &mut whole);
    let mut q = ResponseParser::new();
    let bytewise: Vec<Response> = data.iter().filter_map(|&b| q.push(b)).collect();
    assert_eq!(whole, bytewise);
    for r in &whole {
        let text = match r {
            Response::Echo(t) | Response::Info(t) => t.len(),
            Response::CallInfo { tag, value } => tag.len() + value.len(),
            _ => 0,
        };
        // U+FFFD replacement may triple an invalid octet.
        assert!(text <= 3 * MAX_LINE, "{r:?}");
    }
    let _ = at::parse_number_list(&String::from_utf8_lossy(data));
    // The unstuffer over arbitrary chunks.
    let mut u = Unstuffer::new();
    let mut out = Vec::new();
    let mut rest = data;
    for _ in 0..data.len() + 1 {
        let (n, marker) = u.push(rest, &mut out);
        assert!(n <= rest.len());
        rest = &rest[n..];
        if marker.is_none() || rest.is_empty() {
            break;
        }
    }
    assert!(out.len() <= 2 * data.len());
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn modem_mutated_streams_never_panic(data in crate::mutated(seeds(), TOKENS)) {
        crate::run_case("modem", data, 1 << 20, check);
    }

    #[test]
    fn modem_dle_round_trip(data in proptest::collection::vec(any::<u8>(), 0..600), cut in any::<usize>()) {
        let mut stuffed = dle::stuff_block(&data);
        stuffed.extend_from_slice(b"\r\nOK\r\n");
        let cut = cut % (stuffed.len() + 1);
        let mut u = Unstuffer::new();
        let mut out = Vec::new();
        let (n1, m1) = u.push(&stuffed[..cut], &mut out);
        let (used, marker) = if m1.is_some() {
            (n1, m1)
        } else {
            let (n2, m2) = u.push(&stuffed[cut..], &mut out);
            (cut + n2, m2)
        };
        prop_assert_eq!(marker, Some(Marker::Etx));
        prop_assert_eq!(&stuffed[used..], b"\r\nOK\r\n");
        prop_assert_eq!(out, data);
    }
}

#[test]
fn modem_seeds_replay() {
    for s in seeds().iter() {
        crate::run_case("modem", s.clone(), 1 << 20, check);
    }
}
