//! PURE: a small PDF writer for fax pages, lossless and compact.
//!
//! This module owns turning pages already coded as ITU-T T.6 (MMR, "Group 4") into a PDF
//! whose page images are the very same bytes, decoded by the viewer's `CCITTFaxDecode` filter
//! (ISO 32000-1 §7.4.6, Table 11: `K < 0` is pure two-dimensional T.6 coding). Nothing is
//! re-encoded, so the PDF shows exactly the received pixels and is barely larger than the
//! TIFF-F.
//!
//! Each page is sized from its pixel density (a fine page of 1728 × 2287 at 204 × 196 dpi is
//! about 610 × 840 pt, A4). The fax convention 1 = black of [`crate::image::Page`] matches
//! `CCITTFaxDecode`'s default `BlackIs1 false`: coded black runs come out as 0 samples, which
//! `DeviceGray` paints black.
//!
//! Layout (ISO 32000-1 §7.5): header, then per page its `/Page`, content stream and image
//! XObject, then the cross-reference table with exact byte offsets and the trailer.

use std::fmt::Write as _;

use thiserror::Error;

/// Most pages written into one PDF (ours; the offramp and modems cap documents far lower).
pub const MAX_PDF_PAGES: usize = 10_000;

/// One page, already coded as T.6 MMR.
#[derive(Debug, Clone, PartialEq)]
pub struct G4Page {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Horizontal density, dots per inch (204 for T.4 8 pels/mm).
    pub x_dpi: f32,
    /// Vertical density, lines per inch (98, 196, 391).
    pub y_dpi: f32,
    /// The T.6 coded rows, with or without the EOFB.
    pub mmr: Vec<u8>,
}

/// Pages that cannot make a PDF (the caller's fault: the pages come from our own codec).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PdfError {
    /// No pages.
    #[error("a PDF needs at least one page")]
    NoPages,
    /// Over [`MAX_PDF_PAGES`].
    #[error("{0} pages is over the {MAX_PDF_PAGES}-page limit")]
    TooManyPages(usize),
    /// Zero width or height, or a density that is not a positive number.
    #[error("page {page}: {width}×{height} at {x_dpi}×{y_dpi} dpi is not a page")]
    BadPage {
        /// 1-based page number.
        page: usize,
        /// Width.
        width: u32,
        /// Height.
        height: u32,
        /// Horizontal dpi.
        x_dpi: f32,
        /// Vertical dpi.
        y_dpi: f32,
    },
}

/// Writes the PDF.
pub fn write_pdf(pages: &[G4Page]) -> Result<Vec<u8>, PdfError> {
    if pages.is_empty() {
        return Err(PdfError::NoPages);
    }
    if pages.len() > MAX_PDF_PAGES {
        return Err(PdfError::TooManyPages(pages.len()));
    }
    for (i, p) in pages.iter().enumerate() {
        let dpi_ok = |d: f32| (1.0..=10_000.0).contains(&d);
        if p.width == 0 || p.height == 0 || !dpi_ok(p.x_dpi) || !dpi_ok(p.y_dpi) {
            return Err(PdfError::BadPage {
                page: i + 1,
                width: p.width,
                height: p.height,
                x_dpi: p.x_dpi,
                y_dpi: p.y_dpi,
            });
        }
    }

    let mut out: Vec<u8> = Vec::new();
    // Objects are numbered 1 (catalog), 2 (page tree), then three per page.
    let n_objects = 2 + 3 * pages.len();
    let mut offsets = vec![0usize; n_objects + 1];
    // §7.5.2: a comment with bytes ≥ 128 right after the header marks the file as binary.
    out.extend_from_slice(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");

    offsets[1] = out.len();
    out.extend_from_slice(b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");

    offsets[2] = out.len();
    let kids: Vec<String> = (0..pages.len())
        .map(|i| format!("{} 0 R", 3 + 3 * i))
        .collect();
    let _ = write!(
        Obj(&mut out),
        "2 0 obj\n<< /Type /Pages /Kids [{}] /Count {} >>\nendobj\n",
        kids.join(" "),
        pages.len()
    );

    for (i, p) in pages.iter().enumerate() {
        let (page_id, content_id, image_id) = (3 + 3 * i, 4 + 3 * i, 5 + 3 * i);
        // Sizes are written with 4 decimals, rounded down: a renderer sizes its raster as
        // ceil(points × dpi / 72), so rounding up would add a blank column and row at the
        // fax's own resolution.
        let floor4 = |v: f64| (v * 10_000.0).floor() / 10_000.0;
        let w_pt = floor4(f64::from(p.width) * 72.0 / f64::from(p.x_dpi));
        let h_pt = floor4(f64::from(p.height) * 72.0 / f64::from(p.y_dpi));

        offsets[page_id] = out.len();
        let _ = write!(
            Obj(&mut out),
            "{page_id} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {w_pt:.4} {h_pt:.4}] \
             /Resources << /XObject << /Im0 {image_id} 0 R >> >> /Contents {content_id} 0 R >>\nendobj\n"
        );

        // Scale the unit-square image onto the whole page.
        let content = format!("q {w_pt:.4} 0 0 {h_pt:.4} 0 0 cm /Im0 Do Q\n");
        offsets[content_id] = out.len();
        let _ = write!(
            Obj(&mut out),
            "{content_id} 0 obj\n<< /Length {} >>\nstream\n{content}endstream\nendobj\n",
            content.len()
        );

        offsets[image_id] = out.len();
        let _ = write!(
            Obj(&mut out),
            "{image_id} 0 obj\n<< /Type /XObject /Subtype /Image /Width {w} /Height {h} \
             /ColorSpace /DeviceGray /BitsPerComponent 1 /Filter /CCITTFaxDecode \
             /DecodeParms << /K -1 /Columns {w} /Rows {h} /BlackIs1 false >> /Length {len} >>\nstream\n",
            w = p.width,
            h = p.height,
            len = p.mmr.len()
        );
        out.extend_from_slice(&p.mmr);
        out.extend_from_slice(b"\nendstream\nendobj\n");
    }

    let xref_at = out.len();
    let _ = write!(Obj(&mut out), "xref\n0 {}\n", n_objects + 1);
    // §7.5.4: each entry is exactly 20 bytes, ending in a two-character end of line.
    out.extend_from_slice(b"0000000000 65535 f \n");
    for off in &offsets[1..] {
        let _ = writeln!(Obj(&mut out), "{off:010} 00000 n ");
    }
    let _ = write!(
        Obj(&mut out),
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
        n_objects + 1
    );
    Ok(out)
}

/// `fmt::Write` into the byte buffer (the PDF's syntax parts are ASCII).
struct Obj<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Obj<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(mmr: Vec<u8>) -> G4Page {
        G4Page {
            width: 1728,
            height: 2,
            x_dpi: 204.0,
            y_dpi: 196.0,
            mmr,
        }
    }

    /// Every offset in the xref table points at the `N 0 obj` it names.
    #[test]
    fn xref_offsets_are_exact() {
        let pdf = write_pdf(&[page(vec![0, 1, 2, 0xff]), page(b"endobj\n".to_vec())]).unwrap();
        let text = String::from_utf8_lossy(&pdf);
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[xref_at..].starts_with(b"xref\n0 9\n"));
        let table = &pdf[xref_at + b"xref\n0 9\n".len()..];
        for n in 1..9 {
            let e = &table[20 * n..20 * n + 20];
            let off: usize = std::str::from_utf8(&e[..10]).unwrap().parse().unwrap();
            assert!(
                pdf[off..].starts_with(format!("{n} 0 obj\n").as_bytes()),
                "object {n}"
            );
        }
        assert!(text.contains(
            "/DecodeParms << /K -1 /Columns 1728 /Rows 2 /BlackIs1 false >> /Length 4 >>"
        ));
        assert!(text.contains("/MediaBox [0 0 609.8823 0.7346]"), "{text}");
    }

    #[test]
    fn refuses_non_pages() {
        assert_eq!(write_pdf(&[]).unwrap_err(), PdfError::NoPages);
        let mut p = page(vec![]);
        p.x_dpi = 0.0;
        assert!(matches!(
            write_pdf(&[p]),
            Err(PdfError::BadPage { page: 1, .. })
        ));
        let mut p = page(vec![]);
        p.height = 0;
        assert!(matches!(write_pdf(&[p]), Err(PdfError::BadPage { .. })));
        let mut p = page(vec![]);
        p.y_dpi = f32::NAN;
        assert!(matches!(write_pdf(&[p]), Err(PdfError::BadPage { .. })));
    }
}
