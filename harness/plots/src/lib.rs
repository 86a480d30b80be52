//! latlab-plots: draws the report model's [`PlotData`] as SVG strings (inlined into the HTML
//! report) and PNG files (written beside it).
//!
//! Every plot is one function over a generic plotters `DrawingArea`, so SVG and PNG share
//! one code path and cannot disagree. This crate computes no statistics: it draws what
//! `latlab-analysis` put into the model, and skips a plot whose series are empty.
//!
//! Text is rendered with the system's `sans-serif` font through fontconfig (plotters' `ttf`
//! feature), so a machine needs fontconfig and at least one font (DejaVu on Debian).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cdf;
mod error;
mod fps;
mod frame;
mod histogram;
mod machine;
mod over_time;
mod palette;
mod pareto;
mod waterfall;

use std::path::{Path, PathBuf};

use latlab_report::model::{
    CdfSeries, FpsSeries, ParetoPoint, PlotData, StageHistogram, TelemetrySeries, TimeSeries,
    WaterfallBar,
};
use plotters::coord::Shift;
use plotters::prelude::*;

pub use error::PlotError;
pub use frame::SIZE;

use frame::DrawResult;
use palette::SeriesColours;

/// One rendered plot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plot {
    /// File stem: `cdf`, `waterfall`, `over_time`, `machine`, `histogram_<stage>`, `pareto`,
    /// `frame_cdf` or `fps_over_time`.
    pub name: String,
    /// Human title, also drawn as the plot's caption (plain text: escape it in HTML).
    pub title: String,
    /// A complete `<svg ...>...</svg>` element, [`SIZE`] user units with a `viewBox`; text
    /// inside is XML-escaped, so it is safe to inline.
    pub svg: String,
}

/// What one plot draws.
enum Kind<'a> {
    Cdf(&'a [CdfSeries], cdf::Axes),
    Fps(&'a [FpsSeries]),
    Waterfall(&'a [WaterfallBar]),
    OverTime(&'a [TimeSeries]),
    Machine(&'a [TelemetrySeries]),
    Histogram(&'a StageHistogram),
    Pareto(&'a [ParetoPoint]),
}

/// One plot to draw: its name, title and data.
struct Spec<'a> {
    name: String,
    title: String,
    kind: Kind<'a>,
}

/// The plots `plots` supports, in report order: cdf, waterfall, over_time, machine, one
/// histogram per stage, pareto, then the video's frame_cdf and fps_over_time.
fn specs<'a>(plots: &'a PlotData) -> Vec<Spec<'a>> {
    let mut specs = Vec::new();
    let mut push = |name: String, title: String, kind: Kind<'a>| {
        specs.push(Spec { name, title, kind });
    };
    if cdf::has_data(&plots.cdf) {
        push(
            "cdf".into(),
            cdf::TITLE.into(),
            Kind::Cdf(&plots.cdf, cdf::VOICE),
        );
    }
    if waterfall::has_data(&plots.waterfall) {
        push(
            "waterfall".into(),
            waterfall::TITLE.into(),
            Kind::Waterfall(&plots.waterfall),
        );
    }
    if over_time::has_data(&plots.over_time) {
        push(
            "over_time".into(),
            over_time::TITLE.into(),
            Kind::OverTime(&plots.over_time),
        );
    }
    // Right after latency over time, so the two are read together.
    if machine::has_data(&plots.telemetry) {
        push(
            "machine".into(),
            machine::TITLE.into(),
            Kind::Machine(&plots.telemetry),
        );
    }
    for hist in &plots.histograms {
        if histogram::has_data(hist) {
            push(
                histogram::file_name(&hist.stage),
                histogram::title(&hist.stage),
                Kind::Histogram(hist),
            );
        }
    }
    if pareto::has_data(&plots.pareto) {
        push(
            "pareto".into(),
            pareto::TITLE.into(),
            Kind::Pareto(&plots.pareto),
        );
    }
    if cdf::has_data(&plots.frame_cdf) {
        push(
            "frame_cdf".into(),
            cdf::FRAME_TITLE.into(),
            Kind::Cdf(&plots.frame_cdf, cdf::FRAME),
        );
    }
    if fps::has_data(&plots.fps_over_time) {
        push(
            "fps_over_time".into(),
            fps::TITLE.into(),
            Kind::Fps(&plots.fps_over_time),
        );
    }
    specs
}

/// Draws one plot onto any backend and presents it.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    spec: &Spec<'_>,
    colours: &SeriesColours,
) -> DrawResult<DB> {
    match spec.kind {
        Kind::Cdf(series, axes) => cdf::draw(root, series, colours, axes)?,
        Kind::Fps(series) => fps::draw(root, series, colours)?,
        Kind::Waterfall(bars) => waterfall::draw(root, bars)?,
        Kind::OverTime(series) => over_time::draw(root, series, colours)?,
        Kind::Machine(series) => machine::draw(root, series, colours)?,
        Kind::Histogram(hist) => histogram::draw(root, hist, colours)?,
        Kind::Pareto(points) => pareto::draw(root, points, colours)?,
    }
    root.present()
}

/// Every plot the data supports (a plot whose series are empty is skipped), as SVG, in a
/// fixed order: cdf, waterfall, over_time, machine, `histogram_<stage>` for each stage, pareto,
/// frame_cdf, fps_over_time.
pub fn render_svgs(plots: &PlotData) -> Result<Vec<Plot>, PlotError> {
    let colours = SeriesColours::from_plot_data(plots);
    specs(plots)
        .into_iter()
        .map(|spec| {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
                draw(&root, &spec, &colours).map_err(|e| PlotError::draw(&spec.name, e))?;
            }
            Ok(Plot {
                name: spec.name,
                title: spec.title,
                svg,
            })
        })
        .collect()
}

/// The same plots as [`render_svgs`], written as `<dir>/<name>.png` (creating `dir`);
/// returns the paths in the same order.
pub fn write_pngs(plots: &PlotData, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    std::fs::create_dir_all(dir).map_err(|source| PlotError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let colours = SeriesColours::from_plot_data(plots);
    specs(plots)
        .into_iter()
        .map(|spec| {
            let path = dir.join(format!("{}.png", spec.name));
            {
                let root = BitMapBackend::new(&path, SIZE).into_drawing_area();
                draw(&root, &spec, &colours).map_err(|e| PlotError::draw(&spec.name, e))?;
            }
            Ok(path)
        })
        .collect()
}
