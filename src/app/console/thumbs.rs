//! Page images for the console: one page of a job's stored pages as a small grey PNG.
//!
//! - A `FaxOut` job's pages are its `pages.tif` (the body pages rendered once at split,
//!   [`crate::offramp::jobs::PAGES_FILE`]) finished the way an attempt finishes them — cover
//!   page and header line added by [`Finisher`] through [`StoredPages`] — so the image is the
//!   page as it was (or will be) faxed. The header line is stamped with the time of the last
//!   attempt (or the job's creation when it has none yet), so the same job always gives the
//!   same image.
//! - A received fax's pages are its TIFF-F ([`crate::onramp::fax_in::FAX_FILE`]) as stored.
//!
//! Both are decoded by the project's own TIFF reader one page at a time (the pages before the
//! one asked for are decoded and let go), so a request holds one page in memory. The work is
//! bounded: a page number past the reader's page limit is refused before any decoding, at most
//! [`MAX_RENDERS`] pages are drawn at once (the others wait their turn), and the answer
//! carries an `ETag` (RFC 9110 §8.8.3) and `Cache-Control: private, max-age` (RFC 9111
//! §5.2.2), so a browser that scrolls back asks again cheaply: `If-None-Match` with the same
//! validator is answered `304` without decoding (RFC 9110 §13.1.2).
//!
//! The scaling ([`scale_grey`], in [`crate::image::preview`]) is PURE: each output pixel is the
//! share of white in the box of page pixels it covers (grey averaging: thin strokes stay
//! visible as grey), and the page's pixel aspect (204 × 98 dpi for standard resolution) is
//! corrected so the image has the page's real proportions.

use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::app::send_pages::StoredPages;
use crate::fax::t30::pages::PageProvider;
use crate::image::Page;
use crate::image::tiff::{Limits, Reader};
use crate::job::JobData;
use crate::offramp::document::Finisher;
use crate::spool::{JobRecord, Spool};

/// Width of a thumbnail, pixels (a 1728-pel fax line scaled by about 1/8.6).
pub const THUMB_WIDTH: u32 = 200;
/// Width of a page in the received-fax viewer, pixels (half of a 1728-pel line).
pub const VIEW_WIDTH: u32 = 864;
/// Pages drawn at once, over all requests (ours: the box has two shared cores).
pub const MAX_RENDERS: usize = 2;

/// The permits for [`MAX_RENDERS`].
static RENDERS: Semaphore = Semaphore::const_new(MAX_RENDERS);

/// Why a page image could not be made.
#[derive(Debug, Error)]
pub enum ThumbError {
    /// The job has no stored pages (yet): a message not split, a fax split before pages were
    /// kept, mail.
    #[error("{0}")]
    NoPages(String),
    /// Past the job's last page (or the reader's page limit).
    #[error("the job has no page {0}")]
    NoSuchPage(u32),
    /// The stored pages could not be read or finished.
    #[error("the pages cannot be read: {0}")]
    Unreadable(String),
}

/// Where a job's pages come from.
pub enum Pages {
    /// A TIFF as stored (received faxes).
    Tiff(PathBuf),
    /// A fax job's body pages, finished by `finisher` (cover page, header line).
    Finished {
        /// The body pages (`pages.tif`).
        path: PathBuf,
        /// Adds the cover page and the header line.
        finisher: Box<Finisher>,
    },
}

/// The file a job's page images are made from, and how; the page count it claims.
pub fn pages_of(
    spool: &Spool,
    cfg: &crate::config::Config,
    rec: &JobRecord,
) -> Result<(Pages, u32), ThumbError> {
    let unreadable = |e: crate::spool::SpoolError| ThumbError::Unreadable(e.to_string());
    match &rec.data {
        JobData::FaxOut(f) => {
            let Some(file) = &f.pages else {
                return Err(ThumbError::NoPages(
                    "this fax job was split before pages were kept: its pages are made from \
                     the message at each attempt"
                        .into(),
                ));
            };
            let path = spool.payload_path(&rec.id, file).map_err(unreadable)?;
            let finisher = crate::offramp::jobs::finisher_of(cfg, rec, f)
                .map_err(|c| ThumbError::Unreadable(c.words()))?;
            let total = u32::try_from(finisher.total()).unwrap_or(u32::MAX);
            Ok((
                Pages::Finished {
                    path,
                    finisher: Box::new(finisher),
                },
                total,
            ))
        }
        JobData::FaxIn(d) => {
            let path = spool
                .payload_path(&rec.id, crate::onramp::fax_in::FAX_FILE)
                .map_err(unreadable)?;
            Ok((Pages::Tiff(path), d.reception.pages))
        }
        JobData::Message(_) => Err(ThumbError::NoPages(
            "a message has no pages of its own: each recipient's fax job has them".into(),
        )),
        JobData::MailOut(_) => Err(ThumbError::NoPages("mail has no fax pages".into())),
    }
}

/// Page `n` (1-based) of `pages`, decoded (blocking).
pub fn page(pages: Pages, n: u32) -> Result<Page, ThumbError> {
    if n == 0 || n > Limits::default().max_pages {
        return Err(ThumbError::NoSuchPage(n));
    }
    let index = (n - 1) as usize;
    match pages {
        Pages::Finished { path, finisher } => {
            if index >= finisher.total() {
                return Err(ThumbError::NoSuchPage(n));
            }
            let mut p = StoredPages::open(&path, *finisher)
                .map_err(|c| ThumbError::Unreadable(c.words()))?;
            p.page(index).map_err(ThumbError::Unreadable)
        }
        Pages::Tiff(path) => tiff_page(&path, n),
    }
}

fn tiff_page(path: &Path, n: u32) -> Result<Page, ThumbError> {
    let bad = |e: String| ThumbError::Unreadable(e);
    let f = std::fs::File::open(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let mut r = Reader::new(std::io::BufReader::new(f), Limits::default())
        .map_err(|e| bad(e.to_string()))?;
    for _ in 1..n {
        // Decoded and let go: one page in memory at a time.
        if r.next_page().map_err(|e| bad(e.to_string()))?.is_none() {
            return Err(ThumbError::NoSuchPage(n));
        }
    }
    r.next_page()
        .map_err(|e| bad(e.to_string()))?
        .ok_or(ThumbError::NoSuchPage(n))
}

pub use crate::image::preview::{Grey, scale_grey};

/// `img` as a PNG file.
pub fn png(img: &Grey) -> Result<Vec<u8>, ThumbError> {
    crate::image::preview::png(img).map_err(|e| ThumbError::Unreadable(format!("PNG: {e}")))
}

/// The validator of page `n` at `width` of a job whose pages are in `file`: it changes when
/// the file or the record (an attempt stamps a new header time) does.
fn etag(rec: &JobRecord, file: &Path, n: u32, width: u32) -> String {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(file)
        .map(|m| (m.len(), m.mtime(), m.mtime_nsec()))
        .unwrap_or_default();
    format!(
        "\"{}-{}-{n}-{width}-{:x}-{:x}.{:x}\"",
        rec.id,
        rec.attempts.len(),
        m.0,
        m.1,
        m.2
    )
}

/// The response for page `n` of job `rec` at `width` (a PNG, `304`, or a plain-text error).
/// Runs the decoding on a blocking thread, [`MAX_RENDERS`] at a time.
pub async fn respond(
    spool: Spool,
    cfg: std::sync::Arc<crate::config::Config>,
    rec: JobRecord,
    n: u32,
    width: u32,
    headers: &HeaderMap,
) -> Response {
    let Ok(_permit) = RENDERS.acquire().await else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the page renderer is closed",
        );
    };
    let inm = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let made = tokio::task::spawn_blocking(move || {
        let (pages, _) = pages_of(&spool, &cfg, &rec)?;
        let file = match &pages {
            Pages::Tiff(p) | Pages::Finished { path: p, .. } => p.clone(),
        };
        let tag = etag(&rec, &file, n, width);
        if inm.as_deref() == Some(tag.as_str()) {
            return Ok((tag, None));
        }
        let p = page(pages, n)?;
        Ok::<_, ThumbError>((tag, Some(png(&scale_grey(&p, width))?)))
    })
    .await;
    match made {
        Ok(Ok((tag, body))) => {
            let mut r = match body {
                Some(b) => ([(header::CONTENT_TYPE, "image/png")], b).into_response(),
                None => StatusCode::NOT_MODIFIED.into_response(),
            };
            let h = r.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&tag) {
                h.insert(header::ETAG, v);
            }
            // Private: scoped users see different jobs. An hour, then a cheap revalidation.
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            );
            r
        }
        Ok(Err(e @ (ThumbError::NoSuchPage(_) | ThumbError::NoPages(_)))) => {
            text(StatusCode::NOT_FOUND, &e.to_string())
        }
        Ok(Err(e)) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("page task failed: {e}"),
        ),
    }
}

fn text(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.to_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Resolution;

    #[test]
    fn a_black_half_scales_to_black_and_white_with_the_page_proportions() {
        // Standard resolution: 1728 × 1100 pels at 204 × 98 dpi is 8.47 × 11.2 inches.
        let mut p = Page::new(1728, 1100, Resolution::STANDARD).unwrap();
        for y in 0..1100 {
            p.row_mut(y)[..108].fill(0xFF); // the left 864 pels
        }
        let g = scale_grey(&p, 200);
        assert_eq!(g.width, 200);
        let want_h = (1100.0 * 204.0 / 98.0 * 200.0 / 1728.0_f64).round() as u32;
        assert_eq!(g.height, want_h);
        assert_eq!(g.pixels.len(), (g.width * g.height) as usize);
        let row = &g.pixels[..200];
        assert!(row[..100].iter().all(|&v| v == 0), "{:?}", &row[..100]);
        assert!(row[100..].iter().all(|&v| v == 255));
    }

    #[test]
    fn a_thin_line_stays_visible_as_grey() {
        let mut p = Page::new(1728, 400, Resolution::FINE).unwrap();
        for x in 0..1728 {
            p.set(x, 200, true);
        }
        let g = scale_grey(&p, 200);
        let min = *g.pixels.iter().min().unwrap();
        assert!(
            min < 255 && min > 0,
            "a one-pel line is grey, not lost: {min}"
        );
    }

    #[test]
    fn tiny_and_narrow_pages_do_not_panic() {
        for (w, h) in [(1, 1), (7, 3), (1728, 1), (3, 2000)] {
            let mut p = Page::new(w, h, Resolution::FINE).unwrap();
            p.set(0, 0, true);
            let g = scale_grey(&p, 200);
            assert!(g.width >= 1 && g.height >= 1 && g.width <= w);
            assert_eq!(g.pixels.len(), (g.width * g.height) as usize);
            let png = png(&g).unwrap();
            let back = image::load_from_memory(&png).unwrap();
            assert_eq!((back.width(), back.height()), (g.width, g.height));
        }
    }

    #[test]
    fn page_numbers_past_the_limit_are_refused_before_reading() {
        let e = page(Pages::Tiff(PathBuf::from("/nonexistent")), 0).unwrap_err();
        assert!(matches!(e, ThumbError::NoSuchPage(0)));
        let e = page(Pages::Tiff(PathBuf::from("/nonexistent")), 1_000_001).unwrap_err();
        assert!(matches!(e, ThumbError::NoSuchPage(_)));
    }
}
