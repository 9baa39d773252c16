//! MIME extraction of fixture emails shaped the way real clients write them
//! (`tests/fixtures/eml/`, made by `make-fixtures.py` there).

use std::path::PathBuf;

use faxgate::config::Offramp;
use faxgate::offramp::mime::{self, Content, Kind, MimeError, RasterFormat, Role, SkipReason};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eml")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn extract(name: &str) -> Result<mime::Extracted, MimeError> {
    mime::extract(
        &fixture(name),
        &mime::Policy::from_config(&Offramp::default()),
    )
}

/// (kind, role, file name) of each part.
fn shape(x: &mime::Extracted) -> Vec<(Kind, Role, Option<String>)> {
    x.parts
        .iter()
        .map(|p| (p.kind, p.role, p.name.filename.clone()))
        .collect()
}

#[test]
fn thunderbird_mixed_with_pdf() {
    let x = extract("thunderbird-pdf.eml").unwrap();
    assert_eq!(
        shape(&x),
        [
            (Kind::Text, Role::Body, None),
            (Kind::Pdf, Role::Attachment, Some("contract.pdf".into())),
        ]
    );
    assert!(x.skipped.is_empty());
    assert_eq!(x.headers.subject.as_deref(), Some("Signed contract"));
    let Content::Bytes(pdf) = &x.parts[1].content else {
        panic!("pdf is bytes")
    };
    assert!(pdf.starts_with(b"%PDF-") && pdf.windows(5).any(|w| w == b"%%EOF"));
}

#[test]
fn outlook_related_logo_skipped_jpeg_kept() {
    let x = extract("outlook-related-logo-jpeg.eml").unwrap();
    assert_eq!(
        shape(&x),
        [
            (Kind::Text, Role::Body, None),
            (
                Kind::Raster(RasterFormat::Jpeg),
                Role::Attachment,
                Some("site-photo.jpg".into())
            ),
        ]
    );
    let reasons: Vec<_> = x
        .skipped
        .iter()
        .map(|s| (s.reason, s.name.filename.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            (SkipReason::Alternative, None),
            (SkipReason::SignatureLogo, Some("image001.png".into())),
        ]
    );
    let Content::Text(t) = &x.parts[0].content else {
        panic!("text")
    };
    assert!(t.contains("here is the photo of the site"), "{t}");
}

#[test]
fn apple_mail_inline_image_is_kept() {
    let x = extract("applemail-inline-image.eml").unwrap();
    assert_eq!(
        shape(&x),
        [
            (Kind::Text, Role::Body, None),
            (
                Kind::Raster(RasterFormat::Jpeg),
                Role::Attachment,
                Some("IMG_0412.jpeg".into())
            ),
        ]
    );
    assert!(x.has_attachment());
    // The HTML twin of the text is skipped, not faxed twice.
    assert_eq!(x.skipped.len(), 1);
    assert_eq!(x.skipped[0].reason, SkipReason::Alternative);
}

#[test]
fn latin1_quoted_printable_text() {
    let x = extract("latin1-quoted-printable.eml").unwrap();
    assert_eq!(shape(&x), [(Kind::Text, Role::Body, None)]);
    let Content::Text(t) = &x.parts[0].content else {
        panic!("text")
    };
    assert!(
        t.contains("bestätigen wir Ihre Bestellung vom 26.11. über 12 Stück"),
        "{t}"
    );
    assert!(
        t.contains("Mit freundlichen Grüßen\nJürgen Müller")
            || t.contains("Mit freundlichen Grüßen\r\nJürgen Müller"),
        "{t}"
    );
    assert_eq!(
        x.headers.subject.as_deref(),
        Some("Bestätigung der Bestellung")
    );
}

#[test]
fn profile_s_tiff() {
    let x = extract("profile-s-tiff.eml").unwrap();
    assert_eq!(
        shape(&x),
        [
            (Kind::Text, Role::Body, None),
            (Kind::Tiff, Role::Attachment, Some("fax.tif".into())),
        ]
    );
}

#[test]
fn pdf_sent_as_octet_stream_is_sniffed() {
    let x = extract("octet-stream-pdf.eml").unwrap();
    assert_eq!(
        shape(&x),
        [(Kind::Pdf, Role::Attachment, Some("scan0001.pdf".into()))]
    );
    assert_eq!(x.parts[0].name.declared, "application/octet-stream");
}

#[test]
fn docx_is_taken_as_a_word_document() {
    // Faxed through the office converter (offramp::office) when there is one; extraction
    // only says what the part is.
    let x = extract("docx-attachment.eml").unwrap();
    let docx = x
        .parts
        .iter()
        .find(|p| p.name.filename.as_deref() == Some("report.docx"))
        .expect("the .docx is taken");
    assert_eq!(docx.name.index, 2);
    assert_eq!(docx.role, Role::Attachment);
    assert_eq!(
        docx.kind,
        Kind::Office(faxgate::offramp::office::Format::Docx)
    );
    assert_eq!(docx.kind.label(), "Word document (.docx)");
}

#[test]
fn damaged_fixture_variants_fail_with_the_part_named() {
    // Cut the Thunderbird PDF's base64 in the middle of a line: truncated attachment.
    let raw = String::from_utf8(fixture("thunderbird-pdf.eml")).unwrap();
    let start = raw.find("JVBERi0").unwrap();
    let cut = start + 1000 + 37;
    let end_marker = raw[cut..].find("\r\n\r\n--------------").unwrap() + cut;
    let broken = format!("{}{}", &raw[..cut], &raw[end_marker..]);
    let e = mime::extract(
        broken.as_bytes(),
        &mime::Policy::from_config(&Offramp::default()),
    )
    .unwrap_err();
    assert!(matches!(e, MimeError::BadEncoding { .. }), "{e:?}");
    assert_eq!(e.part().unwrap().filename.as_deref(), Some("contract.pdf"));
}

/// A forwarded message whose body is itself a bare `message/rfc822` (no headers of its own):
/// mail-parser's recovery from it ends in a debug assertion (Cargo.toml keeps assertions off
/// for it, as in the release build); the walk must end with a verdict, never a panic.
#[test]
fn rfc822_inside_a_headerless_rfc822_is_walked() {
    let raw = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/fuzz/mime/rfc822-in-rfc822-no-headers.eml"),
    )
    .unwrap();
    let x = mime::extract(&raw, &mime::Policy::from_config(&Offramp::default())).unwrap();
    assert_eq!(
        shape(&x),
        [
            (Kind::Text, Role::Attachment, None),
            (Kind::Text, Role::Attachment, None),
        ]
    );
    // The innermost message is faxed as the forwarded text it is.
    let Content::Text(inner) = &x.parts[1].content else {
        panic!("text")
    };
    assert_eq!(
        inner.as_str(),
        "---------- Forwarded message ----------\nSubject: x\n\nx\n"
    );
}
