//! Latency CDFs — voice-to-voice, and frame latency (camera → result) for runs with video:
//! one curve per series on a log latency axis, with p90/p95 marked, so tails of different
//! profiles compare at a glance.

use latlab_report::model::CdfSeries;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::SeriesColours;

/// Caption and [`crate::Plot::title`].
pub(crate) const TITLE: &str = "Voice-to-voice latency CDF";

/// Caption of the frame latency CDF.
pub(crate) const FRAME_TITLE: &str = "Frame latency CDF (capture → result)";

/// What one CDF plot shows: its title and axis descriptions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axes {
    /// Caption.
    pub(crate) title: &'static str,
    /// Latency axis.
    pub(crate) x: &'static str,
    /// Fraction axis.
    pub(crate) y: &'static str,
}

/// The voice-to-voice CDF.
pub(crate) const VOICE: Axes = Axes {
    title: TITLE,
    x: "voice-to-voice latency (ms, log scale)",
    y: "turns at or below this latency (%)",
};

/// The frame latency CDF.
pub(crate) const FRAME: Axes = Axes {
    title: FRAME_TITLE,
    x: "frame latency from scheduled capture (ms, log scale)",
    y: "processed frames at or below this latency (%)",
};

/// Most points drawn per curve; more only bloats the SVG.
const MAX_POINTS: usize = 1500;

/// Points a log axis can show: positive and finite.
fn drawable_points(series: &CdfSeries) -> impl Iterator<Item = (f64, f64)> + '_ {
    series
        .points
        .iter()
        .copied()
        .filter(|&(x, y)| x > 0.0 && x.is_finite() && y.is_finite())
}

/// Whether any series has a point to draw.
pub(crate) fn has_data(series: &[CdfSeries]) -> bool {
    series.iter().any(|s| drawable_points(s).next().is_some())
}

/// Every `n`-th point plus the last, so a long curve keeps its shape and its tail.
fn thinned(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points;
    }
    let step = points.len().div_ceil(MAX_POINTS);
    let last = points[points.len() - 1];
    let mut out: Vec<_> = points.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// Draws the CDF onto `root`.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[CdfSeries],
    colours: &SeriesColours,
    axes: Axes,
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, axes.title)?;
    let curves: Vec<(&CdfSeries, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s, thinned(drawable_points(s).collect())))
        .filter(|(_, points)| !points.is_empty())
        .collect();

    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (s, points) in &curves {
        let intervals = [s.p90_ci, s.p95_ci].into_iter().flatten().flatten();
        let marks = [s.p90, s.p95]
            .into_iter()
            .chain(intervals)
            .filter(|v| *v > 0.0 && v.is_finite());
        for x in points.iter().map(|p| p.0).chain(marks) {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    let x_range = frame::padded_log(lo, hi);
    let ticks = frame::log_ticks(&x_range);

    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(64)
        .build_cartesian_2d(
            x_range.clone().log_scale().with_key_points(ticks),
            0.0..100.0,
        )?;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .x_label_formatter(&|v| frame::ms_label(*v))
        .y_labels(11)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    // Reference lines at the percentiles the markers sit on.
    let note = (frame::FONT, frame::TICK_PX)
        .into_font()
        .color(&BLACK.mix(0.6));
    for level in [90.0, 95.0] {
        chart.draw_series(DashedLineSeries::new(
            [(x_range.start, level), (x_range.end, level)],
            3,
            4,
            BLACK.mix(0.45).stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(
            EmptyElement::at((x_range.start, level))
                + Text::new(format!("{level:.0} %"), (4, -15), note.clone()),
        ))?;
    }

    let mut legend = Vec::new();
    for (s, points) in &curves {
        let colour = colours.colour(&s.label);
        chart.draw_series(LineSeries::new(
            points.iter().map(|&(x, y)| (x, y * 100.0)),
            colour.stroke_width(2),
        ))?;
        if let [(x, y)] = points[..] {
            // A line through one point draws nothing.
            chart.draw_series([Circle::new((x, y * 100.0), 3, colour.filled())])?;
        }
        let label_font = (frame::FONT, frame::LABEL_PX).into_font().color(&colour);
        // p95 label sits left-above its marker and p90 right-below, so they never collide.
        for (value, ci, level, name, offset) in [
            (s.p90, s.p90_ci, 90.0, "p90", (7, 1)),
            (s.p95, s.p95_ci, 95.0, "p95", (-30, -17)),
        ] {
            if !(value > 0.0 && value.is_finite()) {
                continue;
            }
            // The marker's 95 % interval as a whisker along the latency axis.
            if let Some([lo, hi]) = ci.filter(|[lo, hi]| *lo > 0.0 && hi.is_finite() && lo < hi) {
                let style = colour.stroke_width(2);
                chart.draw_series(LineSeries::new([(lo, level), (hi, level)], style))?;
                chart.draw_series([lo, hi].map(|end| {
                    EmptyElement::at((end, level))
                        + PathElement::new(vec![(0, -frame::CAP_PX), (0, frame::CAP_PX)], style)
                }))?;
            }
            chart.draw_series(std::iter::once(
                EmptyElement::at((value, level))
                    + Circle::new((0, 0), 4, colour.filled())
                    + Circle::new((0, 0), 4, WHITE.stroke_width(1))
                    + Text::new(name, offset, label_font.clone()),
            ))?;
        }
        legend.push(LegendEntry::new(
            format!("{} (n={})", s.label, s.count),
            colour,
            Mark::Line,
        ));
    }
    if curves
        .iter()
        .any(|(s, _)| s.p90_ci.is_some() || s.p95_ci.is_some())
    {
        legend.push(LegendEntry::new(
            "whiskers: 95 % interval",
            frame::NOTE,
            Mark::Whisker,
        ));
    }
    frame::draw_legend(&legend_area, Some("series"), &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_last_point() {
        let points: Vec<_> = (0..10_000)
            .map(|i| (f64::from(i) + 1.0, f64::from(i) / 9999.0))
            .collect();
        let thin = thinned(points);
        assert!(thin.len() <= MAX_POINTS + 1);
        assert_eq!(thin.last(), Some(&(10_000.0, 1.0)));
    }
}
