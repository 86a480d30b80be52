//! One stage's latency histogram: the analysis' bins, with each series' bar side by side
//! inside a bin so series compare bin by bin.

use latlab_report::model::StageHistogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::{self, SeriesColours};

/// Caption and [`crate::Plot::title`] of one stage's histogram.
pub(crate) fn title(stage: &str) -> String {
    format!("{} latency histogram", palette::stage_display_name(stage))
}

/// File stem for a stage: `histogram_<stage>`, with anything but `[a-z0-9_-]` made `_`.
pub(crate) fn file_name(stage: &str) -> String {
    let safe: String = stage
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .collect();
    format!("histogram_{safe}")
}

/// Bins that can be drawn: (lo, hi) with finite, increasing edges; the index is the bin's.
fn bins(hist: &StageHistogram) -> Vec<(usize, f64, f64)> {
    hist.edges
        .windows(2)
        .enumerate()
        .filter(|(_, e)| e[0].is_finite() && e[1].is_finite() && e[1] > e[0])
        .map(|(i, e)| (i, e[0], e[1]))
        .collect()
}

/// Whether the histogram has a bin with a turn in it.
pub(crate) fn has_data(hist: &StageHistogram) -> bool {
    bins(hist).iter().any(|&(i, _, _)| {
        hist.series
            .iter()
            .any(|(_, counts)| counts.get(i).is_some_and(|&c| c > 0))
    })
}

/// Draws one stage's histogram onto `root`.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    hist: &StageHistogram,
    colours: &SeriesColours,
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, &title(&hist.stage))?;
    let bins = bins(hist);
    let lo = bins.iter().map(|b| b.1).fold(f64::INFINITY, f64::min);
    let hi = bins.iter().map(|b| b.2).fold(f64::NEG_INFINITY, f64::max);
    let x = if lo < hi {
        lo..hi
    } else {
        frame::padded(lo, hi)
    };
    let x_span = x.end - x.start;
    let peak = hist
        .series
        .iter()
        .flat_map(|(_, counts)| bins.iter().filter_map(|&(i, _, _)| counts.get(i).copied()))
        .max()
        .unwrap_or(0);
    let y = frame::from_zero(peak as f64);

    let stage = palette::stage_display_name(&hist.stage);
    let x_desc = if hist.stage == "turn" {
        "voice-to-voice latency (ms)".to_owned()
    } else {
        format!("{stage} latency (ms)")
    };
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("turns (count)")
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .x_label_formatter(&|v| frame::tick_label(*v, x_span))
        .y_label_formatter(&|v| {
            // Counts are whole; a fractional tick would read as a fraction of a turn.
            if (v - v.round()).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .disable_x_mesh()
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;

    let k = hist.series.len().max(1) as f64;
    let mut legend = Vec::new();
    for (s, (label, counts)) in hist.series.iter().enumerate() {
        // One series needs no telling apart: the stage's colour then says which stage this is.
        let colour = if hist.series.len() == 1 {
            palette::stage_colour(&hist.stage)
        } else {
            colours.colour(label)
        };
        let rects = bins.iter().filter_map(|&(i, lo, hi)| {
            let count = *counts.get(i)?;
            if count == 0 {
                return None;
            }
            let width = (hi - lo) / k;
            let left = lo + width * s as f64;
            Some(Rectangle::new(
                [(left, 0.0), (left + width, count as f64)],
                colour.filled(),
            ))
        });
        chart.draw_series(rects)?;
        let above = hist.above.get(s).copied().unwrap_or(0);
        let total: u64 = counts.iter().sum::<u64>() + above;
        legend.push(LegendEntry::new(
            format!("{label} (n={total})"),
            colour,
            Mark::Box,
        ));
        if above > 0 {
            // Past the last edge: off the axis, but never out of the count.
            legend.push(LegendEntry::new(
                format!("{above} past {} ms, off axis", frame::ms_label(hi)),
                frame::NOTE,
                Mark::None,
            ));
        }
    }
    frame::draw_legend(&legend_area, Some("series"), &legend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("llm"), "histogram_llm");
        assert_eq!(file_name("../TTS x"), "histogram____tts_x");
    }
}
