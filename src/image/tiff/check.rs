//! The RFC 3949 profile checker: every field and layout rule of Profile S (§3) — or the
//! relaxed Profile F (§4) — checked page by page, each violation named by page and field.

use super::ifd::{Endian, Ifd, Source, read_header, tag};
use super::read::{Limits, read_page};
use super::{Profile, TiffError, resolution_allowed, width_allowed};

/// One rule broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// 1-based page; 0 for the file header.
    pub page: u32,
    /// The TIFF field (or layout aspect) at fault, e.g. `FillOrder`, `ImageWidth`, `byte order`.
    pub field: &'static str,
    /// What is wrong, citing the rule.
    pub problem: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.page == 0 {
            write!(f, "header: {}: {}", self.field, self.problem)
        } else {
            write!(f, "page {}: {}: {}", self.page, self.field, self.problem)
        }
    }
}

/// Checks a whole file against `profile` (for [`Profile::F`] the coding is ignored: any of
/// MH, MR, MMR is allowed). An empty list means it conforms. Pages are decoded too, so corrupt
/// coded data is a violation of its `StripByteCounts`/data.
pub fn check(data: &[u8], profile: Profile) -> Vec<Violation> {
    let s = profile == Profile::S;
    let mut v = Vec::new();
    let push = |v: &mut Vec<Violation>, page: u32, field: &'static str, problem: String| {
        v.push(Violation {
            page,
            field,
            problem,
        });
    };
    let mut src: &[u8] = data;
    let (endian, first) = match read_header(&mut src) {
        Ok(h) => h,
        Err(e) => {
            push(&mut v, 0, "header", e.to_string());
            return v;
        }
    };
    if endian == Endian::Big {
        push(
            &mut v,
            0,
            "byte order",
            "big-endian `MM`; RFC 3949 §3.5 requires little-endian `II`".into(),
        );
    }
    if first != 8 {
        push(
            &mut v,
            0,
            "IFD offset",
            format!("first IFD at {first}; RFC 3949 §3.5 requires 8"),
        );
    }
    let mut offset = first;
    let mut page = 0u32;
    let mut prev_end = 0u64;
    let mut totals = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while offset != 0 {
        page += 1;
        if page > 10_000 || !seen.insert(offset) {
            push(&mut v, page, "IFD", "IFD chain loops or is too long".into());
            break;
        }
        let ifd = match Ifd::read(&mut src, endian, offset, page) {
            Ok(i) => i,
            Err(e) => {
                push(&mut v, page, "IFD", e.to_string());
                break;
            }
        };
        offset = ifd.next;
        let vals: std::collections::HashMap<u16, u32> = [
            tag::NEW_SUBFILE_TYPE,
            tag::IMAGE_WIDTH,
            tag::IMAGE_LENGTH,
            tag::BITS_PER_SAMPLE,
            tag::SAMPLES_PER_PIXEL,
            tag::PHOTOMETRIC,
            tag::FILL_ORDER,
            tag::RESOLUTION_UNIT,
            tag::COMPRESSION,
            tag::T4_OPTIONS,
            tag::T6_OPTIONS,
        ]
        .into_iter()
        .filter_map(|t| ifd.value(&mut src, t, page).ok().flatten().map(|x| (t, x)))
        .collect();
        let val = |t: u16| vals.get(&t).copied();
        let need = |v: &mut Vec<Violation>,
                    t: u16,
                    field: &'static str,
                    ok: &dyn Fn(u32) -> bool,
                    rule: &str| match val(t) {
            None => push(v, page, field, format!("missing; {rule}")),
            Some(x) if !ok(x) => push(v, page, field, format!("is {x}; {rule}")),
            Some(_) => {}
        };
        need(
            &mut v,
            tag::NEW_SUBFILE_TYPE,
            "NewSubfileType",
            &|x| x & 2 != 0,
            "RFC 3949 §3.1: present with bit 1 (page) set",
        );
        if s {
            need(
                &mut v,
                tag::IMAGE_WIDTH,
                "ImageWidth",
                &|x| width_allowed(true, x),
                "Profile S allows 1728 only",
            );
        } else {
            need(
                &mut v,
                tag::IMAGE_WIDTH,
                "ImageWidth",
                &|x| width_allowed(false, x),
                "Profile F allows 1728, 2048, 2432 (and 300/400 dpi widths)",
            );
        }
        need(
            &mut v,
            tag::IMAGE_LENGTH,
            "ImageLength",
            &|x| x > 0,
            "required, nonzero",
        );
        need(
            &mut v,
            tag::BITS_PER_SAMPLE,
            "BitsPerSample",
            &|x| x == 1,
            "must be 1",
        );
        need(
            &mut v,
            tag::SAMPLES_PER_PIXEL,
            "SamplesPerPixel",
            &|x| x == 1,
            "must be 1",
        );
        need(
            &mut v,
            tag::PHOTOMETRIC,
            "PhotometricInterpretation",
            &|x| x == 0,
            "must be 0 (WhiteIsZero)",
        );
        need(
            &mut v,
            tag::FILL_ORDER,
            "FillOrder",
            &|x| x == 2,
            "RFC 3949 §3.1: must be 2 (LSB first)",
        );
        need(
            &mut v,
            tag::RESOLUTION_UNIT,
            "ResolutionUnit",
            &|x| x == 2,
            "must be 2 (inch)",
        );
        let compression = val(tag::COMPRESSION);
        if s {
            need(
                &mut v,
                tag::COMPRESSION,
                "Compression",
                &|x| x == 3,
                "Profile S requires 3 (T.4 MH)",
            );
            need(
                &mut v,
                tag::T4_OPTIONS,
                "T4Options",
                &|x| x & !4 == 0,
                "Profile S: bits 0 and 1 clear (1-D, no uncompressed mode)",
            );
        } else {
            need(
                &mut v,
                tag::COMPRESSION,
                "Compression",
                &|x| x == 3 || x == 4,
                "Profile F requires 3 (T.4) or 4 (T.6)",
            );
            match compression {
                Some(3) => need(
                    &mut v,
                    tag::T4_OPTIONS,
                    "T4Options",
                    &|x| x & 2 == 0,
                    "no uncompressed mode",
                ),
                Some(4) => {
                    if let Some(x) = val(tag::T6_OPTIONS)
                        && x & 2 != 0
                    {
                        push(
                            &mut v,
                            page,
                            "T6Options",
                            "uncompressed mode is not allowed".into(),
                        );
                    }
                }
                _ => {}
            }
        }
        let xr = ifd
            .rational(&mut src, tag::X_RESOLUTION, page)
            .ok()
            .flatten();
        let yr = ifd
            .rational(&mut src, tag::Y_RESOLUTION, page)
            .ok()
            .flatten();
        match (xr, yr) {
            (Some(x), Some(y)) => {
                if !resolution_allowed(s, x, 196.0) {
                    push(
                        &mut v,
                        page,
                        "XResolution",
                        format!("is {x}; allowed: 200 or 204 (Profile F also 300, 400)"),
                    );
                }
                if !resolution_allowed(s, 204.0, y) {
                    push(
                        &mut v,
                        page,
                        "YResolution",
                        format!(
                            "is {y}; allowed: 98, 100, 196, 200 (Profile F also 300, 391, 400)"
                        ),
                    );
                }
            }
            (None, _) => push(&mut v, page, "XResolution", "missing".into()),
            (_, None) => push(&mut v, page, "YResolution", "missing".into()),
        }
        match ifd.values(&mut src, tag::PAGE_NUMBER, page).ok().flatten() {
            None => push(
                &mut v,
                page,
                "PageNumber",
                "missing; RFC 3949 §3.1 requires it in every page's IFD".into(),
            ),
            Some(pn) if pn.len() != 2 => push(
                &mut v,
                page,
                "PageNumber",
                format!("has {} values, needs 2", pn.len()),
            ),
            Some(pn) => {
                if pn[0] != page - 1 {
                    push(
                        &mut v,
                        page,
                        "PageNumber",
                        format!(
                            "says page {} (0-based), but this is page {}",
                            pn[0],
                            page - 1
                        ),
                    );
                }
                totals.push(pn[1]);
            }
        }
        // Layout rules (RFC 3949 §3.5).
        let offsets = ifd
            .values(&mut src, tag::STRIP_OFFSETS, page)
            .ok()
            .flatten();
        let counts = ifd
            .values(&mut src, tag::STRIP_BYTE_COUNTS, page)
            .ok()
            .flatten();
        match (&offsets, &counts) {
            (Some(o), Some(c)) if o.len() == 1 && c.len() == 1 => {
                if u64::from(o[0]) < u64::from(ifd.offset) + u64::from(ifd.len()) {
                    push(
                        &mut v,
                        page,
                        "StripOffsets",
                        "image data before its IFD; RFC 3949 §3.5: each IFD precedes its data"
                            .into(),
                    );
                }
                prev_end = prev_end.max(u64::from(o[0]) + u64::from(c[0]));
            }
            (Some(o), _) if o.len() != 1 => push(
                &mut v,
                page,
                "StripOffsets",
                format!(
                    "{} strips; RFC 3949 §3.5 requires one strip per page",
                    o.len()
                ),
            ),
            _ => push(
                &mut v,
                page,
                "StripOffsets",
                "StripOffsets/StripByteCounts missing or mismatched".into(),
            ),
        }
        let ifd_end = u64::from(ifd.offset) + u64::from(ifd.len());
        for (t, name, want) in [
            (tag::X_RESOLUTION, "XResolution", ifd_end),
            (tag::Y_RESOLUTION, "YResolution", ifd_end + 8),
        ] {
            if let Some(e) = ifd.get(t)
                && let Some(off) = ifd.value_offset(e)
                && u64::from(off) != want
            {
                push(
                    &mut v,
                    page,
                    name,
                    format!("value at {off}; RFC 3949 §3.5 puts it right after the IFD, at {want}"),
                );
            }
        }
        let mut sorted = true;
        for w in ifd.entries.windows(2) {
            sorted &= w[0].tag < w[1].tag;
        }
        if !sorted {
            push(
                &mut v,
                page,
                "IFD",
                "entries not in ascending tag order (TIFF 6.0 §2)".into(),
            );
        }
        if ifd.next != 0 && u64::from(ifd.next) < prev_end {
            push(
                &mut v,
                page,
                "IFD",
                "next IFD is not after this page's data (RFC 3949 §3.5: IFDs in page order)".into(),
            );
        }
        // The data itself must decode.
        let limits = Limits {
            max_pages: u32::MAX,
            ..Limits::default()
        };
        match read_page(&mut src, &ifd, page, &limits) {
            Ok(_) => {}
            Err(TiffError::Decode { source, .. }) => {
                push(&mut v, page, "image data", source.to_string())
            }
            Err(e) => push(&mut v, page, "image data", e.to_string()),
        }
        if s && compression == Some(3) {
            check_mh_framing(&mut src, &ifd, page, &mut v);
        }
    }
    if let Some(&t) = totals.first()
        && (t != page || totals.iter().any(|&x| x != t))
    {
        push(
            &mut v,
            1,
            "PageNumber",
            format!("page totals {totals:?} do not all equal the {page} pages of the file"),
        );
    }
    v
}

/// RFC 3949 §3: every MH line starts with an EOL; the page should not end with RTC.
fn check_mh_framing<S: Source>(src: &mut S, ifd: &Ifd, page: u32, v: &mut Vec<Violation>) {
    use crate::image::codec::bits::{BitOrder, BitReader};
    let (Ok(Some(o)), Ok(Some(c)), Ok(Some(h)), Ok(Some(w))) = (
        ifd.value(src, tag::STRIP_OFFSETS, page),
        ifd.value(src, tag::STRIP_BYTE_COUNTS, page),
        ifd.value(src, tag::IMAGE_LENGTH, page),
        ifd.value(src, tag::IMAGE_WIDTH, page),
    ) else {
        return;
    };
    // The same bound the reader applies to a strip (the data was decoded already; this only
    // re-reads it for framing).
    if u64::from(c) > Limits::default().max_strip_bytes {
        return;
    }
    let mut data = vec![0u8; c as usize];
    if src.read_at(u64::from(o), &mut data).is_err() {
        return;
    }
    let order = match ifd.value(src, tag::FILL_ORDER, page) {
        Ok(Some(2)) => BitOrder::LsbFirst,
        _ => BitOrder::MsbFirst,
    };
    // Count EOLs: a run of ≥ 11 zeros then a one. Lines + RTC (6) at most.
    let mut r = BitReader::new(&data, order);
    let mut eols = 0u64;
    let mut consecutive = 0u32;
    let mut max_consecutive = 0u32;
    let mut first_is_eol = None;
    loop {
        let z = r.skip_zeros();
        if r.at_end() {
            break;
        }
        r.consume(1);
        let is_eol = z >= 11;
        if first_is_eol.is_none() {
            first_is_eol = Some(is_eol);
        }
        if is_eol {
            eols += 1;
            // An EOL right after an EOL (12 bits apart) is RTC.
            if r.peek(12) == 1 {
                consecutive += 1;
            } else {
                consecutive = 0;
            }
            max_consecutive = max_consecutive.max(consecutive);
        }
    }
    if first_is_eol != Some(true) || eols < u64::from(h) {
        push_v(
            v,
            page,
            "image data",
            format!(
                "{eols} EOLs for {h} lines of width {w}: RFC 3949 §3 requires an EOL before every MH line"
            ),
        );
    }
    if max_consecutive >= 5 {
        push_v(
            v,
            page,
            "image data",
            "page ends with RTC; RFC 3949 §3: RTC should not be written".into(),
        );
    }
}

fn push_v(v: &mut Vec<Violation>, page: u32, field: &'static str, problem: String) {
    v.push(Violation {
        page,
        field,
        problem,
    });
}
