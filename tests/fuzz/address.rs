//! RFC 3192 addresses and the dial plan, through their public API only: a forward-path as
//! the SMTP session hands it over (`parse_forward_path`), its local part as a fax address
//! (`FaxAddress::from_local_part`, with and without the site forms), and the number through
//! the embedded NANP plan and a UK plan (`DialPlan::resolve`).
//!
//! Properties: no panic, hang or unbounded heap; a number that resolves has an E.164 form of
//! `+` and 7 to 15 digits, and a dial string of nothing but digits, `*`, `#`, `,` and `W`
//! (so no `;`, CR or letter can reach the modem's `ATD` command: dial-string injection); a
//! plan that refuses international numbers never resolves one it flags international.

use proptest::prelude::*;

use faxgate::config::Config;
use faxgate::mail::address::{FaxAddress, parse_forward_path};
use faxgate::mail::dialplan::DialPlan;

const TOKENS: &[&[u8]] = &[
    b"FAX=",
    b"fax=",
    b"+",
    b"/T33S=",
    b"/",
    b"@fax.example",
    b"\"",
    b"\\",
    b"-",
    b".",
    b"(",
    b")",
    b" ",
    b"00",
    b"011",
    b"0",
    b"1",
    b"44",
    b"900",
    b"809",
    b";",
    b",",
    b"W",
    b"*",
    b"#",
    b"%",
    b"!",
    b"\r\n",
    b"\xc2\xa0",
];

fn seeds() -> std::sync::Arc<Vec<Vec<u8>>> {
    let lines: Vec<Vec<u8>> = crate::files_under("fuzz/address")
        .iter()
        .flat_map(|f| {
            f.split(|&b| b == b'\n')
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .filter(|l| !l.is_empty())
        .collect();
    std::sync::Arc::new(lines)
}

fn plans() -> Vec<(&'static str, Config)> {
    let mut uk = Config::default();
    uk.dialplan.country_code = "44".into();
    uk.dialplan.international_prefix = "00".into();
    uk.dialplan.national_prefix = "0".into();
    uk.dialplan.outside_prefix = "9,".into();
    vec![("nanp", Config::default()), ("uk", uk)]
}

fn check(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    let Ok(mb) = parse_forward_path(&path) else {
        return;
    };
    for site_forms in [false, true] {
        let Ok(fax) = FaxAddress::from_local_part(&mb, site_forms) else {
            continue;
        };
        for (name, cfg) in plans() {
            let plan = DialPlan::new(&cfg.dialplan);
            let Ok(d) = plan.resolve(&fax.number) else {
                continue;
            };
            let digits = d
                .e164
                .strip_prefix('+')
                .unwrap_or_else(|| panic!("{name}: E.164 form without +: {:?}", d.e164));
            assert!(
                (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()),
                "{name}: bad E.164 form {:?} for {path:?}",
                d.e164
            );
            assert!(
                d.dial
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"*#,W".contains(&b)),
                "{name}: dial string {:?} for {path:?}",
                d.dial
            );
            assert!(
                !d.international || cfg.dialplan.allow_international,
                "{name}: international {:?} resolved although refused",
                d.e164
            );
        }
    }
}

proptest! {
    #![proptest_config(crate::config())]

    #[test]
    fn address_and_dialplan_never_panic_and_never_inject(
        data in prop_oneof![
            4 => crate::mutated(seeds(), TOKENS),
            1 => "\\PC{0,300}".prop_map(String::into_bytes),
        ],
    ) {
        crate::run_case("address", data, 1 << 20, check);
    }
}

#[test]
fn address_seeds_replay() {
    let seeds = seeds();
    assert!(seeds.len() >= 20, "{} seeds", seeds.len());
    for s in seeds.iter() {
        crate::run_case("address", s.clone(), 1 << 20, check);
    }
}
