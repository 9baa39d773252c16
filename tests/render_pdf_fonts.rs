//! PDFs that name a standard-14 font without embedding it (the default of Ghostscript's
//! pdfwrite and of many office exporters) are drawn with the URW base-35 outlines from
//! `fonts-urw-base35`, the fonts poppler and Ghostscript draw for the same names, so that the
//! fax shows what the sender saw on screen. Checked by rendering the same page twice: once with
//! the fonts embedded by Ghostscript (its URW fonts) and once with them left out.
//!
//! Needs ghostscript (`gs`) and fonts-urw-base35.

mod common;

use std::path::Path;
use std::process::Command;

use faxgate::image::render::pdf_fonts::DEFAULT_DIR;
use faxgate::image::render::{Kind, Options, PdfFonts, Unlimited, render_part};

const PS: &str = "%!PS\n<< /PageSize [595 842] >> setpagedevice\n\
/Times-Roman findfont 11 scalefont setfont 72 760 moveto (Times: The quick brown fox jumps over the lazy dog.) show\n\
/Helvetica findfont 10 scalefont setfont 72 740 moveto (Helvetica: Sphinx of black quartz, judge my vow 0123456789.) show\n\
/Helvetica-Bold findfont 14 scalefont setfont 72 715 moveto (Helvetica-Bold: Invoice 2026-11) show\n\
/Courier findfont 10 scalefont setfont 72 690 moveto (Courier: int main(void) { return 0; }) show\n\
/Times-Italic findfont 12 scalefont setfont 72 665 moveto (Times-Italic: with kind regards) show\n\
showpage\n";

fn pdf(dir: &Path, name: &str, embed: bool) -> Vec<u8> {
    let gs = common::require_tool("gs", "ghostscript");
    let ps = dir.join("fonts.ps");
    std::fs::write(&ps, PS).unwrap();
    let out = dir.join(name);
    let mut c = Command::new(gs);
    c.args(["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite"])
        .arg("-o")
        .arg(&out);
    if embed {
        c.args([
            "-dEmbedAllFonts=true",
            "-c",
            "<< /NeverEmbed [ ] >> setdistillerparams",
            "-f",
        ]);
    }
    assert!(c.arg(&ps).status().unwrap().success(), "gs pdfwrite failed");
    std::fs::read(out).unwrap()
}

#[test]
fn standard_fonts_are_drawn_with_the_urw_outlines() {
    assert!(
        Path::new(DEFAULT_DIR)
            .join("NimbusRoman-Regular.otf")
            .is_file(),
        "this test needs the URW fonts in {DEFAULT_DIR} from the Debian package \
         `fonts-urw-base35`: run `apt-get install -y fonts-urw-base35`"
    );
    let dir = tempfile::tempdir().unwrap();
    let embedded = pdf(dir.path(), "embedded.pdf", true);
    let bare = pdf(dir.path(), "bare.pdf", false);
    assert!(
        bare.windows(9).all(|w| w != b"/FontFile"),
        "the bare PDF must not embed fonts"
    );

    let render = |bytes: &[u8], opts: &Options| {
        let r = render_part("doc.pdf", bytes, Kind::Pdf, opts, &mut Unlimited).unwrap();
        assert_eq!(r.pages.len(), 1);
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        r.pages.into_iter().next().unwrap()
    };
    let system = Options::default();
    let reference = render(&embedded, &system);
    let ours = render(&bare, &system);
    let diff = reference
        .data()
        .iter()
        .zip(ours.data())
        .map(|(a, b)| (a ^ b).count_ones())
        .sum::<u32>();
    println!(
        "non-embedded vs embedded URW: {diff} of {} black pixels differ",
        reference.black_pixels()
    );
    assert_eq!(
        diff, 0,
        "non-embedded standard fonts differ from the URW outlines"
    );

    // Without the directory the renderer's built-in substitutes are drawn: different pixels
    // (this is what the check above would see if the URW fonts were not used).
    let builtin = Options {
        pdf_fonts: PdfFonts::from_config(""),
        ..Options::default()
    };
    let substitute = render(&bare, &builtin);
    assert_ne!(
        substitute, reference,
        "built-in substitutes should differ from URW"
    );
}
