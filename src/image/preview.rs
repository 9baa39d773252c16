//! PURE: pictures of fax pages for people — the console's thumbnails and page viewer, the
//! first page in a delivery report, the page previews of a received-fax email. A bilevel page
//! becomes a small grey image with the page's real proportions, and a PNG file.

use ::image::{ExtendedColorType, ImageEncoder};

use super::Page;

/// A grey image, 8 bits per pixel, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grey {
    /// Width, pixels.
    pub width: u32,
    /// Height, pixels.
    pub height: u32,
    /// `width × height` values, 0 black to 255 white.
    pub pixels: Vec<u8>,
}

/// `page` scaled to `width` pixels (never wider than the page) with its real proportions,
/// each pixel the share of white in the page pixels it covers. PURE.
pub fn scale_grey(page: &Page, width: u32) -> Grey {
    let (pw, ph) = (page.width().max(1), page.height().max(1));
    let res = page.resolution();
    let w = width.clamp(1, pw);
    // Height in output pixels: the page's height in inches at the output's pixels per inch.
    let aspect = if res.x_dpi > 0.0 && res.y_dpi > 0.0 {
        f64::from(res.x_dpi) / f64::from(res.y_dpi)
    } else {
        1.0
    };
    let h = ((f64::from(ph) * aspect * f64::from(w) / f64::from(pw)).round() as u32).clamp(1, ph);
    // Which output column each page column falls in, and how many page columns each has.
    let col: Vec<u32> = (0..pw)
        .map(|x| (u64::from(x) * u64::from(w) / u64::from(pw)) as u32)
        .collect();
    let mut cols = vec![0u32; w as usize];
    for &c in &col {
        cols[c as usize] += 1;
    }
    let mut pixels = vec![255u8; (w * h) as usize];
    let mut black = vec![0u32; w as usize];
    let mut rows_in = 0u32;
    let mut out_row = 0u32;
    for y in 0..ph {
        let target = (u64::from(y) * u64::from(h) / u64::from(ph)) as u32;
        if target != out_row {
            emit(&mut pixels, out_row, w, &black, &cols, rows_in);
            black.iter_mut().for_each(|b| *b = 0);
            rows_in = 0;
            out_row = target;
        }
        rows_in += 1;
        for (i, &byte) in page.row(y).iter().enumerate() {
            if byte == 0 {
                continue;
            }
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    let x = i * 8 + bit;
                    if let Some(&c) = col.get(x) {
                        black[c as usize] += 1;
                    }
                }
            }
        }
    }
    emit(&mut pixels, out_row, w, &black, &cols, rows_in);
    Grey {
        width: w,
        height: h,
        pixels,
    }
}

fn emit(pixels: &mut [u8], row: u32, w: u32, black: &[u32], cols: &[u32], rows: u32) {
    let start = (row * w) as usize;
    let Some(out) = pixels.get_mut(start..start + w as usize) else {
        return;
    };
    for ((o, &b), &c) in out.iter_mut().zip(black).zip(cols) {
        let area = u64::from(c) * u64::from(rows);
        if let Some(dark) = (u64::from(b).min(area) * 255).checked_div(area) {
            *o = (255 - dark) as u8;
        }
    }
}

/// `img` as an 8-bit greyscale PNG file.
pub fn png(img: &Grey) -> Result<Vec<u8>, ::image::ImageError> {
    let mut out = Vec::new();
    ::image::codecs::png::PngEncoder::new(&mut out).write_image(
        &img.pixels,
        img.width,
        img.height,
        ExtendedColorType::L8,
    )?;
    Ok(out)
}
