//! `latlab export`: a results folder's raw spans as CSV or JSON for spreadsheets and tools.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::AnalysisError;
use crate::load::Run;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Json,
}

/// Writes every span of the run in `dir` to `out`; returns the number of rows.
pub fn export(dir: &Path, format: Format, out: &Path) -> Result<usize, AnalysisError> {
    let mut df = Run::open(dir)?.spans()?.collect()?;
    let file = File::create(out).map_err(|source| AnalysisError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    match format {
        Format::Csv => CsvWriter::new(file).include_header(true).finish(&mut df)?,
        Format::Json => JsonWriter::new(file)
            .with_json_format(JsonFormat::JsonLines)
            .finish(&mut df)?,
    }
    Ok(df.height())
}
