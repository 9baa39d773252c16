//! Fonts for PDFs that do not embed their standard-14 fonts (ISO 32000-1 §9.6.2.2: a
//! conforming reader supplies Times, Helvetica, Courier, Symbol and ZapfDingbats itself).
//!
//! hayro brings the Foxit substitutes, which are metric-compatible but drawn differently (its
//! Courier is a heavier design). The fonts every Unix PDF and PostScript renderer uses for
//! these names are URW's base-35 clones (Debian package `fonts-urw-base35`, which Ghostscript
//! depends on): poppler picks them through fontconfig and Ghostscript ships them. Using the same
//! outlines makes a fax from faxgate look like the same PDF printed anywhere else on the
//! system. They are read at run time from a directory (`[offramp] pdf_font_dir`), never bundled
//! (their licence is the AGPL with a font exception); a font missing from the directory falls
//! back to hayro's built-in substitute, so rendering never depends on the package being there.
//!
//! This is the render module's one read from the file system, and it is read-only and cached:
//! each font file is read at most once per [`PdfFonts`] (a process keeps one).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hayro::hayro_interpret::FontResolverFn;
use hayro::hayro_interpret::font::{FontData, FontQuery, StandardFont};

/// Where Debian (and Ubuntu) install the URW base-35 OpenType fonts.
pub const DEFAULT_DIR: &str = "/usr/share/fonts/opentype/urw-base35";

/// Largest font file read (the URW files are 30–200 KB; a larger file is not one of them).
const MAX_FONT_FILE: u64 = 8 << 20;

/// The standard-14 fonts PDFs may use without embedding, resolved from a directory of URW
/// base-35 files with hayro's built-in fonts as the fallback. Cheap to clone (shared cache).
#[derive(Clone)]
pub struct PdfFonts {
    dir: Option<PathBuf>,
    /// File contents by file name; `None` remembers a file that is missing or unreadable.
    cache: Arc<Mutex<HashMap<&'static str, Option<FontData>>>>,
}

impl std::fmt::Debug for PdfFonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PdfFonts").field("dir", &self.dir).finish()
    }
}

impl PartialEq for PdfFonts {
    /// Two font sets are the same when they read the same directory.
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir
    }
}

impl Default for PdfFonts {
    /// The system's URW fonts in [`DEFAULT_DIR`].
    fn default() -> Self {
        PdfFonts::from_dir(Some(PathBuf::from(DEFAULT_DIR)))
    }
}

impl PdfFonts {
    /// Fonts from `dir`; `None` uses only hayro's built-in substitutes.
    pub fn from_dir(dir: Option<PathBuf>) -> PdfFonts {
        PdfFonts {
            dir,
            cache: Arc::default(),
        }
    }

    /// Fonts from a config value: an empty string means the built-in substitutes only.
    pub fn from_config(dir: &str) -> PdfFonts {
        PdfFonts::from_dir((!dir.is_empty()).then(|| PathBuf::from(dir)))
    }

    /// The directory searched, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The font program for one standard font: the URW file if present, else hayro's.
    pub fn font(&self, font: StandardFont) -> (FontData, u32) {
        self.system(font)
            .map(|d| (d, 0))
            .unwrap_or_else(|| font.get_font_data())
    }

    /// Whether `font` comes from the directory (false: the built-in substitute is used).
    pub fn is_system(&self, font: StandardFont) -> bool {
        self.system(font).is_some()
    }

    fn system(&self, font: StandardFont) -> Option<FontData> {
        let dir = self.dir.as_ref()?;
        let name = urw_file(font);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(name)
            .or_insert_with(|| read_font(&dir.join(name)))
            .clone()
    }

    /// A resolver for hayro's interpreter settings: standard fonts by name, and fonts a PDF
    /// names but does not embed by their descriptor's class (fixed pitch → Courier, serif →
    /// Times, otherwise Helvetica; bold/italic kept), as hayro itself picks them.
    pub fn resolver(&self) -> FontResolverFn {
        let fonts = self.clone();
        Arc::new(move |query| {
            let font = match query {
                FontQuery::Standard(s) => *s,
                FontQuery::Fallback(f) => f.pick_standard_font(),
            };
            Some(fonts.font(font))
        })
    }
}

fn read_font(path: &Path) -> Option<FontData> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FONT_FILE {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    // An OpenType file starts with the CFF-flavoured sfnt tag "OTTO" (or 0x00010000 for
    // TrueType outlines); anything else in the directory is not a usable font for this name.
    if bytes.starts_with(b"OTTO") || bytes.starts_with(&[0, 1, 0, 0]) {
        Some(Arc::new(bytes))
    } else {
        None
    }
}

/// The URW base-35 file that poppler's fontconfig lookup picks for each standard font
/// (fonts-urw-base35 20200910 names).
fn urw_file(font: StandardFont) -> &'static str {
    match font {
        StandardFont::TimesRoman => "NimbusRoman-Regular.otf",
        StandardFont::TimesBold => "NimbusRoman-Bold.otf",
        StandardFont::TimesItalic => "NimbusRoman-Italic.otf",
        StandardFont::TimesBoldItalic => "NimbusRoman-BoldItalic.otf",
        StandardFont::Helvetica => "NimbusSans-Regular.otf",
        StandardFont::HelveticaBold => "NimbusSans-Bold.otf",
        StandardFont::HelveticaOblique => "NimbusSans-Italic.otf",
        StandardFont::HelveticaBoldOblique => "NimbusSans-BoldItalic.otf",
        StandardFont::Courier => "NimbusMonoPS-Regular.otf",
        StandardFont::CourierBold => "NimbusMonoPS-Bold.otf",
        StandardFont::CourierOblique => "NimbusMonoPS-Italic.otf",
        StandardFont::CourierBoldOblique => "NimbusMonoPS-BoldItalic.otf",
        StandardFont::Symbol => "StandardSymbolsPS.otf",
        StandardFont::ZapfDingBats => "D050000L.otf",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_falls_back_to_the_built_in_fonts() {
        let dir = tempfile::tempdir().unwrap();
        let fonts = PdfFonts::from_dir(Some(dir.path().to_path_buf()));
        assert!(!fonts.is_system(StandardFont::Courier));
        let (data, _) = fonts.font(StandardFont::Courier);
        let builtin = StandardFont::Courier.get_font_data().0;
        assert_eq!((*data).as_ref(), (*builtin).as_ref());
        assert!(PdfFonts::from_config("").dir().is_none());
    }

    #[test]
    fn a_file_that_is_not_a_font_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("NimbusSans-Regular.otf"),
            b"<html>oops</html>",
        )
        .unwrap();
        let fonts = PdfFonts::from_dir(Some(dir.path().to_path_buf()));
        assert!(!fonts.is_system(StandardFont::Helvetica));
    }

    #[test]
    fn a_font_file_in_the_directory_is_used_and_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut fake = b"OTTO".to_vec();
        fake.extend_from_slice(&[0; 60]);
        std::fs::write(dir.path().join("NimbusMonoPS-Regular.otf"), &fake).unwrap();
        let fonts = PdfFonts::from_dir(Some(dir.path().to_path_buf()));
        assert!(fonts.is_system(StandardFont::Courier));
        std::fs::remove_file(dir.path().join("NimbusMonoPS-Regular.otf")).unwrap();
        // Cached: still served after the file is gone.
        let (data, _) = fonts.font(StandardFont::Courier);
        assert_eq!((*data).as_ref(), &fake[..]);
    }
}
