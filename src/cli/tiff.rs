//! `faxgate convert` and `faxgate tiff-check`: the I/O shell that opens the files and hands
//! bytes to the pure [`crate::image`] module (resampling is [`crate::image::resample`]).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use thiserror::Error;

use crate::read_limit::ReadError;

use crate::image::codec::Coding;
use crate::image::tiff::{self, Limits, Profile, Reader, TiffError, Writer};
use crate::image::{Page, resample};

/// Coding choices on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodingArg {
    /// T.4 modified Huffman (Profile S when 1728 wide at 98/196 dpi).
    Mh,
    /// T.4 modified READ, K from the vertical resolution (Profile F).
    Mr,
    /// T.6 modified modified READ (Profile F).
    Mmr,
}

/// Vertical resolution choices on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ResolutionArg {
    /// 98 lines per inch (T.4 3.85 l/mm).
    Standard,
    /// 196 lines per inch (T.4 7.7 l/mm).
    Fine,
}

/// `faxgate convert IN.tif OUT.tif --coding mh|mr|mmr [--resolution standard|fine]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// Input TIFF (any bilevel TIFF).
    pub input: PathBuf,
    /// Output TIFF-F.
    pub output: PathBuf,
    /// Coding of the output.
    #[arg(long, value_enum, default_value = "mh")]
    pub coding: CodingArg,
    /// Resample every page to this vertical resolution.
    #[arg(long, value_enum)]
    pub resolution: Option<ResolutionArg>,
}

/// Profile to check against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProfileArg {
    /// RFC 3949 Profile S (minimal).
    S,
    /// RFC 3949 Profile F (extended black and white).
    F,
}

/// `faxgate tiff-check [--profile s|f] FILE...`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Files to check.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Profile to check against.
    #[arg(long, value_enum, default_value = "s")]
    pub profile: ProfileArg,
}

/// Why `convert` failed.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// Opening or creating a file failed.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Reading or writing the TIFF failed.
    #[error("{path}: {source}")]
    Tiff {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: TiffError,
    },
    /// The input has no pages.
    #[error("{0}: no pages")]
    Empty(PathBuf),
}

/// Largest file `tiff-check` reads (it holds the file in memory).
pub const MAX_CHECK_BYTES: u64 = super::MAX_INPUT_BYTES;

/// Converts `args.input` to `args.output`, one page in memory at a time. Returns pages written.
pub fn convert(args: &ConvertArgs) -> Result<u32, ConvertError> {
    let open = |p: &Path, r: std::io::Result<File>| {
        r.map_err(|source| ConvertError::Open {
            path: p.to_path_buf(),
            source,
        })
    };
    let tiff_in = |source| ConvertError::Tiff {
        path: args.input.clone(),
        source,
    };
    let tiff_out = |source| ConvertError::Tiff {
        path: args.output.clone(),
        source,
    };
    let input = open(&args.input, File::open(&args.input))?;
    let mut reader = Reader::new(BufReader::new(input), Limits::default()).map_err(tiff_in)?;
    let target = args.resolution.map(|r| match r {
        ResolutionArg::Standard => 98.0,
        ResolutionArg::Fine => 196.0,
    });
    let prepare = |p: Page| match target {
        Some(y) => resample(&p, y),
        None => p,
    };
    let first = reader
        .next_page()
        .map_err(tiff_in)?
        .map(prepare)
        .ok_or_else(|| ConvertError::Empty(args.input.clone()))?;
    let coding = match args.coding {
        CodingArg::Mh => Coding::Mh,
        CodingArg::Mr => Coding::mr_for_y_dpi(first.resolution().y_dpi),
        CodingArg::Mmr => Coding::Mmr,
    };
    let output = open(&args.output, File::create(&args.output))?;
    // Profile F with MH writes exactly what Profile S would for a page S allows.
    let mut writer = Writer::new(BufWriter::new(output), Profile::F(coding)).map_err(tiff_out)?;
    writer.write_page(&first).map_err(tiff_out)?;
    drop(first);
    while let Some(p) = reader.next_page().map_err(tiff_in)? {
        writer.write_page(&prepare(p)).map_err(tiff_out)?;
    }
    let pages = writer.pages();
    let w = writer.finish().map_err(tiff_out)?;
    let file = w.into_inner().map_err(|e| ConvertError::Open {
        path: args.output.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(|source| ConvertError::Open {
        path: args.output.clone(),
        source,
    })?;
    Ok(pages)
}

/// `faxgate convert`: prints a one-line summary or the error.
pub fn convert_main(args: &ConvertArgs) -> ExitCode {
    match convert(args) {
        Ok(n) => {
            println!("{}: {n} page(s)", args.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("faxgate convert: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Checks every file, writing one line per violation (or an "ok" line) to `out`. True when all
/// files conform.
pub fn tiff_check(args: &CheckArgs, out: &mut impl Write) -> std::io::Result<bool> {
    let mut all_ok = true;
    for f in &args.files {
        let data = match crate::read_limit::read(f, MAX_CHECK_BYTES) {
            Ok(d) => d,
            Err(ReadError::TooLarge { .. }) => {
                writeln!(
                    out,
                    "{}: larger than {MAX_CHECK_BYTES} bytes, not checked",
                    f.display()
                )?;
                all_ok = false;
                continue;
            }
            Err(ReadError::Io { source, .. }) => {
                writeln!(out, "{}: {source}", f.display())?;
                all_ok = false;
                continue;
            }
        };
        let profile = match args.profile {
            ProfileArg::S => Profile::S,
            ProfileArg::F => Profile::F(Coding::Mh),
        };
        let v = tiff::check(&data, profile);
        if v.is_empty() {
            writeln!(out, "{}: ok (Profile {:?})", f.display(), args.profile)?;
        } else {
            all_ok = false;
            for x in v {
                writeln!(out, "{}: {x}", f.display())?;
            }
        }
    }
    Ok(all_ok)
}

/// `faxgate tiff-check`: exit 0 when every file conforms, 1 otherwise.
pub fn tiff_check_main(args: &CheckArgs) -> ExitCode {
    let stdout = std::io::stdout();
    match tiff_check(args, &mut stdout.lock()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("faxgate tiff-check: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiff_check_refuses_a_file_over_the_limit_unread_and_reads_the_rest() {
        let d = tempfile::tempdir().unwrap();
        // Sparse: its length says it is too large, so it is refused without being read.
        let huge = d.path().join("huge.tif");
        File::create(&huge)
            .unwrap()
            .set_len(MAX_CHECK_BYTES + 1)
            .unwrap();
        let mut page = Page::new(1728, 8, crate::image::Resolution::FINE).unwrap();
        page.set(5, 5, true);
        let good = d.path().join("good.tif");
        let mut w = Writer::new(BufWriter::new(File::create(&good).unwrap()), Profile::S).unwrap();
        w.write_page(&page).unwrap();
        w.finish().unwrap().flush().unwrap();
        let missing = d.path().join("missing.tif");
        let args = CheckArgs {
            files: vec![huge.clone(), good.clone(), missing.clone()],
            profile: ProfileArg::S,
        };
        let mut out = Vec::new();
        assert!(!tiff_check(&args, &mut out).unwrap());
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            format!(
                "{}: larger than {MAX_CHECK_BYTES} bytes, not checked",
                huge.display()
            )
        );
        assert_eq!(lines[1], format!("{}: ok (Profile S)", good.display()));
        assert!(
            lines[2].starts_with(&format!("{}: No such file", missing.display())),
            "{out}"
        );
    }
}
