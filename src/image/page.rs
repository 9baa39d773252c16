//! The bilevel page bitmap.

use thiserror::Error;

/// A page's pixel density in dots per inch, horizontally and vertically.
///
/// T.4 §2.2 gives densities in lines per mm (3.85, 7.7, 15.4 vertically; 8 horizontally); TIFF
/// writes them per inch (98/196/391 and 204). Both are kept as the rational TIFF carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution {
    /// Horizontal dots per inch (204 for T.4 at 8 pels/mm; 200, 300, 400 for the inch-based
    /// T.4 Annex/T.30 options).
    pub x_dpi: f32,
    /// Vertical lines per inch (98 standard, 196 fine, 391 superfine).
    pub y_dpi: f32,
}

impl Resolution {
    /// T.4 standard: 204 × 98 dpi (8 × 3.85 per mm).
    pub const STANDARD: Resolution = Resolution {
        x_dpi: 204.0,
        y_dpi: 98.0,
    };
    /// T.4 fine: 204 × 196 dpi (8 × 7.7 per mm).
    pub const FINE: Resolution = Resolution {
        x_dpi: 204.0,
        y_dpi: 196.0,
    };
    /// T.4 superfine: 204 × 391 dpi (8 × 15.4 per mm).
    pub const SUPERFINE: Resolution = Resolution {
        x_dpi: 204.0,
        y_dpi: 391.0,
    };
}

/// Why a page could not be made.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PageError {
    /// Width or height zero, or the bitmap would exceed the limit.
    #[error("page size {width}×{height} is not allowed (limit {limit} pixels)")]
    BadSize {
        /// Requested width.
        width: u32,
        /// Requested height.
        height: u32,
        /// Pixel limit in force.
        limit: u64,
    },
    /// The data length does not match width and height.
    #[error("page data is {got} bytes, expected {expected}")]
    BadLength {
        /// Bytes given.
        got: usize,
        /// Bytes expected.
        expected: usize,
    },
}

/// Largest page [`Page::new`] makes: A3 width (2432) × 1 m at superfine, with room to spare.
pub const MAX_PIXELS: u64 = 2432 * 16_384;

/// A bilevel page: packed rows, MSB first, 1 = black.
#[derive(Clone, PartialEq, Eq)]
pub struct Page {
    width: u32,
    height: u32,
    /// Horizontal and vertical density.
    pub resolution: ResolutionBits,
    data: Vec<u8>,
}

/// [`Resolution`] stored as bits so that `Page` can be `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResolutionBits {
    x: u32,
    y: u32,
}

impl From<Resolution> for ResolutionBits {
    fn from(r: Resolution) -> Self {
        ResolutionBits {
            x: r.x_dpi.to_bits(),
            y: r.y_dpi.to_bits(),
        }
    }
}

impl From<ResolutionBits> for Resolution {
    fn from(r: ResolutionBits) -> Self {
        Resolution {
            x_dpi: f32::from_bits(r.x),
            y_dpi: f32::from_bits(r.y),
        }
    }
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("resolution", &Resolution::from(self.resolution))
            .field("black_pixels", &self.black_pixels())
            .finish()
    }
}

impl Page {
    /// Bytes per packed row for `width` pixels.
    pub const fn stride_for(width: u32) -> usize {
        (width as usize).div_ceil(8)
    }

    /// An all-white page.
    pub fn new(width: u32, height: u32, resolution: Resolution) -> Result<Page, PageError> {
        let px = u64::from(width) * u64::from(height);
        if width == 0 || height == 0 || px > MAX_PIXELS {
            return Err(PageError::BadSize {
                width,
                height,
                limit: MAX_PIXELS,
            });
        }
        Ok(Page {
            width,
            height,
            resolution: resolution.into(),
            data: vec![0; Self::stride_for(width) * height as usize],
        })
    }

    /// A page from packed rows (MSB first, 1 = black). Pad bits past `width` are cleared.
    pub fn from_packed(
        width: u32,
        height: u32,
        resolution: Resolution,
        data: Vec<u8>,
    ) -> Result<Page, PageError> {
        let mut p = Page::new(width, height, resolution)?;
        if data.len() != p.data.len() {
            return Err(PageError::BadLength {
                got: data.len(),
                expected: p.data.len(),
            });
        }
        p.data = data;
        p.clear_padding();
        Ok(p)
    }

    fn clear_padding(&mut self) {
        let rem = self.width % 8;
        if rem == 0 {
            return;
        }
        let mask = 0xffu8 << (8 - rem);
        let stride = self.stride();
        for row in self.data.chunks_exact_mut(stride) {
            if let Some(last) = row.last_mut() {
                *last &= mask;
            }
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in rows.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Pixel density.
    pub fn resolution(&self) -> Resolution {
        self.resolution.into()
    }

    /// Bytes per packed row.
    pub fn stride(&self) -> usize {
        Self::stride_for(self.width)
    }

    /// Row `y`, packed.
    ///
    /// # Panics
    /// When `y >= height`.
    pub fn row(&self, y: u32) -> &[u8] {
        let s = self.stride();
        &self.data[y as usize * s..(y as usize + 1) * s]
    }

    /// Row `y`, packed, writable. Pad bits must stay clear.
    ///
    /// # Panics
    /// When `y >= height`.
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let s = self.stride();
        &mut self.data[y as usize * s..(y as usize + 1) * s]
    }

    /// Every row, packed, top to bottom.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, u8> {
        self.data.chunks_exact(self.stride())
    }

    /// The whole packed bitmap.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// True when pixel (x, y) is black. Out of range reads as white.
    pub fn get(&self, x: u32, y: u32) -> bool {
        if x >= self.width || y >= self.height {
            return false;
        }
        self.row(y)[(x / 8) as usize] & (0x80 >> (x % 8)) != 0
    }

    /// Sets pixel (x, y); out of range is ignored.
    pub fn set(&mut self, x: u32, y: u32, black: bool) {
        if x >= self.width || y >= self.height {
            return;
        }
        let bit = 0x80u8 >> (x % 8);
        let b = &mut self.row_mut(y)[(x / 8) as usize];
        if black {
            *b |= bit;
        } else {
            *b &= !bit;
        }
    }

    /// Number of black pixels.
    pub fn black_pixels(&self) -> u64 {
        self.data.iter().map(|b| u64::from(b.count_ones())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_and_padding() {
        let mut p = Page::new(10, 2, Resolution::FINE).unwrap();
        assert_eq!(p.stride(), 2);
        p.set(9, 1, true);
        assert!(p.get(9, 1));
        assert!(!p.get(10, 1));
        assert_eq!(p.row(1), &[0x00, 0x40]);
        assert_eq!(p.black_pixels(), 1);
        let q = Page::from_packed(10, 1, Resolution::FINE, vec![0xff, 0xff]).unwrap();
        assert_eq!(q.row(0), &[0xff, 0xc0], "pad bits cleared");
    }

    #[test]
    fn limits() {
        assert!(Page::new(0, 5, Resolution::FINE).is_err());
        assert!(Page::new(1728, u32::MAX, Resolution::FINE).is_err());
        assert!(matches!(
            Page::from_packed(8, 2, Resolution::FINE, vec![0]),
            Err(PageError::BadLength {
                got: 1,
                expected: 2
            })
        ));
    }
}
