//! Where a turn's time goes: one horizontal bar per series, split at the median stage
//! boundaries, measured from the end of user speech.

use latlab_report::model::WaterfallBar;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::{self, BoundaryColours};

/// Caption and [`crate::Plot::title`].
pub(crate) const TITLE: &str = "Where a turn's time goes (median, ms after end of user speech)";

/// A bar's boundaries that can be drawn (finite times).
fn drawable(bar: &WaterfallBar) -> Vec<(&str, f64)> {
    bar.boundaries
        .iter()
        .filter(|(_, t)| t.is_finite())
        .map(|(name, t)| (name.as_str(), *t))
        .collect()
}

/// Whether any bar has a boundary to draw.
pub(crate) fn has_data(bars: &[WaterfallBar]) -> bool {
    bars.iter().any(|b| !drawable(b).is_empty())
}

/// Draws the waterfall onto `root`. Each segment runs from the previous boundary (the first
/// from 0, the end of user speech) to its boundary and takes that boundary's colour.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    bars: &[WaterfallBar],
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, TITLE)?;
    let rows: Vec<(&WaterfallBar, Vec<(&str, f64)>)> = bars
        .iter()
        .map(|b| (b, drawable(b)))
        .filter(|(_, points)| !points.is_empty())
        .collect();
    let n = rows.len() as i32;
    let colours = BoundaryColours::new(
        rows.iter()
            .flat_map(|(_, p)| p.iter().map(|(name, _)| *name)),
    );

    let times = rows.iter().flat_map(|(_, p)| p.iter().map(|(_, t)| *t));
    let lo = times.clone().fold(0.0_f64, f64::min);
    let hi = times.fold(0.0_f64, f64::max);
    let x = frame::padded(lo, hi);
    // Room right of the longest bar for its total.
    let x = x.start..x.end + (x.end - x.start) * 0.08;
    let span = x.end - x.start;

    // Row labels: the series label and its sample count, shortened to fit a third of the width.
    let tick_font = (frame::FONT, frame::TICK_PX).into_font().color(&BLACK);
    let max_label = area.dim_in_pixel().0 / 3;
    let mut labels = Vec::with_capacity(rows.len());
    let mut widest = 0;
    for (bar, _) in &rows {
        let text = frame::fit(
            &area,
            &format!("{} (n={})", bar.label, bar.count),
            &tick_font,
            max_label,
        )?;
        widest = widest.max(area.estimate_text_size(&text, &tick_font)?.0);
        labels.push(text);
    }

    // Row j (centred on y = j) shows bar n-1-j, so the first series is on top.
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(widest + 16)
        .build_cartesian_2d(x.clone(), -0.5..f64::from(n) - 0.5)?;
    let row_label = |v: &f64| {
        let j = v.round() as i32;
        if (v - v.round()).abs() < 1e-6 && (0..n).contains(&j) {
            labels[(n - 1 - j) as usize].clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("ms after end of user speech (0 = user stopped speaking)")
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .x_label_formatter(&|v| frame::tick_label(*v, span))
        .y_labels(rows.len() + 1)
        .y_label_formatter(&row_label)
        .disable_y_mesh()
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    for (i, (_, points)) in rows.iter().enumerate() {
        let j = f64::from(n - 1 - i as i32);
        let (bottom, top) = (j - 0.3, j + 0.3);
        let mut start = 0.0;
        for &(name, end) in points {
            let colour = colours.colour(name);
            let corners = [(start, bottom), (end, top)];
            chart.draw_series([
                Rectangle::new(corners, colour.filled()),
                Rectangle::new(corners, WHITE.stroke_width(1)),
            ])?;
            start = end;
        }
        let last = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        chart.draw_series(std::iter::once(
            EmptyElement::at((last, j))
                + Text::new(
                    format!("{} ms", frame::ms_label(last)),
                    (6, -7),
                    (frame::FONT, frame::LABEL_PX).into_font().color(&BLACK),
                ),
        ))?;
    }
    // The anchor every bar starts from.
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, -0.5), (0.0, f64::from(n) - 0.5)],
        BLACK.stroke_width(1),
    )))?;

    let mut seen: Vec<&str> = Vec::new();
    for (_, points) in &rows {
        for (name, _) in points {
            if !seen.contains(name) {
                seen.push(name);
            }
        }
    }
    let legend: Vec<LegendEntry> = seen
        .iter()
        .map(|name| {
            LegendEntry::new(
                palette::boundary_display_name(name),
                colours.colour(name),
                Mark::Box,
            )
        })
        .collect();
    frame::draw_legend(&legend_area, Some("segment ends at"), &legend)
}
