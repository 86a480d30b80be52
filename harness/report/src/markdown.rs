//! `summary.md`: the report as Markdown, for a GitHub step summary, a PR comment or a wiki.

use crate::model::Report;
use crate::text::{
    COMPARISON_HEADER, ERROR_HEADER, LOAD_STAGE_HEADER, MEASURER_HEADER, VOICE_HEADER,
    agent_tables, comparison_cells, error_cells, estimate, load_stage_cells, measurer_cells, ms,
    stage, throughput_cells, video_tables, voice_cells,
};

/// Escapes text for a Markdown table cell (and keeps HTML inert).
pub fn cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace('\n', " ")
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

fn header(cells: &[&str]) -> String {
    format!(
        "| {} |\n|{}\n",
        cells.join(" | "),
        " --- |".repeat(cells.len())
    )
}

/// Renders the report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::from("# latlab report\n\n");
    for r in &report.runs {
        if let Some(why) = r.status.caveat() {
            out.push_str(&format!(
                "> **Partial results**: run {} was {}.\n\n",
                cell(&r.run_id),
                why
            ));
        }
    }
    for r in &report.runs {
        out.push_str(&format!(
            "- **{}**: scenario `{}`, dataset `{}` (sha256 {}…), seed {}, {} on {} × {} ({}), commit {}{}, started {}\n",
            cell(&r.run_id),
            cell(&r.scenario),
            cell(&r.dataset),
            cell(r.dataset_sha256.get(..12).unwrap_or(&r.dataset_sha256)),
            r.seed,
            cell(r.status.as_str()),
            r.cores,
            cell(&r.cpu_model),
            cell(&r.os),
            cell(r.git_commit.as_deref().map_or("unknown", |c| c.get(..12).unwrap_or(c))),
            if r.git_dirty { " (dirty)" } else { "" },
            cell(&r.started_at),
        ));
    }
    for note in &report.notes {
        out.push_str(&format!("\n> **Note:** {}\n", cell(note)));
    }
    let audio = report.shows_audio_tables();
    if audio {
        out.push_str("\n## Latency (ms, 95 % bootstrap CI)\n\n");
        out.push_str(&header(&[
            "run", "profile", "stage", "backend", "n", "errors", "mean", "p50", "p90", "p95",
            "p99", "max",
        ]));
        for r in report
            .summary
            .iter()
            .filter(|r| report.shows_summary_row(r))
        {
            out.push_str(&row(&[
                cell(&r.run),
                cell(&r.profile),
                stage(&r.stage).to_string(),
                cell(&r.backend),
                r.count.to_string(),
                format!("{} ({:.1} %)", r.errors, r.error_rate * 100.0),
                estimate(&r.mean),
                estimate(&r.p50),
                estimate(&r.p90),
                estimate(&r.p95),
                estimate(&r.p99),
                ms(r.max),
            ]));
        }
    }
    if !report.errors.is_empty() {
        out.push_str("\n## Errors by stage\n\n");
        out.push_str(&header(&ERROR_HEADER));
        for r in &report.errors {
            let cells: Vec<String> = error_cells(r).iter().map(|c| cell(c)).collect();
            out.push_str(&row(&cells));
        }
    }
    if !report.measurer.is_empty() {
        out.push_str("\n## The measurement itself\n\n");
        out.push_str(&header(&MEASURER_HEADER));
        for r in &report.measurer {
            let cells: Vec<String> = measurer_cells(r).iter().map(|c| cell(c)).collect();
            out.push_str(&row(&cells));
        }
    }
    if audio {
        out.push_str("\n## Throughput and accuracy\n\n");
        out.push_str(&header(&[
            "run",
            "profile",
            "turns",
            "turns/s",
            "STT RTF",
            "TTS RTF",
            "LLM tokens/s",
            "WER",
        ]));
        for t in &report.throughput {
            let mut cells = vec![cell(&t.run), cell(&t.profile)];
            cells.extend(throughput_cells(report, t));
            out.push_str(&row(&cells));
        }
    }
    if !report.accuracy_by_voice.is_empty() {
        out.push_str("\n## Transcript accuracy by voice\n\n");
        out.push_str(&header(&VOICE_HEADER));
        for a in &report.accuracy_by_voice {
            let cells: Vec<String> = voice_cells(a).iter().map(|c| cell(c)).collect();
            out.push_str(&row(&cells));
        }
    }
    if !report.load_stages.is_empty() {
        out.push_str("\n## Voice-to-voice by load stage\n\n");
        out.push_str(&header(&LOAD_STAGE_HEADER));
        for r in &report.load_stages {
            let cells: Vec<String> = load_stage_cells(r).iter().map(|c| cell(c)).collect();
            out.push_str(&row(&cells));
        }
    }
    if let Some(v) = &report.video {
        out.push_str("\n## Video\n");
        for t in video_tables(v) {
            out.push_str(&format!("\n### {}\n\n", cell(t.title)));
            out.push_str(&header(&t.header));
            for r in &t.rows {
                let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
                out.push_str(&row(&cells));
            }
        }
    }
    if let Some(a) = &report.agent {
        out.push_str("\n## Agent\n\nWhat a caller heard from the agent, at the caller's ear (docs/metrics.md, \"At the caller's ear\"); the agent is opaque, so only voice-to-voice is in the latency table.\n");
        for t in agent_tables(a) {
            out.push_str(&format!("\n### {}\n\n", cell(t.title)));
            out.push_str(&header(&t.header));
            for r in &t.rows {
                let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
                out.push_str(&row(&cells));
            }
        }
    }
    if let Some(t) = &report.tools {
        out.push_str("\n## Tools and cache\n\nTool calls (function calling) and the cache in front of the tool's API; the tool's latency is also the `tool` row of the latency table (docs/analysis.md, \"Tools and cache\").\n");
        for t in crate::tools::tool_tables(t) {
            out.push_str(&format!("\n### {}\n\n", cell(t.title)));
            out.push_str(&header(&t.header));
            for r in &t.rows {
                let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
                out.push_str(&row(&cells));
            }
        }
    }
    if let Some(c) = &report.comparison {
        out.push_str(&format!(
            "\n## B = {} vs A = {}\n\n",
            cell(&c.b),
            cell(&c.a)
        ));
        out.push_str(&header(&COMPARISON_HEADER));
        for r in &c.rows {
            out.push_str(&row(&comparison_cells(r)));
        }
    }
    out
}
