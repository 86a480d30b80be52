//! The furniture every plot shares: size, fonts, caption, the legend panel, axis ranges and
//! tick labels. Nothing here knows what a plot shows.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::prelude::*;

/// Width and height of every plot, in pixels (SVG user units and PNG pixels alike).
pub const SIZE: (u32, u32) = (960, 540);

/// The font family asked of fontconfig (DejaVu Sans on Debian).
pub(crate) const FONT: &str = "sans-serif";
/// Caption size.
const CAPTION_PX: u32 = 22;
/// Axis description size.
pub(crate) const DESC_PX: u32 = 16;
/// Tick label size.
pub(crate) const TICK_PX: u32 = 13;
/// Legend and annotation size.
pub(crate) const LABEL_PX: u32 = 13;
/// Width of the legend panel on the right.
const LEGEND_W: u32 = 230;

/// Why drawing on backend `DB` failed.
pub(crate) type DrawError<DB> = DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>;

/// What a drawing function returns for backend `DB`.
pub(crate) type DrawResult<DB> = Result<(), DrawError<DB>>;

/// A pixel area of a plot.
pub(crate) type Area<DB> = DrawingArea<DB, Shift>;

/// Opacity of dashed (secondary) lines, in the plot and in its legend alike.
pub(crate) const DASHED_ALPHA: f64 = 0.5;

/// How a legend entry is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A solid line.
    Line,
    /// A dashed line, drawn at [`DASHED_ALPHA`].
    Dashed,
    /// A filled box.
    Box,
    /// A filled circle.
    Circle,
    /// A filled triangle.
    Triangle,
    /// An interval: a thin bar with end caps.
    Whisker,
    /// No mark: a note that belongs to the row above.
    None,
}

/// Grey of explanatory legend rows (what a whisker means, what lies off the axis).
pub(crate) const NOTE: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// Half-length of a whisker's end cap, px.
pub(crate) const CAP_PX: i32 = 5;

/// One legend row.
pub(crate) struct LegendEntry {
    /// Text, drawn as given (plotters escapes it in SVG).
    pub label: String,
    /// Colour of the mark.
    pub colour: RGBColor,
    /// Shape of the mark.
    pub mark: Mark,
}

impl LegendEntry {
    pub(crate) fn new(label: impl Into<String>, colour: RGBColor, mark: Mark) -> Self {
        Self {
            label: label.into(),
            colour,
            mark,
        }
    }
}

/// Fills the background, draws the caption and returns (chart area, legend area).
pub(crate) fn layout<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<(Area<DB>, Area<DB>), DrawError<DB>> {
    root.fill(&WHITE)?;
    let body = root.titled(title, (FONT, CAPTION_PX).into_font().color(&BLACK))?;
    let width = body.dim_in_pixel().0;
    Ok(body.split_horizontally(width.saturating_sub(LEGEND_W)))
}

/// Draws the legend rows top-down in the legend panel, shortening labels that do not fit.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: Option<&str>,
    entries: &[LegendEntry],
) -> DrawResult<DB> {
    let font = (FONT, LABEL_PX).into_font().color(&BLACK);
    let (width, height) = area.dim_in_pixel();
    let text_x = 34;
    let max_text = width.saturating_sub(text_x as u32 + 8);
    let row = 22;
    let mut y = 22;
    if let Some(heading) = heading {
        let bold = (FONT, LABEL_PX, FontStyle::Bold).into_font().color(&BLACK);
        let text = fit(area, heading, &bold, max_text + text_x as u32 - 8)?;
        area.draw(&Text::new(text, (8, y - 7), bold))?;
        y += row;
    }
    for entry in entries {
        if y + row / 2 > height as i32 {
            break;
        }
        draw_mark(area, entry.mark, entry.colour, (8, y))?;
        let text = fit(area, &entry.label, &font, max_text)?;
        area.draw(&Text::new(text, (text_x, y - 7), font.clone()))?;
        y += row;
    }
    Ok(())
}

/// Draws a legend mark 20 px wide whose vertical middle is at `at.1`.
fn draw_mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    mark: Mark,
    colour: RGBColor,
    (x, y): (i32, i32),
) -> DrawResult<DB> {
    match mark {
        Mark::Line => area.draw(&PathElement::new(
            vec![(x, y), (x + 20, y)],
            colour.stroke_width(3),
        )),
        Mark::Dashed => {
            for dash in [0, 8, 16] {
                area.draw(&PathElement::new(
                    vec![(x + dash, y), (x + dash + 4, y)],
                    colour.mix(DASHED_ALPHA).stroke_width(2),
                ))?;
            }
            Ok(())
        }
        Mark::Box => area.draw(&Rectangle::new(
            [(x + 2, y - 6), (x + 18, y + 6)],
            colour.filled(),
        )),
        Mark::Circle => area.draw(&Circle::new((x + 10, y), 5, colour.filled())),
        Mark::Triangle => area.draw(&TriangleMarker::new((x + 10, y), 6, colour.filled())),
        Mark::None => Ok(()),
        Mark::Whisker => {
            let style = colour.stroke_width(2);
            area.draw(&PathElement::new(vec![(x + 2, y), (x + 18, y)], style))?;
            for end in [x + 2, x + 18] {
                area.draw(&PathElement::new(
                    vec![(end, y - CAP_PX), (end, y + CAP_PX)],
                    style,
                ))?;
            }
            Ok(())
        }
    }
}

/// `text`, shortened with "..." until it is at most `max_px` wide in `font`.
pub(crate) fn fit<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle<'_>,
    max_px: u32,
) -> Result<String, DrawingAreaErrorKind<DB::ErrorType>> {
    if area.estimate_text_size(text, font)?.0 <= max_px {
        return Ok(text.to_owned());
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().collect::<String>() + "...";
        if area.estimate_text_size(&candidate, font)?.0 <= max_px {
            return Ok(candidate);
        }
    }
    Ok("...".to_owned())
}

/// `lo..hi` widened by 5 % each side; a zero-width or non-finite range becomes a sensible one.
pub(crate) fn padded(lo: f64, hi: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite()) {
        return 0.0..1.0;
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let half = (hi.abs() * 0.1).max(1.0);
        return (lo - half)..(hi + half);
    }
    (lo - span * 0.05)..(hi + span * 0.05)
}

/// `0..hi` with 10 % headroom, for counts and latencies that start at zero.
pub(crate) fn from_zero(hi: f64) -> Range<f64> {
    if hi.is_finite() && hi > 0.0 {
        0.0..hi * 1.1
    } else {
        0.0..1.0
    }
}

/// A positive `lo..hi` widened by a factor each side for a log axis; equal ends are widened
/// to a factor of 1.5 each way so the axis never has zero length.
pub(crate) fn padded_log(lo: f64, hi: f64) -> Range<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > 0.0) {
        return 1.0..10.0;
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    if hi / lo < 1.2 {
        return (lo / 1.5)..(hi * 1.5);
    }
    let pad = (hi / lo).powf(0.05);
    (lo / pad)..(hi * pad)
}

/// Tick values for a log axis: 1-2-5 steps per decade, denser when the range is narrow.
pub(crate) fn log_ticks(range: &Range<f64>) -> Vec<f64> {
    let (lo, hi) = (range.start, range.end);
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let mantissas: [&[f64]; 4] = [
        &[1.0],
        &[1.0, 2.0, 5.0],
        &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0],
        &[
            1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0,
        ],
    ];
    let first_decade = lo.log10().floor() as i32;
    let last_decade = hi.log10().ceil() as i32;
    let mut best = Vec::new();
    for set in mantissas {
        let mut ticks = Vec::new();
        for decade in first_decade..=last_decade {
            let scale = 10f64.powi(decade);
            for m in set {
                let v = m * scale;
                if v >= lo && v <= hi {
                    ticks.push(v);
                }
            }
        }
        if ticks.len() > 12 {
            break;
        }
        best = ticks;
        if best.len() >= 5 {
            break;
        }
    }
    best
}

/// A number with as few decimals as its axis needs (`span` is the axis length).
pub(crate) fn tick_label(value: f64, span: f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else if span >= 0.2 {
        2
    } else {
        3
    };
    let mut text = format!("{value:.decimals$}");
    // "2.50" and "2.0" read as noise; "-0" reads as a bug.
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    if text == "-0" {
        text = "0".to_owned();
    }
    text
}

/// A latency for a log axis or a label: whole milliseconds from 10 ms up.
pub(crate) fn ms_label(value: f64) -> String {
    if value.abs() >= 10.0 {
        format!("{value:.0}")
    } else {
        tick_label(value, 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_never_returns_an_empty_range() {
        for (lo, hi) in [
            (5.0, 5.0),
            (0.0, 0.0),
            (f64::NAN, 1.0),
            (3.0, 1.0),
            (-2.0, -2.0),
        ] {
            let r = padded(lo, hi);
            assert!(r.start < r.end, "{lo} {hi} -> {r:?}");
        }
    }

    #[test]
    fn padded_log_is_positive_and_non_empty() {
        for (lo, hi) in [(1000.0, 1000.0), (0.0, 5.0), (800.0, 2000.0), (1e-3, 1e-3)] {
            let r = padded_log(lo, hi);
            assert!(r.start > 0.0 && r.start < r.end, "{lo} {hi} -> {r:?}");
        }
    }

    #[test]
    fn log_ticks_fall_inside_and_are_enough() {
        let ticks = log_ticks(&(700.0..2500.0));
        assert!(ticks.len() >= 4, "{ticks:?}");
        assert!(ticks.iter().all(|t| (700.0..=2500.0).contains(t)));
        let wide = log_ticks(&(1.0..1e6));
        assert!(wide.len() <= 12 && wide.len() >= 5, "{wide:?}");
    }

    #[test]
    fn tick_labels_have_few_decimals() {
        assert_eq!(tick_label(0.30000000000000004, 1.0), "0.3");
        assert_eq!(tick_label(2.0, 7.0), "2");
        assert_eq!(tick_label(2.5, 7.0), "2.5");
        assert_eq!(tick_label(100.0, 1000.0), "100");
        assert_eq!(tick_label(1234.5678, 2000.0), "1235");
        assert_eq!(tick_label(-0.0001, 100.0), "0");
        assert_eq!(ms_label(1500.0000001), "1500");
    }
}
