//! PURE: vertical resampling of a [`Page`] to another line density, for a Profile S file
//! (98 or 196 lpi) made from pages of another density.

use super::{Page, Resolution};

/// Vertically resamples `page` to `y_dpi`: each output row is the OR of the input rows it
/// covers (so thin horizontal lines survive halving), or a repeat when stretching.
pub fn resample(page: &Page, y_dpi: f32) -> Page {
    let src = page.resolution();
    if (src.y_dpi - y_dpi).abs() < 0.5 {
        return page.clone();
    }
    let h = page.height();
    let ratio = f64::from(src.y_dpi) / f64::from(y_dpi);
    let nh = ((f64::from(h) / ratio).round() as u32).max(1);
    let res = Resolution {
        x_dpi: src.x_dpi,
        y_dpi,
    };
    let mut out = match Page::new(page.width(), nh, res) {
        Ok(p) => p,
        Err(_) => return page.clone(),
    };
    for j in 0..nh {
        let a = ((f64::from(j) * ratio) as u32).min(h - 1);
        let b = (((f64::from(j) + 1.0) * ratio) as u32).clamp(a + 1, h);
        let dst = out.row_mut(j);
        for y in a..b {
            for (d, s) in dst.iter_mut().zip(page.row(y)) {
                *d |= *s;
            }
        }
    }
    out
}
