//! The machine during a run, as small multiples over the run's time: CPU (each core, all
//! cores, the latlab process), the process's resident memory, network throughput and, when
//! the run had an NVIDIA GPU, its utilisation and memory. Its plot area lines up with the
//! latency-over-time plot above it, so a latency climb can be read against the machine; for a
//! single run, each series' (profile's) turns are shaded in its colour, so one can see which
//! profile was running when.

use std::ops::Range;

use latlab_report::model::{TelemetryPoint, TelemetrySeries};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::frame::{self, DrawResult, LegendEntry, Mark};
use crate::palette::{self, SeriesColours};

/// Caption and [`crate::Plot::title`].
pub(crate) const TITLE: &str = "Machine during the run";

/// Height of the bottom panel's time axis (ticks and description), px.
const X_AXIS_PX: u32 = 50;

/// How one line is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Style {
    /// The panel's main reading.
    Solid,
    /// A second reading in the same unit.
    Dashed,
    /// One of many (each core): thin and pale.
    Faint,
}

/// One line of a panel.
struct Line {
    points: Vec<(f64, f64)>,
    colour: RGBColor,
    style: Style,
}

/// One panel: a reading in one unit.
struct Panel {
    /// Axis description, with the unit.
    y_desc: &'static str,
    /// Value range; `None` means from zero to the largest value.
    y_range: Option<Range<f64>>,
    lines: Vec<Line>,
    /// Drawn beside the panel, so each row sits next to the lines it names.
    legend: Vec<LegendEntry>,
}

/// Finite (t, value) points.
fn line(
    points: &[TelemetryPoint],
    value: impl Fn(&TelemetryPoint) -> Option<f64>,
) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter_map(|p| Some((p.t_s, value(p)?)))
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect()
}

/// Whether any series has a point.
pub(crate) fn has_data(series: &[TelemetrySeries]) -> bool {
    series.iter().any(|s| !s.points.is_empty())
}

/// Whether any point of any series has a GPU reading.
fn has_gpu(series: &[TelemetrySeries]) -> bool {
    series.iter().flat_map(|s| &s.points).any(|p| {
        p.gpu
            .iter()
            .any(|g| g.utilization_percent.is_some() || g.memory_used_bytes.is_some())
    })
}

/// An empty panel.
fn panel(y_desc: &'static str, y_range: Option<Range<f64>>) -> Panel {
    Panel {
        y_desc,
        y_range,
        lines: Vec::new(),
        legend: Vec::new(),
    }
}

/// The panels of `series`, top to bottom, each with its legend rows.
fn panels(series: &[TelemetrySeries]) -> Vec<Panel> {
    let mut cpu = panel("CPU busy (%)", Some(0.0..105.0));
    let mut memory = panel("RSS (MiB)", None);
    let mut network = panel("net (Mbit/s)", None);
    let mut gpu = panel("GPU (%)", Some(0.0..105.0));
    let several = series.len() > 1;
    for (i, s) in series.iter().filter(|s| !s.points.is_empty()).enumerate() {
        let colour = palette::machine_colour(i);
        let name = |what: &str| {
            if several {
                format!("{} · {what}", s.label)
            } else {
                what.to_owned()
            }
        };
        let add = |panel: &mut Panel, points: Vec<(f64, f64)>, style, label: String| {
            if points.is_empty() {
                return;
            }
            panel.lines.push(Line {
                points,
                colour,
                style,
            });
            if !label.is_empty() {
                let (colour, mark) = match style {
                    Style::Solid => (colour, Mark::Line),
                    Style::Dashed => (colour, Mark::Dashed),
                    Style::Faint => (palette::faint(colour), Mark::Line),
                };
                panel.legend.push(LegendEntry::new(label, colour, mark));
            }
        };
        let cores = s.cores.max(1) as f64;
        add(
            &mut cpu,
            line(&s.points, |p| Some(p.cpu_percent)),
            Style::Solid,
            name(&format!("CPU, all {} cores", s.cores)),
        );
        // Each core only for a single run: several runs' cores would be a grey fog.
        if !several {
            for core in 0..s.cores {
                let label = if core == 0 {
                    name("CPU, each core")
                } else {
                    String::new()
                };
                add(
                    &mut cpu,
                    line(&s.points, |p| p.cpu_core_percent.get(core).copied()),
                    Style::Faint,
                    label,
                );
            }
        }
        // On the machine's scale: 100 % = every core busy with latlab alone.
        add(
            &mut cpu,
            line(&s.points, |p| Some(p.process_cpu_percent / cores)),
            Style::Dashed,
            name("latlab process"),
        );
        add(
            &mut memory,
            line(&s.points, |p| Some(p.rss_bytes as f64 / f64::from(1 << 20))),
            Style::Solid,
            name("latlab process RSS"),
        );
        add(
            &mut network,
            line(&s.points, |p| Some(p.net_rx_mbit_s)),
            Style::Solid,
            name("received"),
        );
        add(
            &mut network,
            line(&s.points, |p| Some(p.net_tx_mbit_s)),
            Style::Dashed,
            name("sent"),
        );
        for g in 0..s.gpus.len() {
            let which = if s.gpus.len() > 1 {
                format!("GPU {g}")
            } else {
                "GPU".to_owned()
            };
            add(
                &mut gpu,
                line(&s.points, |p| p.gpu.get(g)?.utilization_percent),
                Style::Solid,
                name(&format!("{which} utilisation")),
            );
            add(
                &mut gpu,
                line(&s.points, |p| {
                    let g = p.gpu.get(g)?;
                    let (used, total) = (g.memory_used_bytes?, g.memory_total_bytes?);
                    (total > 0).then(|| used as f64 / total as f64 * 100.0)
                }),
                Style::Dashed,
                name(&format!("{which} memory used")),
            );
        }
    }
    // Once per panel, under the series: what the lines are measured against.
    for (panel, note) in [
        (&mut cpu, "latlab: share of all cores"),
        (&mut network, "all interfaces, loopback too"),
    ] {
        if !panel.lines.is_empty() {
            panel
                .legend
                .push(LegendEntry::new(note, frame::NOTE, Mark::None));
        }
    }
    let mut panels = vec![cpu, memory, network];
    if has_gpu(series) {
        panels.push(gpu);
    }
    panels
}

/// A shaded span of the time axis: one series' turns.
struct Band<'a> {
    t: Range<f64>,
    colour: RGBColor,
    label: &'a str,
}

/// The bands of a single run's phases (several runs' phases would cover each other).
fn bands<'a>(series: &'a [TelemetrySeries], colours: &SeriesColours) -> Vec<Band<'a>> {
    let mut drawn = series.iter().filter(|s| !s.points.is_empty());
    let (Some(only), None) = (drawn.next(), drawn.next()) else {
        return Vec::new();
    };
    only.phases
        .iter()
        .filter(|p| p.start_s.is_finite() && p.end_s.is_finite() && p.end_s > p.start_s)
        .map(|p| Band {
            t: p.start_s..p.end_s,
            colour: colours.colour(&p.label),
            label: &p.label,
        })
        .collect()
}

/// Draws the machine's panels onto `root`, stacked over one time axis.
pub(crate) fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[TelemetrySeries],
    colours: &SeriesColours,
) -> DrawResult<DB> {
    let (area, legend_area) = frame::layout(root, TITLE)?;
    let panels = panels(series);
    let bands = bands(series, colours);
    let t_hi = panels
        .iter()
        .flat_map(|p| &p.lines)
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0_f64, f64::max);
    let t = 0.0..t_hi;

    // Equal plot heights: the bottom panel is taller by its time axis.
    let height = area.dim_in_pixel().1;
    let each = height.saturating_sub(X_AXIS_PX) / panels.len() as u32;
    let (mut rest, mut legend_rest) = (area, legend_area);
    let last = panels.len() - 1;
    for (i, panel) in panels.iter().enumerate() {
        let (this, legend) = if i == last {
            (rest.clone(), legend_rest.clone())
        } else {
            let (top, bottom) = rest.split_vertically(each);
            let (legend_top, legend_bottom) = legend_rest.split_vertically(each);
            (rest, legend_rest) = (bottom, legend_bottom);
            (top, legend_top)
        };
        draw_panel(&this, panel, &bands, t.clone(), (i == 0, i == last))?;
        frame::draw_legend(&legend, None, &panel.legend)?;
    }
    Ok(())
}

/// Draws one panel; only the top one names the bands, only the bottom one labels the time
/// axis.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    bands: &[Band<'_>],
    t: Range<f64>,
    (top, bottom): (bool, bool),
) -> DrawResult<DB> {
    let y = panel.y_range.clone().unwrap_or_else(|| {
        frame::from_zero(
            panel
                .lines
                .iter()
                .flat_map(|l| l.points.iter().map(|p| p.1))
                .fold(0.0_f64, f64::max),
        )
    });
    let (t_span, y_span) = (t.end - t.start, y.end - y.start);
    // The same plot area as the latency-over-time plot (its right axis is 60 px), so the two
    // line up.
    let mut chart = ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(12 + 60)
        .margin_top(if bottom { 6 } else { 10 })
        .margin_bottom(if bottom { 12 } else { 2 })
        .x_label_area_size(if bottom { X_AXIS_PX } else { 0 })
        .y_label_area_size(70)
        .build_cartesian_2d(t.clone(), y.clone())?;
    let x_label = |v: &f64| frame::tick_label(*v, t_span);
    let y_label = |v: &f64| frame::tick_label(*v, y_span);
    let mut mesh = chart.configure_mesh();
    mesh.y_desc(panel.y_desc)
        .axis_desc_style((frame::FONT, frame::DESC_PX))
        .label_style((frame::FONT, frame::TICK_PX))
        .y_labels(5)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .max_light_lines(0)
        .bold_line_style(BLACK.mix(0.12));
    if bottom {
        mesh.x_desc("time since the run's start (s)");
    }
    mesh.draw()?;
    for band in bands {
        let from = band.t.start.max(t.start);
        let to = band.t.end.min(t.end);
        if from >= to {
            continue;
        }
        chart.draw_series(std::iter::once(Rectangle::new(
            [(from, y.start), (to, y.end)],
            band.colour.mix(0.10).filled(),
        )))?;
        if top {
            let font = (frame::FONT, frame::LABEL_PX)
                .into_font()
                .color(&band.colour);
            chart.draw_series(std::iter::once(
                EmptyElement::at((from, y.end)) + Text::new(band.label.to_owned(), (4, 3), font),
            ))?;
        }
    }
    // Faint lines first, so the readings that matter are drawn over them.
    let order = [Style::Faint, Style::Dashed, Style::Solid];
    for style in order {
        for l in panel.lines.iter().filter(|l| l.style == style) {
            let points = l.points.iter().copied();
            match style {
                Style::Solid => {
                    chart.draw_series(LineSeries::new(points, l.colour.stroke_width(2)))?;
                }
                Style::Dashed => {
                    chart.draw_series(DashedLineSeries::new(
                        points,
                        6,
                        4,
                        l.colour.mix(frame::DASHED_ALPHA).stroke_width(2),
                    ))?;
                }
                Style::Faint => {
                    chart.draw_series(LineSeries::new(
                        points,
                        palette::faint(l.colour).stroke_width(1),
                    ))?;
                }
            }
        }
    }
    Ok(())
}
