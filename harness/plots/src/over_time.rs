//! Latency and load over a run: p95 voice-to-voice per 1 s window on the left axis, calls in
//! flight (stepped, dashed) on the right, so a latency climb can be read against the load.

use latlab_report::model::TimeSeries;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::SeriesColours;

/// Caption and [`crate::Plot::title`].
pub(crate) const TITLE: &str = "p95 voice-to-voice per 1 s window";

/// (x, y) points of one line.
type Points = Vec<(f64, f64)>;

/// Finite (s, ms) points of a series' p95 line.
fn p95_points(series: &TimeSeries) -> Points {
    series
        .p95
        .iter()
        .filter(|(t, v, _)| t.is_finite() && v.is_finite())
        .map(|&(t, v, _)| (t, v))
        .collect()
}

/// Finite (s, calls) points of a series' in-flight line, as a step function.
fn in_flight_steps(series: &TimeSeries) -> Points {
    let points: Vec<(f64, f64)> = series
        .in_flight
        .iter()
        .filter(|(t, _)| t.is_finite())
        .map(|&(t, c)| (t, c as f64))
        .collect();
    let mut steps = Vec::with_capacity(points.len() * 2);
    for (i, &(t, c)) in points.iter().enumerate() {
        if i > 0 {
            steps.push((t, points[i - 1].1));
        }
        steps.push((t, c));
    }
    steps
}

/// Whether any series has a point to draw.
pub(crate) fn has_data(series: &[TimeSeries]) -> bool {
    series
        .iter()
        .any(|s| !p95_points(s).is_empty() || !in_flight_steps(s).is_empty())
}

/// Draws latency and load over time onto `root`.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[TimeSeries],
    colours: &SeriesColours,
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, TITLE)?;
    let lines: Vec<(&TimeSeries, Points, Points)> = series
        .iter()
        .map(|s| (s, p95_points(s), in_flight_steps(s)))
        .filter(|(_, p95, flight)| !p95.is_empty() || !flight.is_empty())
        .collect();

    let all_t = lines
        .iter()
        .flat_map(|(_, p95, flight)| p95.iter().chain(flight.iter()).map(|p| p.0));
    let t_lo = all_t.clone().fold(0.0_f64, f64::min);
    // The last window covers one more second.
    let t_hi = all_t.fold(0.0_f64, f64::max) + 1.0;
    let t_span = t_hi - t_lo;
    let ms_hi = lines
        .iter()
        .flat_map(|(_, p95, _)| p95.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let calls_hi = lines
        .iter()
        .flat_map(|(_, _, flight)| flight.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let ms = frame::from_zero(ms_hi);
    let ms_span = ms.end - ms.start;
    // Whole calls, with headroom so the stepped line does not sit on the frame.
    let calls = 0.0..(calls_hi * 1.15).max(calls_hi + 1.0).ceil();

    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .right_y_label_area_size(60)
        .build_cartesian_2d(t_lo..t_hi, ms)?
        .set_secondary_coord(t_lo..t_hi, calls.clone());
    chart
        .configure_mesh()
        .x_desc("time since the series' first turn (s)")
        .y_desc("p95 voice-to-voice latency (ms)")
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .x_label_formatter(&|v| frame::tick_label(*v, t_span))
        .y_label_formatter(&|v| frame::tick_label(*v, ms_span))
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    let calls_end = calls.end;
    chart
        .configure_secondary_axes()
        .y_desc("calls in flight (dashed)")
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .y_labels((calls_end as usize + 1).min(11))
        .y_label_formatter(&|v| {
            // Whole calls only; a fractional tick would read as a fraction of a call.
            if (v - v.round()).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .draw()?;

    let mut legend = Vec::new();
    for (s, p95, flight) in &lines {
        let colour = colours.colour(&s.label);
        if !flight.is_empty() {
            chart.draw_secondary_series(DashedLineSeries::new(
                flight.iter().copied(),
                6,
                4,
                colour.mix(frame::DASHED_ALPHA).stroke_width(2),
            ))?;
        }
        if !p95.is_empty() {
            chart.draw_series(LineSeries::new(p95.iter().copied(), colour.stroke_width(2)))?;
            chart.draw_series(p95.iter().map(|&p| Circle::new(p, 2, colour.filled())))?;
            legend.push(LegendEntry::new(
                format!("{} p95", s.label),
                colour,
                Mark::Line,
            ));
        }
        if !flight.is_empty() {
            legend.push(LegendEntry::new(
                format!("{} in flight", s.label),
                colour,
                Mark::Dashed,
            ));
        }
    }
    frame::draw_legend(&legend_area, Some("series"), &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_is_drawn_as_steps() {
        let s = TimeSeries {
            label: "a".into(),
            p95: vec![],
            in_flight: vec![(0.0, 1), (1.0, 3), (2.0, 2)],
        };
        assert_eq!(
            in_flight_steps(&s),
            vec![(0.0, 1.0), (1.0, 1.0), (1.0, 3.0), (2.0, 3.0), (2.0, 2.0)]
        );
    }
}
