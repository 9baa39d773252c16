//! 8-bit grayscale working images: what every input becomes before it is laid out on a fax
//! page and made bilevel.
//!
//! PURE. `0` is black and `255` is white (luminance), the opposite of [`crate::image::Page`]'s
//! bit sense, because that is what decoders and rasterizers hand out.

/// A grayscale image, row-major, one byte per pixel, 0 = black, 255 = white.
#[derive(Clone, PartialEq, Eq)]
pub struct Gray {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height` luminance values.
    pub px: Vec<u8>,
}

impl std::fmt::Debug for Gray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gray({}×{})", self.width, self.height)
    }
}

impl Gray {
    /// A white image. The caller has checked the size against its pixel limit.
    pub fn white(width: u32, height: u32) -> Gray {
        Gray {
            width,
            height,
            px: vec![255; width as usize * height as usize],
        }
    }

    /// Pixel (x, y); the caller keeps x, y in range.
    #[inline]
    pub fn at(&self, x: u32, y: u32) -> u8 {
        self.px[y as usize * self.width as usize + x as usize]
    }

    /// Row `y`.
    pub fn row(&self, y: u32) -> &[u8] {
        let w = self.width as usize;
        &self.px[y as usize * w..(y as usize + 1) * w]
    }

    /// Rotated a quarter turn counter-clockwise: the top edge becomes the left edge, which is
    /// how landscape pages are printed on portrait paper.
    pub fn rotate_ccw(&self) -> Gray {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut px = vec![255u8; w * h];
        // New image is h wide and w tall: new(x', y') = old(x = w-1-y', y = x').
        for y in 0..h {
            let row = &self.px[y * w..(y + 1) * w];
            for (x, &v) in row.iter().enumerate() {
                let ny = w - 1 - x;
                px[ny * h + y] = v;
            }
        }
        Gray {
            width: self.height,
            height: self.width,
            px,
        }
    }

    /// Resampled to `new_w × new_h` by area averaging (each output pixel is the mean of the
    /// source area it covers), which neither aliases when shrinking nor invents detail when
    /// enlarging. Both sizes must be non-zero.
    pub fn resize(&self, new_w: u32, new_h: u32) -> Gray {
        if new_w == self.width && new_h == self.height {
            return self.clone();
        }
        let xs = weights(self.width, new_w);
        let ys = weights(self.height, new_h);
        // Horizontal pass into f32 rows, then vertical.
        let (sw, nw) = (self.width as usize, new_w as usize);
        let mut tmp = vec![0f32; nw * self.height as usize];
        for y in 0..self.height as usize {
            let src = &self.px[y * sw..(y + 1) * sw];
            let dst = &mut tmp[y * nw..(y + 1) * nw];
            for (d, taps) in dst.iter_mut().zip(&xs) {
                *d = taps.iter().map(|&(i, wt)| f32::from(src[i]) * wt).sum();
            }
        }
        let mut px = vec![255u8; nw * new_h as usize];
        let mut acc = vec![0f32; nw];
        for (y, taps) in ys.iter().enumerate() {
            acc.iter_mut().for_each(|a| *a = 0.0);
            for &(i, wt) in taps {
                let src = &tmp[i * nw..(i + 1) * nw];
                for (a, &s) in acc.iter_mut().zip(src) {
                    *a += s * wt;
                }
            }
            for (d, a) in px[y * nw..(y + 1) * nw].iter_mut().zip(&acc) {
                *d = a.round().clamp(0.0, 255.0) as u8;
            }
        }
        Gray {
            width: new_w,
            height: new_h,
            px,
        }
    }

    /// Copies `src` onto this image with its top-left corner at (`x0`, `y0`), clipping whatever
    /// falls outside.
    pub fn blit(&mut self, src: &Gray, x0: u32, y0: u32) {
        if x0 >= self.width || y0 >= self.height {
            return;
        }
        let w = (src.width).min(self.width - x0) as usize;
        let h = (src.height).min(self.height - y0);
        for y in 0..h {
            let s = &src.row(y)[..w];
            let start = (y0 + y) as usize * self.width as usize + x0 as usize;
            self.px[start..start + w].copy_from_slice(s);
        }
    }
}

/// For each of `n` output cells over `src` input cells: the input indices it covers and their
/// weights (summing to 1).
fn weights(src: u32, n: u32) -> Vec<Vec<(usize, f32)>> {
    let scale = f64::from(src) / f64::from(n);
    (0..n)
        .map(|o| {
            let a = f64::from(o) * scale;
            let b = (f64::from(o) + 1.0) * scale;
            let first = a.floor() as usize;
            let last = (b.ceil() as usize).min(src as usize).max(first + 1);
            let mut taps = Vec::with_capacity(last - first);
            for i in first..last {
                let lo = a.max(i as f64);
                let hi = b.min(i as f64 + 1.0);
                if hi > lo {
                    taps.push((i.min(src as usize - 1), ((hi - lo) / (b - a)) as f32));
                }
            }
            if taps.is_empty() {
                taps.push((first.min(src as usize - 1), 1.0));
            }
            taps
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotate_ccw_moves_top_to_left() {
        // 3×2: top row dark.
        let g = Gray {
            width: 3,
            height: 2,
            px: vec![0, 1, 2, 10, 11, 12],
        };
        let r = g.rotate_ccw();
        assert_eq!((r.width, r.height), (2, 3));
        // Old top-right (2,0) goes to new top-left.
        assert_eq!(r.px, vec![2, 12, 1, 11, 0, 10]);
    }

    #[test]
    fn resize_keeps_mean() {
        let mut g = Gray::white(10, 10);
        for (i, p) in g.px.iter_mut().enumerate() {
            *p = (i * 7 % 256) as u8;
        }
        let mean = |g: &Gray| g.px.iter().map(|&p| f64::from(p)).sum::<f64>() / g.px.len() as f64;
        let small = g.resize(5, 5);
        assert!((mean(&small) - mean(&g)).abs() < 1.0);
        let big = g.resize(20, 17);
        assert!((mean(&big) - mean(&g)).abs() < 2.0);
        assert_eq!(g.resize(10, 10), g);
    }

    #[test]
    fn blit_clips() {
        let mut g = Gray::white(4, 4);
        let s = Gray {
            width: 3,
            height: 3,
            px: vec![0; 9],
        };
        g.blit(&s, 2, 2);
        assert_eq!(g.px.iter().filter(|&&p| p == 0).count(), 4);
        g.blit(&s, 9, 9);
    }
}
