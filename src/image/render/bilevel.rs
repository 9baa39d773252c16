//! Grayscale to bilevel: a fixed threshold for text and line art, Floyd–Steinberg error
//! diffusion for photographs, and the per-page choice between them.
//!
//! PURE. Fax pages are 1 bit deep (T.4 §2: black or white picture elements), so every gray
//! source has to lose its mid-tones somehow: thresholding keeps edges crisp but turns a photo
//! into blotches; error diffusion keeps the local gray level (a test holds it within 0.1 over
//! 8×8 blocks) but frays text edges.

use crate::image::{Page, PageError, Resolution};

use super::gray::Gray;

/// How a page's gray levels become black and white.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bilevel {
    /// Decide per page from its histogram ([`classify`]).
    #[default]
    Auto,
    /// Black below the threshold: text and line art.
    Threshold,
    /// Floyd–Steinberg error diffusion: photographs.
    Dither,
}

impl std::str::FromStr for Bilevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Bilevel::Auto),
            "threshold" => Ok(Bilevel::Threshold),
            "dither" => Ok(Bilevel::Dither),
            _ => Err(format!(
                "`{s}` is not a bilevel mode (auto, threshold, dither)"
            )),
        }
    }
}

/// Gray values below this are black when thresholding (mid-gray, as poppler's `-mono` does).
pub const THRESHOLD: u8 = 128;

/// Gray levels in `MID_LO..=MID_HI` count as mid-tones for [`classify`]: anti-aliased edges of
/// text are few of them, photographs are mostly them.
const MID_LO: u8 = 40;
const MID_HI: u8 = 215;

/// A source of gray rows: a [`Gray`] image, or a rasterizer's RGBA buffer converted row by
/// row (so that a whole-page gray copy is never made).
pub trait GrayRows {
    /// Width in pixels.
    fn width(&self) -> u32;
    /// Height in rows.
    fn height(&self) -> u32;
    /// Row `y` as luminance: either borrowed from `self` or written into `buf` (`width` long).
    fn row_into<'a>(&'a self, y: u32, buf: &'a mut [u8]) -> &'a [u8];
}

impl GrayRows for Gray {
    fn width(&self) -> u32 {
        self.width
    }
    fn height(&self) -> u32 {
        self.height
    }
    fn row_into<'a>(&'a self, y: u32, _buf: &'a mut [u8]) -> &'a [u8] {
        self.row(y)
    }
}

/// Picks threshold or dither for one page: a page is a photograph when mid-tones cover more
/// than 1 % of it and outnumber the dark pixels 3 : 2 (text and line art are mostly dark ink
/// with a thin anti-aliased rim; photographs are mostly mid-tones).
pub fn classify(g: &impl GrayRows) -> Bilevel {
    let mut hist = [0u64; 256];
    let mut buf = vec![0u8; g.width() as usize];
    for y in 0..g.height() {
        for &p in g.row_into(y, &mut buf) {
            hist[p as usize] += 1;
        }
    }
    classify_histogram(&hist)
}

/// [`classify`] from a page's gray-level histogram.
pub fn classify_histogram(hist: &[u64; 256]) -> Bilevel {
    let dark: u64 = hist[..MID_LO as usize].iter().sum();
    let mid: u64 = hist[MID_LO as usize..=MID_HI as usize].iter().sum();
    let total: u64 = hist.iter().sum();
    if mid * 100 > total && mid * 2 > dark * 3 {
        Bilevel::Dither
    } else {
        Bilevel::Threshold
    }
}

/// Makes `g` bilevel with `mode` (Auto resolved by [`classify`]); returns the page and the mode
/// actually used.
pub fn to_page(
    g: &impl GrayRows,
    mode: Bilevel,
    res: Resolution,
) -> Result<(Page, Bilevel), PageError> {
    let mode = match mode {
        Bilevel::Auto => classify(g),
        m => m,
    };
    let mut page = Page::new(g.width(), g.height(), res)?;
    match mode {
        Bilevel::Dither => dither_into(g, &mut page),
        _ => threshold_into(g, &mut page),
    }
    Ok((page, mode))
}

fn threshold_into(g: &impl GrayRows, page: &mut Page) {
    let mut buf = vec![0u8; g.width() as usize];
    for y in 0..g.height() {
        let src = g.row_into(y, &mut buf);
        let dst = page.row_mut(y);
        for (byte, chunk) in dst.iter_mut().zip(src.chunks(8)) {
            let mut b = 0u8;
            for (i, &p) in chunk.iter().enumerate() {
                if p < THRESHOLD {
                    b |= 0x80 >> i;
                }
            }
            *byte = b;
        }
    }
}

/// Floyd–Steinberg (1976) with serpentine scanning, which avoids the diagonal "worm" artefacts
/// of always scanning left to right. Errors are kept in i16 per row (two rows live).
fn dither_into(g: &impl GrayRows, page: &mut Page) {
    let w = g.width() as usize;
    let mut buf = vec![0u8; w];
    // Index shifted by one so that x-1 and x+1 never leave the buffer.
    let mut cur = vec![0i32; w + 2];
    let mut next = vec![0i32; w + 2];
    for y in 0..g.height() {
        let src = g.row_into(y, &mut buf);
        let ltr = y % 2 == 0;
        let row = page.row_mut(y);
        for i in 0..w {
            let x = if ltr { i } else { w - 1 - i };
            // Errors are in 1/16 units.
            let v = i32::from(src[x]) + cur[x + 1] / 16;
            let (black, out) = if v < i32::from(THRESHOLD) {
                (true, 0)
            } else {
                (false, 255)
            };
            if black {
                row[x / 8] |= 0x80 >> (x % 8);
            }
            let e = v - out;
            let (fwd, back) = if ltr { (x + 2, x) } else { (x, x + 2) };
            cur[fwd] += e * 7;
            next[back] += e * 3;
            next[x + 1] += e * 5;
            next[fwd] += e;
        }
        std::mem::swap(&mut cur, &mut next);
        next.iter_mut().for_each(|e| *e = 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(w: u32, h: u32, f: impl Fn(u32, u32) -> u8) -> Gray {
        let mut g = Gray::white(w, h);
        for y in 0..h {
            for x in 0..w {
                g.px[(y * w + x) as usize] = f(x, y);
            }
        }
        g
    }

    #[test]
    fn binary_input_is_kept_exactly_by_both_modes() {
        let g = gray(37, 11, |x, y| if (x * 3 + y) % 5 == 0 { 0 } else { 255 });
        let (a, _) = to_page(&g, Bilevel::Threshold, Resolution::FINE).unwrap();
        let (b, _) = to_page(&g, Bilevel::Dither, Resolution::FINE).unwrap();
        assert_eq!(a, b);
        assert_eq!(classify(&g), Bilevel::Threshold);
    }

    #[test]
    fn dither_keeps_gray_level() {
        for level in [30u8, 64, 128, 190, 240] {
            let g = gray(64, 64, |_, _| level);
            let (p, _) = to_page(&g, Bilevel::Dither, Resolution::FINE).unwrap();
            let black = p.black_pixels() as f64 / 4096.0;
            let want = 1.0 - f64::from(level) / 255.0;
            assert!(
                (black - want).abs() < 0.02,
                "level {level}: {black} vs {want}"
            );
        }
    }

    #[test]
    fn classify_gradient_is_photo() {
        let g = gray(100, 100, |x, _| (x * 255 / 99) as u8);
        assert_eq!(classify(&g), Bilevel::Dither);
        assert_eq!("Dither".parse::<Bilevel>().unwrap(), Bilevel::Dither);
        assert!("x".parse::<Bilevel>().is_err());
    }
}
