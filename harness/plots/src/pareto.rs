//! The latency/accuracy trade-off: each series' p90 and p95 voice-to-voice against its word
//! error rate. Lower-left is better on both.

use latlab_report::model::ParetoPoint;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::SeriesColours;

/// Caption and [`crate::Plot::title`].
pub(crate) const TITLE: &str = "Latency vs accuracy";

/// Marker of the percentile shapes in the legend, so colour is left to the series.
const SHAPE: RGBColor = frame::NOTE;

/// Points whose WER and at least one latency are finite.
fn drawable(points: &[ParetoPoint]) -> Vec<&ParetoPoint> {
    points
        .iter()
        .filter(|p| p.wer.is_finite() && (p.p90.is_finite() || p.p95.is_finite()))
        .collect()
}

/// Whether any point can be drawn.
pub(crate) fn has_data(points: &[ParetoPoint]) -> bool {
    !drawable(points).is_empty()
}

/// Draws the trade-off onto `root`.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: &[ParetoPoint],
    colours: &SeriesColours,
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, TITLE)?;
    let points = drawable(points);
    let wers = points.iter().map(|p| p.wer * 100.0);
    let x = frame::padded(
        wers.clone().fold(f64::INFINITY, f64::min),
        wers.fold(f64::NEG_INFINITY, f64::max),
    );
    // WER below zero is meaningless; keep the axis honest.
    let x = x.start.max(0.0)..x.end;
    // Room to the right of the rightmost point for its label.
    let x = x.start..x.end + (x.end - x.start) * 0.12;
    let intervals = |p: &&ParetoPoint| [p.p90_ci, p.p95_ci].into_iter().flatten().flatten();
    let ms = points
        .iter()
        .flat_map(|p| [p.p90, p.p95].into_iter().chain(intervals(p)))
        .filter(|v| v.is_finite());
    let y = frame::padded(
        ms.clone().fold(f64::INFINITY, f64::min),
        ms.fold(f64::NEG_INFINITY, f64::max),
    );
    let (x_span, y_span) = (x.end - x.start, y.end - y.start);

    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("word error rate (%), lower is better")
        .y_desc("voice-to-voice latency (ms), lower is better")
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .x_label_formatter(&|v| frame::tick_label(*v, x_span))
        .y_label_formatter(&|v| frame::tick_label(*v, y_span))
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    let mut legend = Vec::new();
    for p in &points {
        let colour = colours.colour(&p.label);
        let x = p.wer * 100.0;
        if p.p90.is_finite() && p.p95.is_finite() {
            chart.draw_series(LineSeries::new(
                [(x, p.p90), (x, p.p95)],
                colour.stroke_width(1),
            ))?;
        }
        // Each percentile's 95 % interval as a whisker along the latency axis, the p90's a
        // little left and the p95's a little right, so overlapping intervals stay apart.
        let side = x_span * 0.008;
        for (value, ci, dx) in [(p.p90, p.p90_ci, -side), (p.p95, p.p95_ci, side)] {
            let Some([lo, hi]) = ci.filter(|[lo, hi]| value.is_finite() && lo <= hi) else {
                continue;
            };
            let style = colour.mix(0.8).stroke_width(2);
            chart.draw_series(LineSeries::new([(x + dx, lo), (x + dx, hi)], style))?;
            chart.draw_series([lo, hi].map(|end| {
                EmptyElement::at((x + dx, end))
                    + PathElement::new(vec![(-frame::CAP_PX, 0), (frame::CAP_PX, 0)], style)
            }))?;
        }
        if p.p90.is_finite() {
            chart.draw_series([Circle::new((x, p.p90), 6, colour.filled())])?;
        }
        if p.p95.is_finite() {
            chart.draw_series([TriangleMarker::new((x, p.p95), 8, colour.filled())])?;
        }
        let anchor = if p.p95.is_finite() { p.p95 } else { p.p90 };
        chart.draw_series(std::iter::once(
            EmptyElement::at((x, anchor))
                + Text::new(
                    p.label.clone(),
                    (10, -8),
                    (frame::FONT, frame::LABEL_PX).into_font().color(&BLACK),
                ),
        ))?;
        legend.push(LegendEntry::new(
            format!("{} (n={})", p.label, p.count),
            colour,
            Mark::Box,
        ));
    }
    legend.push(LegendEntry::new("p90 voice-to-voice", SHAPE, Mark::Circle));
    legend.push(LegendEntry::new(
        "p95 voice-to-voice",
        SHAPE,
        Mark::Triangle,
    ));
    if points
        .iter()
        .any(|p| p.p90_ci.is_some() || p.p95_ci.is_some())
    {
        legend.push(LegendEntry::new(
            "whiskers: 95 % interval",
            SHAPE,
            Mark::Whisker,
        ));
    }
    frame::draw_legend(&legend_area, Some("series and marker"), &legend)
}
