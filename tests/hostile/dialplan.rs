//! Toll fraud through the dial plan (issue 21): numbers an attacker writes so that the gateway
//! dials abroad, a premium line or a chargeable service on the site's bill.
//!
//! The shipped plans are the embedded NANP default and a UK plan written with the ordinary keys
//! (`country_code = "44"`, `national_prefix = "0"`, `international_prefix = "00"`), loaded from
//! TOML the way a site would write it. Each has a table of well over 100 numbers: fraud that must
//! be refused, with the reason, and legitimate numbers that must be accepted with their exact dial
//! string. Every row goes through the RCPT address parser first, as mail does.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use faxgate::config::{self, Config};
use faxgate::mail::address::{FaxAddress, Number, parse_forward_path};
use faxgate::mail::dialplan::{DialError, DialPlan};
use faxgate::smtp::session::{Output, Policy, Session};
use proptest::prelude::*;

/// What a row must come to.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Accepted, dialled exactly so.
    Dial(&'static str),
    /// Refused by the numbering structure; the reason contains the text.
    Malformed(&'static str),
    /// Refused as a special service; the reason contains the text.
    Service(&'static str),
    /// Refused as premium rate.
    Premium,
    /// Refused as international.
    International,
    /// Refused as not E.164 at all.
    Invalid,
    /// Refused by the address parser before the dial plan.
    BadAddress,
}

use Want::*;

// Reasons, as the refusals word them.
const INTL_PREFIX: &str = "begin with the international prefix";
const TRUNK_PREFIX: &str = "begin with the trunk prefix";
const NPA_2_9: &str = "area code starts with 2-9";
const NXX_2_9: &str = "exchange code starts with 2-9";
const SHORT_NANP: &str = "fewer than 10 digits after +1";
const LONG_NANP: &str = "more than 10 digits after +1";
const DA: &str = "directory assistance";
const N11: &str = "N11";
const PCS: &str = "personal communications";
const TOLL_FREE: &str = "toll-free";
const UNUSED_UK: &str = "not a UK number range in use";
const SHORT_UK: &str = "too few digits for this UK number range";
const LONG_UK: &str = "too many digits for this UK number range";
const UK_0: &str = "never starts with 0";

/// The embedded default: country 1, national prefix 1, international prefix 011, no area code.
const NANP: &[(&str, Want)] = &[
    // Legitimate: US geographic numbers, in every written form.
    ("FAX=+1-212-555-0142", Dial("12125550142")),
    ("FAX=+12125550188", Dial("12125550188")),
    ("FAX=+1.202.555.0173", Dial("12025550173")),
    ("FAX=+14155552671", Dial("14155552671")),
    ("FAX=+16175550100", Dial("16175550100")),
    ("FAX=+13055550123", Dial("13055550123")),
    ("FAX=+17135550155", Dial("17135550155")),
    ("FAX=+12065550111", Dial("12065550111")),
    ("FAX=+13125550000", Dial("13125550000")),
    ("FAX=+17185559876", Dial("17185559876")),
    ("FAX=+13105551234", Dial("13105551234")),
    ("FAX=+12123456789", Dial("12123456789")),
    ("FAX=+12122000000", Dial("12122000000")),
    ("FAX=+18085550100", Dial("18085550100")),
    ("FAX=+19075550100", Dial("19075550100")),
    ("FAX=+15095550100", Dial("15095550100")),
    ("FAX=+15205550100", Dial("15205550100")),
    ("FAX=+15305550100", Dial("15305550100")),
    ("FAX=+15595550100", Dial("15595550100")),
    ("FAX=+17025550100", Dial("17025550100")),
    ("FAX=+17205550100", Dial("17205550100")),
    ("FAX=+17735550100", Dial("17735550100")),
    ("FAX=+19175550100", Dial("19175550100")),
    ("FAX=+19495550100", Dial("19495550100")),
    ("FAX=+14045550100", Dial("14045550100")),
    ("FAX=+19725550100", Dial("19725550100")),
    ("FAX=+12105550100", Dial("12105550100")),
    ("FAX=+12815550100", Dial("12815550100")),
    ("FAX=+14695550100", Dial("14695550100")),
    ("FAX=+19785550100", Dial("19785550100")),
    // Canada is domestic to the US plan.
    ("FAX=+14165550123", Dial("14165550123")),
    ("FAX=+16045550188", Dial("16045550188")),
    ("FAX=+15145550144", Dial("15145550144")),
    ("FAX=+14035550110", Dial("14035550110")),
    ("FAX=+19025550155", Dial("19025550155")),
    ("FAX=+18675550100", Dial("18675550100")),
    ("FAX=+17095550100", Dial("17095550100")),
    ("FAX=+12045550100", Dial("12045550100")),
    ("FAX=+13065550100", Dial("13065550100")),
    ("FAX=+16135550100", Dial("16135550100")),
    ("FAX=+15065550100", Dial("15065550100")),
    // Toll-free codes in service.
    ("FAX=+18005550199", Dial("18005550199")),
    ("FAX=+18885550100", Dial("18885550100")),
    ("FAX=+18775550123", Dial("18775550123")),
    ("FAX=+18665550142", Dial("18665550142")),
    ("FAX=+18555550111", Dial("18555550111")),
    ("FAX=+18445550100", Dial("18445550100")),
    ("FAX=+18335550100", Dial("18335550100")),
    // Site forms and a subaddress.
    ("2125550142", Dial("12125550142")),
    ("12125550142", Dial("12125550142")),
    ("1-212-555-0142", Dial("12125550142")),
    ("212.555.0142", Dial("12125550142")),
    ("+1-212-555-0142", Dial("12125550142")),
    ("fax=2125550142", Dial("12125550142")),
    ("fax=12125550142", Dial("12125550142")),
    ("fax=1-800-555-0199", Dial("18005550199")),
    ("FAX=+1-212-555-0142/T33S=42", Dial("12125550142")),
    // Issue 21: an NSN starting with the international prefix dialled 1 011 44…
    ("FAX=+101144207946", Malformed(INTL_PREFIX)),
    ("FAX=+10114420794600", Malformed(INTL_PREFIX)),
    ("FAX=+10112125550142", Malformed(INTL_PREFIX)),
    ("FAX=+1-011-33-1-4268", Malformed(INTL_PREFIX)),
    ("FAX=+1011442079460000", Invalid),
    ("FAX=+1011", Invalid),
    // Operator, carrier access (1010XXX dial-around) and 0XX/1XX area codes.
    ("FAX=+10212555014", Malformed(NPA_2_9)),
    ("FAX=+10005550100", Malformed(NPA_2_9)),
    ("FAX=+10125550100", Malformed(NPA_2_9)),
    ("FAX=+1101028801144", Malformed(TRUNK_PREFIX)),
    ("FAX=+11012125550142", Malformed(TRUNK_PREFIX)),
    ("FAX=+11125550100", Malformed(TRUNK_PREFIX)),
    ("FAX=+11995550100", Malformed(TRUNK_PREFIX)),
    // The other countries and territories inside +1.
    ("FAX=+1-242-555-0100", International),
    ("FAX=+12465550100", International),
    ("FAX=+12645550100", International),
    ("FAX=+12685550100", International),
    ("FAX=+12845550100", International),
    ("FAX=+13405550100", International),
    ("FAX=+13455550100", International),
    ("FAX=+14415550100", International),
    ("FAX=+14735550100", International),
    ("FAX=+16495550100", International),
    ("FAX=+16585550100", International),
    ("FAX=+16645550100", International),
    ("FAX=+16705550100", International),
    ("FAX=+16715550100", International),
    ("FAX=+16845550100", International),
    ("FAX=+17215550100", International),
    ("FAX=+17585550100", International),
    ("FAX=+17675550100", International),
    ("FAX=+17845550100", International),
    ("FAX=+17875550100", International),
    ("FAX=+18095550100", International),
    ("FAX=+18295550100", International),
    ("FAX=+18495550100", International),
    ("FAX=+18685550100", International),
    ("FAX=+18695550100", International),
    ("FAX=+18765550100", International),
    ("FAX=+19395550100", International),
    ("18095550100", International),
    ("01118765550100", International),
    ("fax=1-876-555-0100", International),
    // Directory assistance.
    ("FAX=+12125551212", Service(DA)),
    ("FAX=+1-800-555-1212", Service(DA)),
    ("FAX=+14155551212", Service(DA)),
    ("FAX=+19005551212", Service(DA)),
    ("2125551212", Service(DA)),
    // N11 service codes as the exchange or as the area code.
    ("FAX=+12124111234", Service(N11)),
    ("FAX=+12129110000", Service(N11)),
    ("FAX=+12126111234", Service(N11)),
    ("FAX=+12122111234", Service(N11)),
    ("FAX=+12123111234", Service(N11)),
    ("FAX=+12125111234", Service(N11)),
    ("FAX=+12127111234", Service(N11)),
    ("FAX=+12128111234", Service(N11)),
    ("FAX=+14115550100", Malformed(N11)),
    ("FAX=+19115550100", Malformed(N11)),
    ("FAX=+12115550100", Malformed(N11)),
    ("FAX=+16115550100", Malformed(N11)),
    // Non-geographic services.
    ("FAX=+17005550100", Service("700")),
    ("FAX=+15005550100", Service(PCS)),
    ("FAX=+14565550100", Service("456")),
    ("FAX=+15215550100", Service(PCS)),
    ("FAX=+15335550100", Service(PCS)),
    ("FAX=+15445550100", Service(PCS)),
    ("FAX=+15665550100", Service(PCS)),
    ("FAX=+15775550100", Service(PCS)),
    ("FAX=+15885550100", Service(PCS)),
    ("FAX=+16005550100", Service("600")),
    ("FAX=+17105550100", Service("710")),
    ("FAX=+18805550100", Service(TOLL_FREE)),
    ("FAX=+18815550100", Service(TOLL_FREE)),
    ("FAX=+18825550100", Service(TOLL_FREE)),
    ("FAX=+18225550100", Service(TOLL_FREE)),
    ("FAX=+18835550100", Service(TOLL_FREE)),
    ("FAX=+18895550100", Service(TOLL_FREE)),
    ("FAX=+12129500100", Service("carrier access")),
    ("FAX=+12129580100", Service("test codes")),
    ("FAX=+12129590100", Service("test codes")),
    // Premium rate.
    ("FAX=+19005550100", Premium),
    ("FAX=+1-900-555-0142", Premium),
    ("FAX=+12129761234", Premium),
    ("FAX=+13129760000", Premium),
    ("FAX=+18009765555", Premium),
    ("2129761234", Premium),
    // Reserved and unassigned area codes.
    ("FAX=+12905550100", Malformed("N9X")),
    ("FAX=+13905550100", Malformed("N9X")),
    ("FAX=+18995550100", Malformed("N9X")),
    ("FAX=+13725550100", Malformed("reserved")),
    ("FAX=+19605550100", Malformed("reserved")),
    ("FAX=+12005550100", Malformed("easily recognisable")),
    ("FAX=+13005550100", Malformed("easily recognisable")),
    ("FAX=+14005550100", Malformed("easily recognisable")),
    ("FAX=+15555550100", Malformed("easily recognisable")),
    // Exchanges starting 0 or 1.
    ("FAX=+12120550100", Malformed(NXX_2_9)),
    ("FAX=+12121550100", Malformed(NXX_2_9)),
    // Wrong lengths.
    ("FAX=+1212555014", Malformed(SHORT_NANP)),
    ("FAX=+1212555", Malformed(SHORT_NANP)),
    ("FAX=+121255501420", Malformed(LONG_NANP)),
    ("FAX=+12125550142999", Malformed(LONG_NANP)),
    ("FAX=+12125", Invalid),
    ("5550142", Malformed(SHORT_NANP)),
    ("2125550142999", Malformed(LONG_NANP)),
    // Short codes and operator calls as site numbers.
    ("411", Invalid),
    ("911", Invalid),
    ("0", Invalid),
    ("011", Invalid),
    ("0442079460000", Malformed(NPA_2_9)),
    ("1011442079460000", Invalid),
    ("10102880114420794600", BadAddress),
    // Other countries.
    ("FAX=+442079460000", International),
    ("FAX=+33142685300", International),
    ("FAX=+4930123456", International),
    ("FAX=+861012345678", International),
    ("FAX=+2348031234567", International),
    ("FAX=+881631234567", International),
    ("FAX=+870773123456", International),
    ("011442079460000", International),
    ("01133142685300", International),
    // +44 numbers keep the UK structure from a NANP plan too.
    ("FAX=+44012125551212", Malformed(UK_0)),
    ("FAX=+440909876543", Malformed(UK_0)),
    ("FAX=+449098765432", Premium),
    // Not numbers at all.
    ("FAX=+1-800-FLOWERS", BadAddress),
    ("FAX=+12345678901234567890", BadAddress),
];

/// The UK plan: country 44, national prefix 0, international prefix 00, no area code.
const UK: &[(&str, Want)] = &[
    // Legitimate geographic numbers (Ofcom's drama ranges where there is one).
    ("FAX=+44-20-7946-0000", Dial("02079460000")),
    ("FAX=+442079460123", Dial("02079460123")),
    ("FAX=+441612345678", Dial("01612345678")),
    ("FAX=+441214960000", Dial("01214960000")),
    ("FAX=+441134960000", Dial("01134960000")),
    ("FAX=+441144960000", Dial("01144960000")),
    ("FAX=+441154960000", Dial("01154960000")),
    ("FAX=+441164960000", Dial("01164960000")),
    ("FAX=+441174960000", Dial("01174960000")),
    ("FAX=+441184960000", Dial("01184960000")),
    ("FAX=+441314960000", Dial("01314960000")),
    ("FAX=+441414960000", Dial("01414960000")),
    ("FAX=+441514960000", Dial("01514960000")),
    ("FAX=+441632960000", Dial("01632960000")),
    ("FAX=+442890180000", Dial("02890180000")),
    ("FAX=+442920180000", Dial("02920180000")),
    ("FAX=+442380180000", Dial("02380180000")),
    ("FAX=+442476180000", Dial("02476180000")),
    ("FAX=+441904123456", Dial("01904123456")),
    ("FAX=+44169773123", Dial("0169773123")),
    ("FAX=+441387123456", Dial("01387123456")),
    ("FAX=+441224123456", Dial("01224123456")),
    ("FAX=+441865123456", Dial("01865123456")),
    ("FAX=+441223123456", Dial("01223123456")),
    // Mobiles (07624: Isle of Man).
    ("FAX=+447700900123", Dial("07700900123")),
    ("FAX=+447911123456", Dial("07911123456")),
    ("FAX=+447400123456", Dial("07400123456")),
    ("FAX=+447624123456", Dial("07624123456")),
    ("FAX=+447507123456", Dial("07507123456")),
    ("FAX=+447812345678", Dial("07812345678")),
    // 03, freephone, 084, 0870, 055.
    ("FAX=+443069990000", Dial("03069990000")),
    ("FAX=+443001234567", Dial("03001234567")),
    ("FAX=+443331234567", Dial("03331234567")),
    ("FAX=+443451234567", Dial("03451234567")),
    ("FAX=+443701234567", Dial("03701234567")),
    ("FAX=+448081570000", Dial("08081570000")),
    ("FAX=+44800123456", Dial("0800123456")),
    ("FAX=+448001234567", Dial("08001234567")),
    ("FAX=+448431234567", Dial("08431234567")),
    ("FAX=+448441234567", Dial("08441234567")),
    ("FAX=+448451234567", Dial("08451234567")),
    ("FAX=+448421234567", Dial("08421234567")),
    ("FAX=+448701234567", Dial("08701234567")),
    ("FAX=+445512345678", Dial("05512345678")),
    // Site forms and a subaddress.
    ("02079460000", Dial("02079460000")),
    ("020-7946-0000", Dial("02079460000")),
    ("fax=01612345678", Dial("01612345678")),
    ("01612345678", Dial("01612345678")),
    ("2079460000", Dial("02079460000")),
    ("+44-161-234-5678", Dial("01612345678")),
    ("FAX=+442079460000/T33S=7", Dial("02079460000")),
    // Issue 21: +44 then the trunk prefix dialled 0 + 012125551212 = the USA, and 00 + 90…
    ("FAX=+44012125551212", Malformed(TRUNK_PREFIX)),
    ("FAX=+440909876543", Malformed(TRUNK_PREFIX)),
    ("FAX=+440012125551212", Malformed(INTL_PREFIX)),
    ("FAX=+44-00-1-212-555-0142", Malformed(INTL_PREFIX)),
    ("FAX=+440033142685300", Malformed(INTL_PREFIX)),
    ("FAX=+4400000000", Malformed(INTL_PREFIX)),
    ("FAX=+4400353112345678", Invalid),
    ("FAX=+4407911123456", Malformed(TRUNK_PREFIX)),
    ("FAX=+44020794600", Malformed(TRUNK_PREFIX)),
    ("FAX=+440800123456", Malformed(TRUNK_PREFIX)),
    ("FAX=+440118118", Malformed(TRUNK_PREFIX)),
    ("FAX=+44-0-161-234-5678", Malformed(TRUNK_PREFIX)),
    ("FAX=+440044161234567", Malformed(INTL_PREFIX)),
    ("FAX=+4400112125550", Malformed(INTL_PREFIX)),
    ("FAX=+4400441612345678", Invalid),
    ("FAX=+4401", Invalid),
    ("FAX=+44000", Invalid),
    // Premium rate: 09 and 0871-0873, without any `premium` pattern.
    ("FAX=+449098765432", Premium),
    ("FAX=+449012345678", Premium),
    ("FAX=+449112345678", Premium),
    ("FAX=+449812345678", Premium),
    ("FAX=+448712345678", Premium),
    ("FAX=+448722345678", Premium),
    ("FAX=+448732345678", Premium),
    ("FAX=+449612345678", Premium),
    ("FAX=+449712345678", Premium),
    ("FAX=+449082345678", Premium),
    ("FAX=+449832345678", Premium),
    ("09098765432", Premium),
    ("fax=0871-234-5678", Premium),
    // Personal numbering and paging.
    ("FAX=+447012345678", Service("070")),
    ("FAX=+447031234567", Service("070")),
    ("FAX=+447612345678", Service("076")),
    ("FAX=+447623123456", Service("076")),
    ("FAX=+447022345678", Service("070")),
    ("FAX=+447600123456", Service("076")),
    ("FAX=+447699123456", Service("076")),
    ("07012345678", Service("070")),
    // Ranges not in use.
    ("FAX=+444012345678", Malformed(UNUSED_UK)),
    ("FAX=+445012345678", Malformed(UNUSED_UK)),
    ("FAX=+445612345678", Malformed(UNUSED_UK)),
    ("FAX=+446012345678", Malformed(UNUSED_UK)),
    ("FAX=+444412345678", Malformed(UNUSED_UK)),
    ("FAX=+446612345678", Malformed(UNUSED_UK)),
    ("FAX=+445912345678", Malformed(UNUSED_UK)),
    ("FAX=+448212345678", Malformed(UNUSED_UK)),
    ("FAX=+448112345678", Malformed(UNUSED_UK)),
    ("FAX=+448512345678", Malformed(UNUSED_UK)),
    ("FAX=+448612345678", Malformed(UNUSED_UK)),
    ("FAX=+448812345678", Malformed(UNUSED_UK)),
    ("FAX=+448912345678", Malformed(UNUSED_UK)),
    ("FAX=+448021234567", Malformed(UNUSED_UK)),
    ("FAX=+448401234567", Malformed(UNUSED_UK)),
    ("FAX=+448461234567", Malformed(UNUSED_UK)),
    ("FAX=+448741234567", Malformed(UNUSED_UK)),
    // Wrong lengths.
    ("FAX=+4420794600", Malformed(SHORT_UK)),
    ("FAX=+44207946000012", Malformed(LONG_UK)),
    ("FAX=+441612345", Malformed(SHORT_UK)),
    ("FAX=+4416123456789", Malformed(LONG_UK)),
    ("FAX=+4477009001", Malformed(SHORT_UK)),
    ("FAX=+4477009001234", Malformed(LONG_UK)),
    ("FAX=+4480012345", Malformed(SHORT_UK)),
    ("FAX=+44800123456789", Malformed(LONG_UK)),
    ("FAX=+44118118", Malformed(SHORT_UK)),
    ("FAX=+4455123", Malformed(SHORT_UK)),
    ("FAX=+443001234", Malformed(SHORT_UK)),
    ("FAX=+449098", Invalid),
    // Short codes and prefixes as site numbers.
    ("118118", Malformed(SHORT_UK)),
    ("0118118", Malformed(SHORT_UK)),
    ("17070", Malformed(SHORT_UK)),
    ("999", Invalid),
    ("112", Invalid),
    ("100", Invalid),
    ("1571", Invalid),
    ("0", Invalid),
    ("00", Invalid),
    ("000", Invalid),
    ("00012125551212", Invalid),
    ("0000012125550142", Invalid),
    // International, written any way.
    ("0012125550142", International),
    ("001-212-555-0142", International),
    ("00909876543", International),
    ("0033142685300", International),
    ("FAX=+12125550142", International),
    ("FAX=+33142685300", International),
    ("FAX=+353112345678", International),
    ("FAX=+2348031234567", International),
    ("FAX=+18095550100", International),
    ("FAX=+4930123456", International),
    ("FAX=+881631234567", International),
    ("FAX=+870773123456", International),
    ("FAX=+41446681800", International),
    ("FAX=+390612345678", International),
    ("FAX=+34912345678", International),
    ("FAX=+31201234567", International),
    ("FAX=+4721234567", International),
    ("FAX=+4681234567", International),
    ("FAX=+27211234567", International),
    ("FAX=+61212345678", International),
    ("FAX=+81312345678", International),
    ("FAX=+8613812345678", International),
    ("FAX=+97141234567", International),
    // +1 numbers keep the NANP structure from a UK plan too.
    ("FAX=+12125551212", Service(DA)),
    ("FAX=+19005550100", Premium),
    ("FAX=+1011442079460", Malformed(NPA_2_9)),
    // Not numbers at all.
    ("FAX=+44-20-SCAM", BadAddress),
    ("FAX=+44123456789012345678", BadAddress),
];

/// The UK plan exactly as a site writes it in `faxgate.toml`, loaded and validated like the
/// daemon's own config; `extra` adds keys to the `[dialplan]` section.
fn uk_config(extra: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faxgate.toml");
    std::fs::write(
        &path,
        format!(
            "[gateway]\nhostname = \"gw.fax.example\"\ndomains = [\"fax.example\"]\n\
             [dialplan]\ncountry_code = \"44\"\nnational_prefix = \"0\"\n\
             international_prefix = \"00\"\n{extra}"
        ),
    )
    .unwrap();
    match config::load(Some(&path), Vec::new()) {
        Ok(l) => l.config,
        Err(e) => panic!("the UK plan does not load: {e:?}"),
    }
}

/// One row through the address parser (site forms on) and the dial plan: `None` when it came
/// out as wanted, else what happened instead.
fn check(plan: &DialPlan, intl_prefix: &str, local: &str, want: Want) -> Option<String> {
    let got = parse_forward_path(&format!("{local}@fax.example"))
        .and_then(|mb| FaxAddress::from_local_part(&mb, true));
    let number = match (got, want) {
        (Err(_), BadAddress) => return None,
        (Err(e), _) => return Some(format!("address refused: {e}")),
        (Ok(f), BadAddress) => return Some(format!("address accepted as {:?}", f.number)),
        (Ok(f), _) => f.number,
    };
    let r = plan.resolve(&number);
    let ok = match (&r, want) {
        (Ok(d), Dial(dial)) => {
            d.dial == dial && !d.international && !d.dial.starts_with(intl_prefix)
        }
        (Err(e @ DialError::Malformed(..)), Malformed(why))
        | (Err(e @ DialError::Service(..)), Service(why)) => e.to_string().contains(why),
        (Err(DialError::Premium(_)), Premium)
        | (Err(DialError::International(_)), International)
        | (Err(DialError::Invalid(_)), Invalid) => true,
        _ => false,
    };
    (!ok).then(|| format!("{r:?}"))
}

/// Runs a whole table; fails listing every row that came out wrong.
fn run_table(plan: &DialPlan, intl_prefix: &str, table: &[(&str, Want)]) {
    let wrong: Vec<String> = table
        .iter()
        .filter_map(|&(local, want)| {
            check(plan, intl_prefix, local, want)
                .map(|got| format!("{local}: want {want:?}, got {got}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} rows wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn counts(table: &[(&str, Want)]) -> (usize, usize) {
    let accepted = table.iter().filter(|(_, w)| matches!(w, Dial(_))).count();
    (accepted, table.len() - accepted)
}

#[test]
fn dialplan_nanp_default_fraud_table() {
    let (accepted, refused) = counts(NANP);
    assert!(accepted >= 40 && refused >= 100, "{accepted} / {refused}");
    let plan = DialPlan::new(&Config::default().dialplan);
    run_table(&plan, "011", NANP);
}

#[test]
fn dialplan_uk_fraud_table() {
    let (accepted, refused) = counts(UK);
    assert!(accepted >= 40 && refused >= 100, "{accepted} / {refused}");
    let plan = DialPlan::new(&uk_config("").dialplan);
    run_table(&plan, "00", UK);
}

/// The appliance config (area code 212, a deny pattern) refuses every fraud row of the NANP
/// table written in the `+` form, for the same reason, and dials the same legitimate numbers.
#[test]
fn dialplan_firmware_config_refuses_the_nanp_fraud_rows() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/firmware-config/faxgate.toml");
    let c = match config::load(Some(std::path::Path::new(path)), Vec::new()) {
        Ok(l) => l.config,
        Err(e) => panic!("firmware config does not load: {e:?}"),
    };
    let plan = DialPlan::new(&c.dialplan);
    let global: Vec<(&str, Want)> = NANP
        .iter()
        .copied()
        .filter(|(l, _)| l.starts_with("FAX=+"))
        .collect();
    assert!(global.len() >= 150, "{}", global.len());
    run_table(&plan, "011", &global);
    // Local numbers of area 212 complete to it; the deny pattern still holds.
    run_table(
        &plan,
        "011",
        &[("5550142", Dial("12125550142")), ("5551212", Service(DA))],
    );
    assert!(matches!(
        plan.resolve(&Number::Global("12125550190".into())),
        Err(DialError::Denied(_))
    ));
}

/// A London PBX: area code 20 completes local numbers, which are dialled without it, behind the
/// outside-line prefix; a local number that would begin with 0 or 1 (a prefix or a service code
/// such as 101) is dialled in national form. The trunk-prefix trick stays refused when
/// international calls are allowed.
#[test]
fn dialplan_uk_london_pbx_local_numbers() {
    let c = uk_config("area_code = \"20\"\nstrip_local_area = true\noutside_prefix = \"9,\"\n");
    let plan = DialPlan::new(&c.dialplan);
    run_table(
        &plan,
        "00",
        &[
            ("79460000", Dial("9,79460000")),
            ("FAX=+442079460000", Dial("9,79460000")),
            ("02079460000", Dial("9,79460000")),
            ("FAX=+441612345678", Dial("9,01612345678")),
            ("FAX=+442000123456", Dial("9,02000123456")),
            ("FAX=+442010123456", Dial("9,02010123456")),
            ("12345", Malformed(SHORT_UK)),
            ("0012125550142", International),
            ("FAX=+44012125551212", Malformed(TRUNK_PREFIX)),
        ],
    );
    let open = uk_config(
        "area_code = \"20\"\nstrip_local_area = true\noutside_prefix = \"9,\"\n\
         allow_international = true\n",
    );
    let plan = DialPlan::new(&open.dialplan);
    let d = plan.resolve(&Number::Site("0012125550142".into())).unwrap();
    assert_eq!(
        (d.dial.as_str(), d.international),
        ("9,0012125550142", true)
    );
    for n in ["44012125551212", "440909876543", "440012125551212"] {
        assert!(
            matches!(
                plan.resolve(&Number::Global(n.into())),
                Err(DialError::Malformed(..))
            ),
            "+{n}"
        );
    }
}

/// `international_areas` is the policy for the other countries inside +1: allowed as a whole by
/// `allow_international` (dialled like national numbers), or opted out area by area.
#[test]
fn dialplan_nanp_international_areas_are_overridable() {
    let mut c = Config::default().dialplan;
    c.allow_international = true;
    let d = DialPlan::new(&c)
        .resolve(&Number::Global("18765550100".into()))
        .unwrap();
    assert_eq!((d.dial.as_str(), d.international), ("18765550100", true));
    let mut c = Config::default().dialplan;
    c.international_areas
        .retain(|a| a != "+1787*" && a != "+1939*");
    let plan = DialPlan::new(&c);
    let pr = plan.resolve(&Number::Global("17875550100".into())).unwrap();
    assert_eq!((pr.dial.as_str(), pr.international), ("17875550100", false));
    assert_eq!(
        plan.resolve(&Number::Global("18095550100".into())),
        Err(DialError::International("+18095550100".into()))
    );
    // The key is validated like the other pattern lists.
    let mut bad = Config::default();
    bad.dialplan.international_areas = vec!["1809*".into()];
    let keys: Vec<String> = config::validate(&bad).into_iter().map(|(k, _)| k).collect();
    assert!(
        keys.contains(&"dialplan.international_areas.0".to_string()),
        "{keys:?}"
    );
}

/// End to end through the SMTP session: under the UK plan, the RCPT is refused at RCPT
/// time with 550 5.1.1 and the reason, and a real UK number next to it is accepted.
#[test]
fn dialplan_uk_trunk_prefix_refused_at_rcpt() {
    let c = uk_config("");
    let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let now = Instant::now();
    let mut s = Session::new(Arc::new(Policy::from_config(&c, false)), peer, now);
    let mut say = |line: &str| {
        if !line.is_empty() {
            s.feed(now, format!("{line}\r\n").as_bytes());
        }
        let mut out = String::new();
        while let Some(o) = s.poll_output() {
            if let Output::Reply(r) = o {
                out.push_str(&r);
            }
        }
        out
    };
    assert!(say("").starts_with("220 "));
    assert!(say("EHLO client.example").starts_with("250-"));
    assert!(say("MAIL FROM:<alice@example.org>").starts_with("250 2.1.0"));
    for (rcpt, why) in [
        ("FAX=+44012125551212@fax.example", TRUNK_PREFIX),
        ("FAX=+440909876543@fax.example", TRUNK_PREFIX),
        ("FAX=+44-00-1-212-555-0142@fax.example", INTL_PREFIX),
    ] {
        let r = say(&format!("RCPT TO:<{rcpt}>"));
        assert!(
            r.starts_with("550 5.1.1 ") && r.contains("is not a valid number") && r.contains(why),
            "{rcpt}: {r:?}"
        );
    }
    let r = say("RCPT TO:<FAX=+449098765432@fax.example>");
    assert!(
        r.starts_with("550 5.7.1 ") && r.contains("premium-rate"),
        "{r:?}"
    );
    let r = say("RCPT TO:<FAX=+447012345678@fax.example>");
    assert!(
        r.starts_with("550 5.7.1 ") && r.contains("special service"),
        "{r:?}"
    );
    let r = say("RCPT TO:<FAX=+44-20-7946-0000@fax.example>");
    assert!(
        r.starts_with("250 2.1.5 ") && r.contains("+442079460000"),
        "{r:?}"
    );
}

/// The plans a property runs against: the two shipped ones, and the same with international
/// calls allowed (the domestic invariant must hold either way).
static PLANS: LazyLock<Vec<(config::DialPlan, &'static str)>> = LazyLock::new(|| {
    let nanp = Config::default().dialplan;
    let uk = uk_config("").dialplan;
    let mut nanp_open = nanp.clone();
    nanp_open.allow_international = true;
    let mut uk_open = uk.clone();
    uk_open.allow_international = true;
    vec![
        (nanp, "nanp"),
        (uk, "uk"),
        (nanp_open, "nanp open"),
        (uk_open, "uk open"),
    ]
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// For arbitrary digits, in either form, on the shipped plans: never a panic; when the
    /// plan forbids international calls nothing international is accepted; and a destination
    /// inside our country code never dials the international prefix.
    #[test]
    fn dialplan_property_never_dials_abroad_when_forbidden(
        d in "[0-9]{0,22}",
        bias in "(|0|00|000|011|1|10|101|44|440|4400|1011)",
        global in any::<bool>(),
    ) {
        let digits = format!("{bias}{d}");
        for (cfg, name) in PLANS.iter() {
            let plan = DialPlan::new(cfg);
            let n = if global {
                Number::Global(digits.clone())
            } else {
                Number::Site(digits.clone())
            };
            if let Ok(dest) = plan.resolve(&n) {
                let body = dest.dial.strip_prefix(cfg.outside_prefix.as_str()).unwrap();
                if !cfg.allow_international {
                    prop_assert!(!dest.international, "{name}: {n:?} -> {dest:?}");
                }
                let ours = format!("+{}", cfg.country_code);
                if !dest.international || dest.e164.starts_with(&ours) {
                    prop_assert!(
                        !body.starts_with(cfg.international_prefix.as_str()),
                        "{name}: {n:?} -> {dest:?}"
                    );
                }
                prop_assert!(dest.e164.len() <= 16);
                prop_assert!(dest.dial.bytes().all(|b| b.is_ascii_digit()));
            }
        }
    }

    /// Any configuration of prefixes, including overlapping ones (trunk 8, international 810):
    /// never a panic, and a number inside our country code never dials the international prefix.
    #[test]
    fn dialplan_property_any_prefixes_keep_domestic_calls_domestic(
        cc in "[1-9][0-9]{0,2}",
        national in "[0-9]{0,2}",
        international in "[0-9]{1,4}",
        area in "(|[0-9]{1,3})",
        strip in any::<bool>(),
        d in "[0-9]{0,20}",
        global in any::<bool>(),
    ) {
        let mut cfg = Config::default().dialplan;
        cfg.country_code = cc.clone();
        cfg.national_prefix = national;
        cfg.international_prefix = international.clone();
        cfg.area_code = area;
        cfg.strip_local_area = strip;
        let plan = DialPlan::new(&cfg);
        let n = if global { Number::Global(d.clone()) } else { Number::Site(d.clone()) };
        if let Ok(dest) = plan.resolve(&n) {
            prop_assert!(!dest.international);
            let ours = format!("+{cc}");
            prop_assert!(dest.e164.starts_with(&ours), "{cfg:?} {n:?} -> {dest:?}");
            prop_assert!(!dest.dial.starts_with(&international), "{cfg:?} {n:?} -> {dest:?}");
        }
    }
}
