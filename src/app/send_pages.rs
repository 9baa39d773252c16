//! The pages of an outgoing fax, made one at a time as the line asks for them: the body
//! pages that the split rendered once are read from the fax job's `pages.tif` page by page,
//! and [`Finisher`] adds the cover page and the header line. A fax of any length is sent in
//! flat memory: one page decoded at a time, nothing of the document held for the call.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::fax::t30::pages::PageProvider;
use crate::image::tiff::{Limits, Reader};
use crate::image::{Page, Resolution};
use crate::offramp::causes::Cause;
use crate::offramp::document::Finisher;

/// A TIFF reader over the body pages and the index of the page it gives next.
type Cursor = (Reader<BufReader<File>>, usize);

/// The pages of one attempt, read from disk page by page.
pub struct StoredPages {
    path: PathBuf,
    reader: Option<Cursor>,
    finisher: Finisher,
    /// Page 0, made at open to learn the fax's shape, until the line asks for it.
    first: Option<Page>,
    shape: (u32, Resolution),
}

impl StoredPages {
    /// The fax whose body pages are in `path` (TIFF-F as the split wrote them), finished by
    /// `finisher`. Makes the first page at once, so a damaged file fails here, before a call.
    pub fn open(path: &Path, finisher: Finisher) -> Result<StoredPages, Cause> {
        let mut s = StoredPages {
            path: path.to_path_buf(),
            reader: None,
            finisher,
            first: None,
            shape: (0, Resolution::FINE),
        };
        if s.finisher.total() == 0 {
            return Err(Cause::NothingToFax);
        }
        let first = s.make(0)?;
        s.shape = (first.width(), first.resolution());
        s.first = Some(first);
        Ok(s)
    }

    fn make(&mut self, n: usize) -> Result<Page, Cause> {
        let (path, reader) = (&self.path, &mut self.reader);
        self.finisher.page(n, &mut |i| body_page(path, reader, i))
    }
}

/// Body page `i`, read on from where the reader is (reopened for an earlier page: the line
/// asks in order, so that is rare).
fn body_page(path: &Path, reader: &mut Option<Cursor>, i: usize) -> Result<Page, Cause> {
    let unreadable = |e: String| Cause::GatewayError {
        detail: format!("the pages rendered at split cannot be read: {e}"),
    };
    if reader.as_ref().is_none_or(|(_, next)| *next > i) {
        let f = File::open(path).map_err(|e| unreadable(format!("{}: {e}", path.display())))?;
        let r = Reader::new(BufReader::new(f), Limits::default())
            .map_err(|e| unreadable(e.to_string()))?;
        *reader = Some((r, 0));
    }
    let Some((r, next)) = reader.as_mut() else {
        return Err(unreadable("no reader".into()));
    };
    loop {
        let page = r
            .next_page()
            .map_err(|e| unreadable(e.to_string()))?
            .ok_or_else(|| unreadable(format!("page {} is missing", i + 1)))?;
        *next += 1;
        if *next == i + 1 {
            return Ok(page);
        }
    }
}

impl PageProvider for StoredPages {
    fn count(&self) -> usize {
        self.finisher.total()
    }

    /// Every page of a fax the gateway rendered has the same layout.
    fn shape(&self, _page: usize) -> Option<(u32, Resolution)> {
        Some(self.shape)
    }

    fn page(&mut self, n: usize) -> Result<Page, String> {
        if n == 0
            && let Some(p) = self.first.take()
        {
            return Ok(p);
        }
        self.make(n).map_err(|c| c.words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::codec::Coding;
    use crate::image::tiff::{Profile, Writer};
    use crate::offramp::document::{self, Options, Stamp};
    use crate::offramp::options::SenderOptions;

    /// Page `i`: white with a black bar whose height tells the pages apart.
    fn page(i: u32) -> Page {
        let mut p = Page::new(1728, 600, Resolution::FINE).unwrap();
        for y in 300..300 + 10 * (i + 1) {
            p.row_mut(y).fill(0xFF);
        }
        p
    }

    #[test]
    fn pages_come_from_disk_one_at_a_time_exactly_as_finished_in_memory() {
        let body: Vec<Page> = (0..5).map(page).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages.tif");
        let mut w = Writer::new(File::create(&path).unwrap(), Profile::F(Coding::Mmr)).unwrap();
        for p in &body {
            w.write_page(p).unwrap();
        }
        w.finish().unwrap();
        let cfg = Options::from(&crate::config::Offramp::default());
        let opts = SenderOptions {
            resolution: crate::job::Resolution::Fine,
            cover_page: true,
            subject: "order".into(),
        };
        let stamp = Stamp {
            when: chrono::NaiveDate::from_ymd_opt(2026, 12, 3).and_then(|d| d.and_hms_opt(9, 0, 0)),
            station: "+1 212 555 0100".into(),
            recipient: "+12125550142".into(),
        };
        let want = document::finish(body, "a@example.org", &cfg, &opts, &stamp).unwrap();
        let finisher = Finisher::new(5, "a@example.org", &cfg, &opts, &stamp).unwrap();
        let mut s = StoredPages::open(&path, finisher).unwrap();
        assert_eq!(s.count(), 6);
        assert_eq!(s.shape(3), Some((1728, Resolution::FINE)));
        // In order, a page asked again (retrain), then an earlier one (reopens the file).
        for n in [0, 1, 2, 2, 3, 4, 5, 1, 5] {
            assert_eq!(s.page(n).unwrap(), want[n], "page {n}");
        }
        assert!(s.page(6).is_err(), "past the end");
    }

    #[test]
    fn a_damaged_pages_file_fails_before_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pages.tif");
        std::fs::write(&path, b"II*\0garbage").unwrap();
        let cfg = Options::from(&crate::config::Offramp::default());
        let opts = SenderOptions {
            resolution: crate::job::Resolution::Fine,
            cover_page: false,
            subject: String::new(),
        };
        let f = Finisher::new(1, "", &cfg, &opts, &Stamp::default()).unwrap();
        let e = StoredPages::open(&path, f).err().unwrap();
        assert!(e.words().contains("cannot be read"), "{}", e.words());
    }
}
