//! `faxgate render` end to end: a PDF (made with Ghostscript), a text file and an HTML file
//! become one MH TIFF-F that libtiff decodes (`tiffinfo -D`), with PNG previews; a damaged
//! PDF fails naming the input.
//!
//! Needs ghostscript (`gs`) and libtiff-tools (`tiffinfo`).

mod common;

use std::process::Command;

const PS: &str = "%!PS\n/Helvetica findfont 14 scalefont setfont\n\
72 700 moveto (Hello from PostScript) show\n2 setlinewidth 72 690 moveto 400 690 lineto stroke\n\
showpage\n72 700 moveto (Second page) show\nshowpage\n";

#[test]
fn render_cli_writes_a_tiff_libtiff_reads() {
    let gs = common::require_tool("gs", "ghostscript");
    let tiffinfo = common::require_tool("tiffinfo", "libtiff-tools");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("doc.ps"), PS).unwrap();
    let st = Command::new(gs)
        .args([
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            "-dSAFER",
            "-sDEVICE=pdfwrite",
            "-o",
        ])
        .arg(d.join("doc.pdf"))
        .arg(d.join("doc.ps"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(d.join("note.txt"), "Grüße — Привет — Γειά\n\tindented\n").unwrap();
    std::fs::write(
        d.join("page.html"),
        "<html><head><style>x{}</style></head><body><h1>Title</h1><p>Body &amp; text</p></body></html>",
    )
    .unwrap();

    let out = common::faxgate(d)
        .args([
            "render",
            "doc.pdf",
            "note.txt",
            "page.html",
            "-o",
            "out.tif",
        ])
        .args([
            "--png",
            "previews",
            "--to",
            "+12125551212",
            "--cover",
            "Quarterly",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("5 pages"));

    let info = Command::new(tiffinfo)
        .arg("-D")
        .arg(d.join("out.tif"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    let err = String::from_utf8_lossy(&info.stderr);
    assert!(info.status.success(), "{err}");
    assert!(!err.contains("rror"), "libtiff complained: {err}");
    assert_eq!(text.matches("Image Width: 1728").count(), 5, "{text}");
    assert_eq!(text.matches("CCITT Group 3").count(), 5, "{text}");
    let previews = std::fs::read_dir(d.join("previews")).unwrap().count();
    assert_eq!(previews, 5);
}

#[test]
fn render_cli_refuses_a_truncated_pdf_naming_it() {
    let gs = common::require_tool("gs", "ghostscript");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("doc.ps"), PS).unwrap();
    let st = Command::new(gs)
        .args([
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            "-dSAFER",
            "-sDEVICE=pdfwrite",
            "-o",
        ])
        .arg(d.join("doc.pdf"))
        .arg(d.join("doc.ps"))
        .status()
        .unwrap();
    assert!(st.success());
    let pdf = std::fs::read(d.join("doc.pdf")).unwrap();
    std::fs::write(d.join("cut.pdf"), &pdf[..pdf.len() * 2 / 3]).unwrap();
    let out = common::faxgate(d)
        .args(["render", "cut.pdf", "-o", "out.tif"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cut.pdf") && err.contains("truncated"),
        "{err}"
    );
    assert!(!d.join("out.tif").exists());
}
