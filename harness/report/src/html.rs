//! The self-contained HTML report: inline CSS and SVG, no script, no request to any other
//! host, every string escaped. Readable offline, shareable as one file.

use crate::model::{Estimate, Report, TurnDetail};
use crate::text::{
    COMPARISON_HEADER, ERROR_HEADER, LOAD_STAGE_HEADER, MEASURER_HEADER, VOICE_HEADER,
    agent_tables, comparison_cells, error_cells, load_stage_cells, measurer_cells, ms, stage,
    throughput_cells, video_tables, voice_cells,
};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A rendered plot to embed: its title and SVG document.
pub struct Figure<'a> {
    /// Caption.
    pub title: &'a str,
    /// The SVG (from latlab-plots, which escapes its own text).
    pub svg: &'a str,
}

const STYLE: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;padding:0 1rem;color:#1d2330}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d8dce4;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.5rem 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8dce4;padding:.25rem .5rem;text-align:right;vertical-align:top}
th{background:#f2f4f8}td.l,th.l{text-align:left}
.partial{background:#fde2e1;border-left:4px solid #c0392b;padding:.5rem .8rem;margin:.5rem 0}
.note{background:#fff6db;border-left:4px solid #e0a800;padding:.4rem .8rem;margin:.5rem 0}
figure{margin:1rem 0}figcaption{color:#555;font-size:.9rem}
figure svg{max-width:100%;height:auto;border:1px solid #eee}
.ci{color:#667;font-size:.85em}
.bar{display:flex;height:14px;min-width:300px;background:#f2f4f8}
.bar span{display:block;height:100%}
"#;

fn td(s: &str) -> String {
    format!("<td>{}</td>", escape(s))
}

fn tdl(s: &str) -> String {
    format!("<td class=\"l\">{}</td>", escape(s))
}

fn th(cells: &[&str]) -> String {
    let mut s = String::from("<tr>");
    for (i, c) in cells.iter().enumerate() {
        s.push_str(&format!(
            "<th{}>{}</th>",
            if i < 2 { " class=\"l\"" } else { "" },
            escape(c)
        ));
    }
    s.push_str("</tr>\n");
    s
}

fn est(e: &Option<Estimate>) -> String {
    match e {
        Some(e) => format!(
            "<td>{:.1}<br><span class=\"ci\">[{:.1}, {:.1}]</span></td>",
            e.value, e.lo, e.hi
        ),
        None => "<td>-</td>".to_string(),
    }
}

const BOUNDARY_COLOURS: [&str; 9] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f",
];

fn timeline(t: &TurnDetail) -> String {
    let total = t
        .boundaries
        .iter()
        .filter_map(|(_, v)| *v)
        .fold(t.voice_to_voice, f64::max)
        .max(1.0);
    let mut bar = String::from("<div class=\"bar\">");
    let mut last = 0.0f64;
    for (i, (name, v)) in t.boundaries.iter().enumerate() {
        if let Some(v) = v {
            let width = ((v - last).max(0.0) / total * 100.0).max(0.0);
            bar.push_str(&format!(
                "<span title=\"{} at {:.0} ms\" style=\"width:{:.2}%;background:{}\"></span>",
                escape(&name.replace('_', " ")),
                v,
                width,
                BOUNDARY_COLOURS[i % BOUNDARY_COLOURS.len()]
            ));
            last = last.max(*v);
        }
    }
    bar.push_str("</div>");
    bar
}

/// Renders the whole report as one HTML document.
pub fn render(report: &Report, figures: &[Figure<'_>]) -> String {
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    // Nothing may load from anywhere: no scripts at all, styles only from this file.
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">");
    h.push_str("<title>latlab report</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body>\n<h1>latlab report</h1>\n");
    for r in &report.runs {
        if let Some(why) = r.status.caveat() {
            h.push_str(&format!(
                "<p class=\"partial\"><strong>Partial results</strong>: run {} was {}.</p>\n",
                escape(&r.run_id),
                escape(why)
            ));
        }
    }

    h.push_str("<h2>Runs</h2><table>");
    h.push_str(&th(&[
        "run", "scenario", "dataset", "seed", "status", "machine", "commit", "started", "duration",
    ]));
    for r in &report.runs {
        h.push_str("<tr>");
        h.push_str(&tdl(&r.run_id));
        h.push_str(&tdl(&r.scenario));
        h.push_str(&tdl(&format!(
            "{} ({}…)",
            r.dataset,
            r.dataset_sha256.get(..12).unwrap_or(&r.dataset_sha256)
        )));
        h.push_str(&td(&r.seed.to_string()));
        h.push_str(&td(r.status.as_str()));
        h.push_str(&td(&format!(
            "{} × {}, {:.1} GiB, {}",
            r.cores,
            r.cpu_model,
            r.memory_bytes as f64 / (1u64 << 30) as f64,
            r.os
        )));
        let commit = r.git_commit.as_deref().map_or("unknown".to_string(), |c| {
            format!(
                "{}{}",
                c.get(..12).unwrap_or(c),
                if r.git_dirty { " (dirty)" } else { "" }
            )
        });
        h.push_str(&td(&commit));
        h.push_str(&td(&r.started_at));
        h.push_str(&td(&r
            .duration_s
            .map_or("-".into(), |d| format!("{d:.1} s"))));
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    for note in &report.notes {
        h.push_str(&format!("<p class=\"note\">{}</p>\n", escape(note)));
    }

    let audio = report.shows_audio_tables();
    if audio {
        h.push_str("<h2>Latency (ms, 95&nbsp;% bootstrap confidence interval)</h2><table>");
        h.push_str(&th(&[
            "profile", "stage", "backend", "run", "n", "errors", "mean", "p50", "p90", "p95",
            "p99", "max",
        ]));
        for r in report
            .summary
            .iter()
            .filter(|r| report.shows_summary_row(r))
        {
            h.push_str("<tr>");
            h.push_str(&tdl(&r.profile));
            h.push_str(&tdl(stage(&r.stage)));
            h.push_str(&td(&r.backend));
            h.push_str(&td(&r.run));
            h.push_str(&td(&r.count.to_string()));
            h.push_str(&td(&format!(
                "{} ({:.1} %)",
                r.errors,
                r.error_rate * 100.0
            )));
            for e in [&r.mean, &r.p50, &r.p90, &r.p95, &r.p99] {
                h.push_str(&est(e));
            }
            h.push_str(&td(&ms(r.max)));
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if !report.errors.is_empty() {
        h.push_str("<h2>Errors by stage</h2><table>");
        h.push_str(&th(&ERROR_HEADER));
        for r in &report.errors {
            h.push_str("<tr>");
            for (i, c) in error_cells(r).iter().enumerate() {
                h.push_str(&if i == 3 { td(c) } else { tdl(c) });
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    if !report.measurer.is_empty() {
        h.push_str("<h2>The measurement itself</h2><p>latlab's own share of each stage (its clients, tasks and loopback, against the emulator's wire trace) and the agent's LLM queueing, which is the system's time and is not in the share.</p><table>");
        h.push_str(&th(&MEASURER_HEADER));
        for r in &report.measurer {
            h.push_str("<tr>");
            for (i, c) in measurer_cells(r).iter().enumerate() {
                h.push_str(&if i >= 4 { td(c) } else { tdl(c) });
            }
            h.push_str(
                "</tr>
",
            );
        }
        h.push_str(
            "</table>
",
        );
    }

    if let Some(c) = &report.comparison {
        h.push_str(&format!(
            "<h2>B = {} vs A = {}</h2><table>",
            escape(&c.b),
            escape(&c.a)
        ));
        h.push_str(&th(&COMPARISON_HEADER));
        for r in &c.rows {
            h.push_str("<tr>");
            for (i, c) in comparison_cells(r).iter().enumerate() {
                h.push_str(&if i < 2 { tdl(c) } else { td(c) });
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    if audio {
        h.push_str("<h2>Throughput and accuracy</h2><table>");
        h.push_str(&th(&[
            "profile",
            "run",
            "turns",
            "turns/s",
            "STT RTF",
            "TTS RTF",
            "LLM tokens/s",
            "WER",
        ]));
        for t in &report.throughput {
            h.push_str("<tr>");
            h.push_str(&tdl(&t.profile));
            h.push_str(&tdl(&t.run));
            for c in throughput_cells(report, t) {
                h.push_str(&td(&c));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if !report.accuracy_by_voice.is_empty() {
        h.push_str("<h2>Transcript accuracy by voice</h2><table>");
        h.push_str(&th(&VOICE_HEADER));
        for a in &report.accuracy_by_voice {
            h.push_str("<tr>");
            for (i, c) in voice_cells(a).iter().enumerate() {
                h.push_str(&if i < 3 { tdl(c) } else { td(c) });
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }
    if !report.load_stages.is_empty() {
        h.push_str("<h2>Voice-to-voice by load stage (ms, 95&nbsp;% bootstrap confidence interval)</h2><table>");
        h.push_str(&th(&LOAD_STAGE_HEADER));
        for r in &report.load_stages {
            h.push_str("<tr>");
            for (i, c) in load_stage_cells(r).iter().enumerate() {
                h.push_str(&if i < 2 { tdl(c) } else { td(c) });
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</table>\n");
    }

    if let Some(v) = &report.video {
        h.push_str("<h2 id=\"video\">Video</h2>\n<p>Every frame's latency counts from its scheduled capture time; a skipped or failed frame is a deadline miss. Definitions: docs/metrics.md, Vision.</p>\n");
        for t in video_tables(v) {
            h.push_str(&format!("<h3>{}</h3><table>", escape(t.title)));
            h.push_str(&th(&t.header));
            for r in &t.rows {
                h.push_str("<tr>");
                for (i, c) in r.iter().enumerate() {
                    h.push_str(&if i < t.left { tdl(c) } else { td(c) });
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        }
    }

    if let Some(a) = &report.agent {
        h.push_str("<h2 id=\"agent\">Agent</h2>\n<p>What a caller heard from the agent, measured at the caller's ear; the agent is opaque from outside, so the latency table shows only its voice-to-voice. Definitions: docs/metrics.md, At the caller's ear.</p>\n");
        for t in agent_tables(a) {
            h.push_str(&format!("<h3>{}</h3><table>", escape(t.title)));
            h.push_str(&th(&t.header));
            for r in &t.rows {
                h.push_str("<tr>");
                for (i, c) in r.iter().enumerate() {
                    h.push_str(&if i < t.left { tdl(c) } else { td(c) });
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        }
    }

    if let Some(t) = &report.tools {
        h.push_str("<h2 id=\"tools\">Tools and cache</h2>\n<p>Tool calls (function calling) and the cache in front of the tool's API; the tool's latency is also the tool row of the latency table. Definitions: docs/analysis.md, Tools and cache.</p>\n");
        for t in crate::tools::tool_tables(t) {
            h.push_str(&format!("<h3>{}</h3><table>", escape(t.title)));
            h.push_str(&th(&t.header));
            for r in &t.rows {
                h.push_str("<tr>");
                for (i, c) in r.iter().enumerate() {
                    h.push_str(&if i < t.left { tdl(c) } else { td(c) });
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</table>\n");
        }
    }

    if !figures.is_empty() {
        h.push_str("<h2>Plots</h2>\n");
        for f in figures {
            h.push_str(&format!(
                "<figure>{}<figcaption>{}</figcaption></figure>\n",
                strip_xml_prolog(f.svg),
                escape(f.title)
            ));
        }
    }

    h.push_str(&format!(
        "<h2>The {} slowest turns</h2><table>",
        report.slowest_turns.len()
    ));
    h.push_str(&th(&[
        "call",
        "profile",
        "turn",
        "voice-to-voice ms",
        "timeline (ms after end of user speech)",
        "said / replied / error",
    ]));
    for t in &report.slowest_turns {
        h.push_str("<tr>");
        h.push_str(&tdl(&format!("{}#{}", t.call, t.iteration)));
        h.push_str(&tdl(&t.profile));
        h.push_str(&td(&t.turn.to_string()));
        h.push_str(&td(&format!("{:.1}", t.voice_to_voice)));
        let detail: Vec<String> = t
            .boundaries
            .iter()
            .map(|(n, v)| {
                format!(
                    "{}: {}",
                    n.replace('_', " "),
                    v.map_or("-".into(), |v| format!("{v:.0}"))
                )
            })
            .collect();
        h.push_str(&format!(
            "<td class=\"l\">{}<br><span class=\"ci\">{}</span></td>",
            timeline(t),
            escape(&detail.join(" · "))
        ));
        let mut said = String::new();
        for (k, v) in [
            ("user", &t.transcript),
            ("agent", &t.reply),
            ("error", &t.error),
        ] {
            if let Some(v) = v {
                said.push_str(&format!("<b>{k}:</b> {}<br>", escape(v)));
            }
        }
        h.push_str(&format!("<td class=\"l\">{said}</td>"));
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    h.push_str(&format!(
        "<p class=\"ci\">{} · schema {}</p>\n",
        escape(&report.generated_by),
        report.schema_version
    ));
    h.push_str("</body></html>\n");
    h
}

/// Drops an `<?xml …?>` prolog so an SVG document can sit inside HTML.
fn strip_xml_prolog(svg: &str) -> &str {
    let s = svg.trim_start();
    match s.strip_prefix("<?xml") {
        Some(rest) => rest.find("?>").map_or(s, |i| rest[i + 2..].trim_start()),
        None => s,
    }
}
