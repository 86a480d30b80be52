//! `latlab export`: a results folder's raw spans, and its video frames when it replayed video,
//! as CSV or JSON for spreadsheets and tools.
//!
//! An export never goes among a results folder's own files (its span log, tables, manifest,
//! report): by default it is written to `DIR/export/` ([`EXPORT_DIR`]), and a destination
//! directly inside any results folder is refused ([`AnalysisError::RunFile`]), whatever its
//! name, so no export can overwrite a file `latlab recover`, `show` or `report` reads.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::AnalysisError;
use crate::load::Run;

/// The folder inside a results folder that exports go to by default.
pub const EXPORT_DIR: &str = latlab_results::files::EXPORT_DIR;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// The default file name of an export in this format.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Csv => "spans.csv",
            Format::Json => "spans.jsonl",
        }
    }

    /// The default file name of a frames export in this format.
    pub fn frames_file_name(self) -> &'static str {
        match self {
            Format::Csv => "frames.csv",
            Format::Json => "frames.jsonl",
        }
    }
}

/// Where a frames export of the run in `dir` goes when no destination is given:
/// `DIR/export/frames.csv` or `DIR/export/frames.jsonl`.
pub fn default_frames_out(dir: &Path, format: Format) -> PathBuf {
    dir.join(EXPORT_DIR).join(format.frames_file_name())
}

/// Writes every frame of the run in `dir` (`frames.parquet`, columns
/// `latlab_results::columns::FRAMES`) to `out`, under the same rules as [`export`]; returns
/// the number of rows, or None when the run replayed no video (nothing is written then).
pub fn export_frames(
    dir: &Path,
    format: Format,
    out: &Path,
) -> Result<Option<usize>, AnalysisError> {
    let run = Run::open(dir)?;
    let Some(frames) = run.frames_file() else {
        return Ok(None);
    };
    let file = File::open(&frames).map_err(|source| AnalysisError::Io {
        path: frames.clone(),
        source,
    })?;
    let mut df = ParquetReader::new(file).finish()?;
    write(&mut df, dir, format, out).map(Some)
}

/// Writes `df` to `out` (creating its folder) in `format`, refusing destinations among a
/// results folder's own files; returns the number of rows.
fn write(
    df: &mut DataFrame,
    dir: &Path,
    format: Format,
    out: &Path,
) -> Result<usize, AnalysisError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| AnalysisError::Io { path, source }
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Made first, so the check below sees where the file really lands (`..`, links).
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    refuse_run_files(dir, out)?;
    let file = File::create(out).map_err(io(out))?;
    match format {
        Format::Csv => CsvWriter::new(file).include_header(true).finish(df)?,
        Format::Json => JsonWriter::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .finish(df)?,
    }
    Ok(df.height())
}

/// Where an export of the run in `dir` goes when no destination is given:
/// `DIR/export/spans.csv` or `DIR/export/spans.jsonl`.
pub fn default_out(dir: &Path, format: Format) -> PathBuf {
    dir.join(EXPORT_DIR).join(format.file_name())
}

/// Writes every span of the run in `dir` to `out` (creating its folder); returns the number
/// of rows. Refuses an `out` directly inside `dir` or any other results folder.
pub fn export(dir: &Path, format: Format, out: &Path) -> Result<usize, AnalysisError> {
    let run = Run::open(dir)?;
    if !run.has_spans() {
        return Err(AnalysisError::Missing {
            path: run.spans_file(),
            hint: "the run replayed video only: export its frames (frames.csv) instead",
        });
    }
    let mut df = run.spans()?.collect()?;
    write(&mut df, dir, format, out)
}

/// An error when `out` (whose folder exists) would land among the files of the run in `dir`
/// or of any results folder (a folder holding `manifest.json`).
fn refuse_run_files(dir: &Path, out: &Path) -> Result<(), AnalysisError> {
    let canonical = |p: &Path| {
        p.canonicalize().map_err(|source| AnalysisError::Io {
            path: p.to_path_buf(),
            source,
        })
    };
    // An existing file may be a link: where it points is what would be overwritten.
    let target = if out.exists() {
        canonical(out)?
    } else {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        canonical(parent)?.join(out.file_name().unwrap_or_default())
    };
    let folder = target.parent().unwrap_or(Path::new("/"));
    let is_run = dir.canonicalize().is_ok_and(|d| d == folder)
        || folder.join(latlab_results::files::MANIFEST).exists();
    if is_run {
        return Err(AnalysisError::RunFile {
            path: out.to_path_buf(),
            run: folder.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_destination_is_the_export_folder() {
        assert_eq!(
            default_out(Path::new("r"), Format::Json),
            Path::new("r/export/spans.jsonl")
        );
        assert_eq!(
            default_out(Path::new("r"), Format::Csv),
            Path::new("r/export/spans.csv")
        );
        assert_eq!(
            default_frames_out(Path::new("r"), Format::Csv),
            Path::new("r/export/frames.csv")
        );
    }

    #[test]
    fn destinations_among_a_runs_files_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let other = tmp.path().join("other-run");
        for d in [&run, &other] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join("manifest.json"), "{}").unwrap();
        }
        std::fs::create_dir_all(run.join("export")).unwrap();
        for out in [
            run.join("spans.jsonl"),
            run.join("anything.csv"),
            run.join("export/../spans.parquet"),
            other.join("spans.jsonl"),
        ] {
            assert!(
                matches!(
                    refuse_run_files(&run, &out),
                    Err(AnalysisError::RunFile { .. })
                ),
                "{}",
                out.display()
            );
        }
        for out in [
            default_out(&run, Format::Json),
            tmp.path().join("spans.jsonl"),
        ] {
            assert!(refuse_run_files(&run, &out).is_ok(), "{}", out.display());
        }
        // A link elsewhere that points at a run's file is refused too.
        #[cfg(unix)]
        {
            std::fs::write(run.join("spans.jsonl"), "{}\n").unwrap();
            let link = tmp.path().join("link.jsonl");
            std::os::unix::fs::symlink(run.join("spans.jsonl"), &link).unwrap();
            assert!(matches!(
                refuse_run_files(&run, &link),
                Err(AnalysisError::RunFile { .. })
            ));
        }
    }
}
