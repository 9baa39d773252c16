//! Pictures: a gray photograph (JPEG made by ImageMagick) is dithered, and its local gray level
//! — the mean over 8×8 blocks — stays within 0.1 of the source's on average; landscape
//! pictures are turned to portrait; limits name the part.
//!
//! Needs imagemagick (`convert`).

mod common;

use std::process::Command;

use faxgate::image::render::geometry::{Layout, Paper, fit_pixels};
use faxgate::image::render::{Bilevel, ErrorKind, Kind, Limits, Options, Unlimited, render_part};

/// A 480×640 gray "photograph": ImageMagick's seeded plasma fractal, blurred, in JPEG.
fn photo(dir: &std::path::Path, w: u32, h: u32) -> Vec<u8> {
    let convert = common::require_tool("convert", "imagemagick");
    let out = dir.join("photo.jpg");
    let st = Command::new(convert)
        .args([
            "-seed",
            "7",
            "-size",
            &format!("{w}x{h}"),
            "plasma:",
            "-blur",
            "0x3",
        ])
        .args(["-colorspace", "Gray", "-quality", "90"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(out).unwrap()
}

#[test]
fn gray_jpeg_is_dithered_keeping_local_gray_level() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = photo(dir.path(), 480, 640);
    let opts = Options::default();
    let r = render_part("photo.jpg", &jpeg, Kind::Image, &opts, &mut Unlimited).unwrap();
    assert_eq!(r.pages.len(), 1);
    let page = &r.pages[0];

    // Where the picture went: the printable box, fitted to its width.
    let layout = Layout {
        res: opts.resolution,
        paper: Paper::A4,
    };
    let (left, top, width, height) = layout.content_box();
    let (cw, ch) = fit_pixels(&layout, 480, 640, width, height);
    let x0 = left + (width - cw) / 2;

    // The source at that size, resampled by ImageMagick (an independent resampler), 8-bit gray.
    let convert = common::require_tool("convert", "imagemagick");
    let out = Command::new(convert)
        .arg(dir.path().join("photo.jpg"))
        .args([
            "-filter",
            "Box",
            "-resize",
            &format!("{cw}x{ch}!"),
            "-depth",
            "8",
            "gray:-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let src = out.stdout;
    assert_eq!(src.len(), (cw * ch) as usize);

    let metric = |page: &faxgate::image::Page| {
        let (mut sum, mut n) = (0.0f64, 0u32);
        for by in (0..ch - 8).step_by(8) {
            for bx in (0..cw - 8).step_by(8) {
                let (mut black, mut gray) = (0u32, 0u32);
                for y in by..by + 8 {
                    for x in bx..bx + 8 {
                        black += u32::from(page.get(x0 + x, top + y));
                        gray += u32::from(src[(y * cw + x) as usize]);
                    }
                }
                let dithered_level = 1.0 - f64::from(black) / 64.0;
                let source_level = f64::from(gray) / 64.0 / 255.0;
                sum += (dithered_level - source_level).abs();
                n += 1;
            }
        }
        (sum / f64::from(n), n)
    };
    let (mean, n) = metric(page);
    println!("8×8 block gray level: mean difference {mean:.4} over {n} blocks");
    assert!(mean <= 0.1, "mean block difference {mean}");

    // Thresholding the same photo (forced) is much further off: the check can fail.
    let thr = Options {
        bilevel: Bilevel::Threshold,
        ..Options::default()
    };
    let t = render_part("photo.jpg", &jpeg, Kind::Image, &thr, &mut Unlimited).unwrap();
    let (thr_mean, _) = metric(&t.pages[0]);
    println!("same photo thresholded: mean difference {thr_mean:.4}");
    assert!(
        thr_mean > 0.1,
        "thresholding should fail this check: {thr_mean}"
    );
}

#[test]
fn landscape_picture_is_turned_to_portrait() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = photo(dir.path(), 800, 300);
    let r = render_part(
        "wide.jpg",
        &jpeg,
        Kind::Image,
        &Options::default(),
        &mut Unlimited,
    )
    .unwrap();
    let p = &r.pages[0];
    // Turned: the ink is taller than wide (300 px across → about 1664 columns, so the 800-px
    // side becomes ≈ 4.3 × 1664 × 0.96 rows, shrunk to fit A4: the box's height).
    let (mut minx, mut maxx, mut miny, mut maxy) = (u32::MAX, 0, u32::MAX, 0);
    for y in 0..p.height() {
        for x in 0..p.width() {
            if p.get(x, y) {
                minx = minx.min(x);
                maxx = maxx.max(x);
                miny = miny.min(y);
                maxy = maxy.max(y);
            }
        }
    }
    let (w_in, h_in) = (
        f64::from(maxx - minx) / 204.0,
        f64::from(maxy - miny) / 196.0,
    );
    assert!(h_in > w_in * 2.0, "{w_in} × {h_in} in");
}

#[test]
fn limits_name_the_part() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = photo(dir.path(), 480, 640);
    let opts = Options {
        limits: Limits {
            max_source_pixels: 100_000,
            ..Limits::default()
        },
        ..Options::default()
    };
    let e = render_part(
        "part 2 \"photo.jpg\"",
        &jpeg,
        Kind::Image,
        &opts,
        &mut Unlimited,
    )
    .unwrap_err();
    assert!(matches!(
        e.kind,
        ErrorKind::SourceTooLarge {
            width: 480,
            height: 640,
            ..
        }
    ));
    assert!(e.to_string().starts_with("part 2 \"photo.jpg\": "), "{e}");

    // The time budget: the caller says no before page 1.
    let e = render_part(
        "p.jpg",
        &jpeg,
        Kind::Image,
        &Options::default(),
        &mut |_| false,
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TimeBudget { page: 1 });
}
