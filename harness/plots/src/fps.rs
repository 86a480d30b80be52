//! Achieved frames per second over a video run: per 1 s window of result time, the mean over
//! a series' streams, one line per series, with the video's recorded rate dashed, so a
//! detector that falls behind shows as a line under its target.

use latlab_report::model::FpsSeries;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::SeriesColours;

/// Caption and [`crate::Plot::title`].
pub(crate) const TITLE: &str = "Achieved FPS per 1 s window";

/// Finite (s, fps) points of a series.
fn points(series: &FpsSeries) -> Vec<(f64, f64)> {
    series
        .points
        .iter()
        .filter(|(t, v, _)| t.is_finite() && v.is_finite())
        .map(|&(t, v, _)| (t, v))
        .collect()
}

/// The recorded rate of a series, when known and drawable.
fn source(series: &FpsSeries) -> Option<f64> {
    series.source_fps.filter(|f| f.is_finite() && *f > 0.0)
}

/// Whether any series has a point to draw.
pub(crate) fn has_data(series: &[FpsSeries]) -> bool {
    series.iter().any(|s| !points(s).is_empty())
}

/// Draws achieved FPS over time onto `root`.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[FpsSeries],
    colours: &SeriesColours,
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, TITLE)?;
    let lines: Vec<(&FpsSeries, Vec<(f64, f64)>)> = series
        .iter()
        .map(|s| (s, points(s)))
        .filter(|(_, p)| !p.is_empty())
        .collect();
    let t_hi = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|p| p.0))
        .fold(0.0_f64, f64::max)
        + 1.0;
    let fps_hi = lines
        .iter()
        .flat_map(|(s, p)| p.iter().map(|p| p.1).chain(source(s)))
        .fold(0.0_f64, f64::max);
    let fps = frame::from_zero(fps_hi);
    let fps_span = fps.end - fps.start;

    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_hi, fps)?;
    chart
        .configure_mesh()
        .x_desc("window start, s since the series' first capture")
        .y_desc("results per stream per second")
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .x_label_formatter(&|v| frame::tick_label(*v, t_hi))
        .y_label_formatter(&|v| frame::tick_label(*v, fps_span))
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    let mut legend = Vec::new();
    let mut sources: Vec<f64> = Vec::new();
    for (s, p) in &lines {
        let colour = colours.colour(&s.label);
        chart.draw_series(LineSeries::new(p.iter().copied(), colour.stroke_width(2)))?;
        chart.draw_series(p.iter().map(|&p| Circle::new(p, 2, colour.filled())))?;
        legend.push(LegendEntry::new(
            format!("{} (n={} windows)", s.label, p.len()),
            colour,
            Mark::Line,
        ));
        if let Some(f) = source(s).filter(|f| !sources.contains(f)) {
            sources.push(f);
        }
    }
    for f in sources {
        chart.draw_series(DashedLineSeries::new(
            [(0.0, f), (t_hi, f)],
            6,
            4,
            frame::NOTE.mix(frame::DASHED_ALPHA).stroke_width(2),
        ))?;
        legend.push(LegendEntry::new(
            format!("recorded rate {f:.2} fps"),
            frame::NOTE,
            Mark::Dashed,
        ));
    }
    frame::draw_legend(&legend_area, Some("series"), &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_skip_what_cannot_be_drawn() {
        let s = FpsSeries {
            label: "a".into(),
            points: vec![(0.0, 10.0, 1), (1.0, f64::NAN, 1), (2.0, 9.0, 1)],
            source_fps: Some(f64::INFINITY),
        };
        assert_eq!(points(&s), vec![(0.0, 10.0), (2.0, 9.0)]);
        assert_eq!(source(&s), None);
        assert!(has_data(&[s]));
    }
}
