//! Benchmark (not a test): PDF → fine MH TIFF-F, pages/s and peak RSS, faxgate next to
//! Ghostscript (`gs -sDEVICE=tiffg3 -r204x196`, what other fax servers run) on the same PDFs
//! in the same run: a 20-page text PDF and a 5-page image-heavy PDF, both made here with
//! Ghostscript (and ImageMagick for the photos).
//!
//! Run: `cargo bench --bench render` (release build). Prints figures; asserts nothing about
//! time. Needs ghostscript and imagemagick.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use faxgate::image::render::{Kind, Options, Unlimited, render_part};
use faxgate::image::tiff::{Profile, Writer};

fn text_ps(pages: u32) -> String {
    let mut ps = String::from("%!PS\n");
    for p in 1..=pages {
        ps +=
            "<< /PageSize [595 842] >> setpagedevice\n/Times-Roman findfont 10 scalefont setfont\n";
        for l in 0..62 {
            ps += &format!(
                "56 {} moveto (Page {p} line {l}: Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.) show\n",
                790 - l * 12
            );
        }
        ps += "/Helvetica-Bold findfont 14 scalefont setfont 56 810 moveto (Benchmark text page) show\n";
        ps += "1 setlinewidth 56 800 moveto 539 800 lineto stroke\nshowpage\n";
    }
    ps
}

fn photo_ps(dir: &Path, pages: u32) -> String {
    let mut ps = String::from("%!PS\n");
    for p in 1..=pages {
        let jpg = dir.join(format!("photo{p}.jpg"));
        let st = Command::new("convert")
            .args([
                "-seed",
                &p.to_string(),
                "-size",
                "1240x1754",
                "plasma:",
                "-blur",
                "0x2",
            ])
            .args(["-quality", "85"])
            .arg(&jpg)
            .status()
            .expect("imagemagick `convert`");
        assert!(st.success());
        ps += &format!(
            "<< /PageSize [595 842] >> setpagedevice\ngsave 36 100 translate 523 700 scale /DeviceRGB setcolorspace\n\
             << /ImageType 1 /Width 1240 /Height 1754 /BitsPerComponent 8 /Decode [0 1 0 1 0 1] \
             /ImageMatrix [1240 0 0 -1754 0 1754] /DataSource ({}) (r) file /DCTDecode filter >> image\ngrestore\n\
             /Helvetica findfont 12 scalefont setfont 36 60 moveto (Photo page {p}) show\nshowpage\n",
            jpg.display()
        );
    }
    ps
}

fn pdf(dir: &Path, name: &str, ps: &str) -> PathBuf {
    let src = dir.join(format!("{name}.ps"));
    let out = dir.join(format!("{name}.pdf"));
    std::fs::write(&src, ps).unwrap();
    let st = Command::new("gs")
        .args(["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite"])
        .arg(format!("--permit-file-read={}/", dir.display()))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("ghostscript `gs`");
    assert!(st.success());
    out
}

/// Runs a command to completion; returns (seconds, peak RSS in KiB) from wait4's rusage.
fn measure(cmd: &mut Command) -> (f64, i64) {
    let t = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child, which we then never
    // wait for again through `child`.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed"
    );
    std::mem::forget(child);
    (secs, ru.ru_maxrss)
}

fn best_of(n: usize, mut f: impl FnMut() -> (f64, i64)) -> (f64, i64) {
    (0..n)
        .map(|_| f())
        .fold((f64::MAX, 0), |(t, m), (t2, m2)| (t.min(t2), m.max(m2)))
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let docs = [
        ("20-page text PDF", pdf(d, "text", &text_ps(20)), 20u32),
        (
            "5-page image-heavy PDF",
            pdf(d, "photos", &photo_ps(d, 5)),
            5,
        ),
    ];
    let faxgate = env!("CARGO_BIN_EXE_faxgate");
    println!(
        "{:<24} {:>22} {:>22} {:>8} {:>16}",
        "document", "faxgate pages/s (RSS)", "gs pages/s (RSS)", "speed", "in-process"
    );
    for (name, path, pages) in &docs {
        let out = d.join("out.tif");
        let (ft, fm) = best_of(3, || {
            measure(
                Command::new(faxgate)
                    .args(["render", "--header", "", "--resolution", "fine", "-o"])
                    .arg(&out)
                    .arg(path),
            )
        });
        let (gt, gm) = best_of(3, || {
            measure(
                Command::new("gs")
                    .args([
                        "-q",
                        "-dNOPAUSE",
                        "-dBATCH",
                        "-dSAFER",
                        "-sDEVICE=tiffg3",
                        "-r204x196",
                    ])
                    .arg(format!("-sOutputFile={}", d.join("gs.tif").display()))
                    .arg(path),
            )
        });
        // In-process: render + MH encode into memory, no process start-up.
        let bytes = std::fs::read(path).unwrap();
        let t = Instant::now();
        let r = render_part(name, &bytes, Kind::Pdf, &Options::default(), &mut Unlimited).unwrap();
        let mut w = Writer::new(Cursor::new(Vec::new()), Profile::S).unwrap();
        for p in &r.pages {
            w.write_page(p).unwrap();
        }
        let tiff = w.finish().unwrap().into_inner();
        let inproc = f64::from(*pages) / t.elapsed().as_secs_f64();
        assert_eq!(r.pages.len() as u32, *pages);
        let (fps, gps) = (f64::from(*pages) / ft, f64::from(*pages) / gt);
        println!(
            "{:<24} {:>10.1} ({:>6} KiB) {:>10.1} ({:>6} KiB) {:>7.2}× {:>10.1} pages/s ({} KiB TIFF)",
            name,
            fps,
            fm,
            gps,
            gm,
            fps / gps,
            inproc,
            tiff.len() / 1024
        );
    }
}
