//! Why a plot could not be drawn or written.

use std::path::PathBuf;

/// Errors of [`crate::render_svgs`] and [`crate::write_pngs`].
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed to draw: a backend error (PNG encoding or writing), or no usable font
    /// (the `ttf` feature needs fontconfig and at least one sans-serif font installed).
    #[error("drawing plot `{plot}` failed: {message}")]
    Draw {
        /// File stem of the plot that failed (`cdf`, `histogram_llm`, ...).
        plot: String,
        /// plotters' description of the failure.
        message: String,
    },
    /// The folder for the PNG files could not be created.
    #[error("cannot create plot folder {}: {source}", path.display())]
    CreateDir {
        /// The folder asked for.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl PlotError {
    /// Wraps a plotters drawing error with the name of the plot it came from.
    pub(crate) fn draw<E: std::error::Error + Send + Sync>(
        plot: &str,
        err: plotters::drawing::DrawingAreaErrorKind<E>,
    ) -> Self {
        Self::Draw {
            plot: plot.to_owned(),
            message: err.to_string(),
        }
    }
}
