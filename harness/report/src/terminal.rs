//! The terminal table printed at the end of `latlab run` and by `latlab report`.

use crate::model::Report;
use crate::text::{
    COMPARISON_HEADER, LOAD_STAGE_HEADER, VOICE_HEADER, agent_tables, comparison_cells, error_line,
    estimate, load_stage_cells, ms, stage, table, video_tables, voice_cells,
};

/// Renders the summary (and comparison, when present) as plain text.
pub fn render(report: &Report) -> String {
    let multi = report.runs.len() > 1;
    let rows: Vec<Vec<String>> = report
        .summary
        .iter()
        .filter(|r| report.shows_summary_row(r))
        .map(|r| {
            let mut row = Vec::new();
            if multi {
                row.push(r.run.clone());
            }
            row.extend([
                r.profile.clone(),
                stage(&r.stage).to_string(),
                r.count.to_string(),
                r.errors.to_string(),
                estimate(&r.p50),
                estimate(&r.p90),
                estimate(&r.p95),
                estimate(&r.p99),
                ms(r.max),
            ]);
            row
        })
        .collect();
    let mut header = Vec::new();
    if multi {
        header.push("run");
    }
    header.extend([
        "profile",
        "stage",
        "n",
        "errors",
        "p50 ms [95% CI]",
        "p90 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
    ]);
    let mut out = if report.shows_audio_tables() {
        table(&header, &rows, if multi { 3 } else { 2 })
    } else {
        String::new()
    };
    if !report.errors.is_empty() {
        out.push_str("\nerrors by stage (failed spans, one example each)\n");
        for r in &report.errors {
            out.push_str(&format!("  {}\n", error_line(r, multi)));
        }
    }
    if !report.load_stages.is_empty() {
        out.push_str("\nvoice-to-voice by load stage\n");
        let rows: Vec<Vec<String>> = report.load_stages.iter().map(load_stage_cells).collect();
        out.push_str(&table(&LOAD_STAGE_HEADER, &rows, 3));
    }
    if !report.accuracy_by_voice.is_empty() {
        out.push_str("\ntranscript accuracy by voice\n");
        let rows: Vec<Vec<String>> = report.accuracy_by_voice.iter().map(voice_cells).collect();
        out.push_str(&table(&VOICE_HEADER, &rows, 3));
    }
    if let Some(v) = &report.video {
        out.push_str("\nVIDEO\n");
        for t in video_tables(v) {
            out.push_str(&format!("\n{}\n", t.title));
            out.push_str(&table(&t.header, &t.rows, t.left));
        }
    }
    if let Some(a) = &report.agent {
        out.push_str("\nAGENT (at the caller's ear)\n");
        for t in agent_tables(a) {
            out.push_str(&format!("\n{}\n", t.title));
            out.push_str(&table(&t.header, &t.rows, t.left));
        }
    }
    if let Some(t) = &report.tools {
        out.push_str("\nTOOLS AND CACHE\n");
        for t in crate::tools::tool_tables(t) {
            out.push_str(&format!("\n{}\n", t.title));
            out.push_str(&table(&t.header, &t.rows, t.left));
        }
    }
    if let Some(c) = &report.comparison {
        out.push_str(&format!("\nB = {} vs A = {}\n", c.b, c.a));
        let rows: Vec<Vec<String>> = c.rows.iter().map(comparison_cells).collect();
        out.push_str(&table(&COMPARISON_HEADER, &rows, 2));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out
}
