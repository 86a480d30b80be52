//! Number formatting shared by the renderers.

use crate::model::{
    AccuracyRow, AgentSection, ComparisonRow, ErrorRow, Estimate, FrameRow, MeasurerRow,
    Proportion, Report, StepStats, ThroughputRow, VideoSection,
};

/// `123.4` or `-` when absent.
pub fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"))
}

/// `123.4 [120.0, 130.2]` or `-`.
pub fn estimate(e: &Option<Estimate>) -> String {
    e.as_ref().map_or_else(
        || "-".to_string(),
        |e| format!("{:.1} [{:.1}, {:.1}]", e.value, e.lo, e.hi),
    )
}

/// `+12.3 % [+1.0, +20.5]` for a relative estimate.
pub fn percent(e: &Estimate) -> String {
    if !e.value.is_finite() {
        return "-".to_string();
    }
    format!(
        "{:+.1} % [{:+.1}, {:+.1}]",
        e.value * 100.0,
        e.lo * 100.0,
        e.hi * 100.0
    )
}

/// `+12.3 [+1.0, +20.5]` for a signed difference.
pub fn signed(e: &Estimate) -> String {
    format!("{:+.1} [{:+.1}, {:+.1}]", e.value, e.lo, e.hi)
}

/// The stage as people say it.
pub fn stage(s: &str) -> &str {
    if s == "turn" { "voice-to-voice" } else { s }
}

/// A fixed-width text table: left-aligned first `left` columns, right-aligned others.
pub fn table(header: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < left {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// The cells after run and profile of a throughput row: turns, turns/s, STT RTF, TTS RTF,
/// LLM tokens/s and WER.
pub fn throughput_cells(report: &Report, t: &ThroughputRow) -> Vec<String> {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    let wer = report
        .accuracy
        .iter()
        .find(|a| a.run == t.run && a.profile == t.profile)
        .map_or_else(
            || "-".to_string(),
            |a| format!("{:.1} % of {} words", a.wer * 100.0, a.words),
        );
    vec![
        t.turns.to_string(),
        format!("{:.3}", t.turns_per_s),
        opt(t.stt_rtf),
        opt(t.tts_rtf),
        opt(t.llm_tokens_per_s),
        wer,
    ]
}

/// The column names of the accuracy-by-voice table.
pub const VOICE_HEADER: [&str; 6] = ["run", "profile", "voice", "turns", "words", "WER"];

/// The cells of an accuracy-by-voice row.
pub fn voice_cells(a: &AccuracyRow) -> Vec<String> {
    vec![
        a.run.clone(),
        a.profile.clone(),
        a.voice.clone().unwrap_or_default(),
        a.turns.to_string(),
        a.words.to_string(),
        format!("{:.1} %", a.wer * 100.0),
    ]
}

/// The column names of a comparison table (intervals are 95 % bootstrap).
pub const COMPARISON_HEADER: [&str; 8] = [
    "stage",
    "statistic",
    "n A",
    "n B",
    "A ms",
    "B ms",
    "B − A ms",
    "relative",
];

/// The cells of a comparison row: stage, statistic, n A, n B, A, B, B − A, relative. A rate
/// (`deadline_miss_rate`) is in percent and says so.
pub fn comparison_cells(r: &ComparisonRow) -> Vec<String> {
    let unit = if r.statistic.ends_with("_rate") {
        " %"
    } else {
        ""
    };
    let e = |e: &Estimate| format!("{:.1} [{:.1}, {:.1}]{unit}", e.value, e.lo, e.hi);
    vec![
        stage(&r.stage).to_string(),
        r.statistic.clone(),
        r.count_a.to_string(),
        r.count_b.to_string(),
        e(&r.a),
        e(&r.b),
        format!("{}{unit}", signed(&r.diff)),
        percent(&r.relative),
    ]
}

/// One table of a section (Video, Agent), ready for any renderer (cells are plain text:
/// escape them).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoTable {
    /// Its heading.
    pub title: &'static str,
    /// Column names.
    pub header: Vec<&'static str>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
    /// How many leading columns are text (left-aligned).
    pub left: usize,
}

/// `0.875` or `n/a`.
fn fraction(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

/// `all` for a profile's row, the stream's index for a stream's.
fn stream_cell(r: &FrameRow) -> String {
    r.stream
        .map_or_else(|| "all".to_string(), |s| s.to_string())
}

/// n, p50 [lo, hi] and p95 [lo, hi] of a step.
fn step_cells(s: &StepStats) -> [String; 3] {
    [s.count.to_string(), estimate(&s.p50), estimate(&s.p95)]
}

/// A reference's first sentence, at most 120 characters (the whole text is in the manifest
/// and `summary.json`).
fn first_sentence(text: &str) -> String {
    let first = text.split(". ").next().unwrap_or(text);
    let mut out: String = first.chars().take(120).collect();
    if out.len() < text.len() {
        out.push_str(" …");
    }
    out
}

/// The Video section as tables, in report order: what was replayed; frames and latency;
/// steps; deadline misses and FPS; errors; accuracy; the latency–accuracy trade-off. Every
/// figure's sample count is in its row.
pub fn video_tables(v: &VideoSection) -> Vec<VideoTable> {
    let mut out = Vec::new();
    if !v.runs.is_empty() {
        out.push(VideoTable {
            title: "Video replayed",
            header: vec![
                "run",
                "dataset",
                "video",
                "frame size",
                "fps",
                "streams × frames",
                "decoded by (off the clock)",
                "reference",
            ],
            rows: v
                .runs
                .iter()
                .map(|r| {
                    vec![
                        r.run.clone(),
                        r.dataset.clone(),
                        r.video.clone(),
                        format!("{}×{}", r.width, r.height),
                        format!("{:.2}", r.fps),
                        format!("{} × {}", r.streams, r.frames_per_stream),
                        format!("{} ({:.0} frames/s)", r.decoder, r.decode_fps),
                        r.reference
                            .as_deref()
                            .map_or_else(|| "-".into(), first_sentence),
                    ]
                })
                .collect(),
            left: 3,
        });
    }
    out.push(VideoTable {
        title: "Frames and frame latency (capture → result, ms, 95 % bootstrap CI)",
        header: vec![
            "run",
            "profile",
            "stream",
            "backend",
            "policy",
            "captured",
            "processed",
            "skipped",
            "errors",
            "n",
            "p50",
            "p90",
            "p95",
            "p99",
            "max",
        ],
        rows: v
            .frames
            .iter()
            .map(|r| {
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    stream_cell(r),
                    r.backend.clone(),
                    r.policy.clone().unwrap_or_else(|| "-".into()),
                    r.captured.to_string(),
                    r.processed.to_string(),
                    r.skipped.to_string(),
                    r.errors.to_string(),
                    r.latency.count.to_string(),
                    estimate(&r.latency.p50),
                    estimate(&r.latency.p90),
                    estimate(&r.latency.p95),
                    estimate(&r.latency.p99),
                    ms(r.latency.max),
                ]
            })
            .collect(),
        left: 5,
    });
    let mut steps = Vec::new();
    for r in &v.frames {
        for (name, s) in [
            ("queue wait", &r.queue_wait),
            ("preprocess", &r.preprocess),
            ("inference", &r.inference),
            ("postprocess", &r.postprocess),
        ] {
            let mut row = vec![
                r.run.clone(),
                r.profile.clone(),
                stream_cell(r),
                name.into(),
            ];
            row.extend(step_cells(s));
            steps.push(row);
        }
    }
    out.push(VideoTable {
        title: "Where a frame's time goes (processed frames, ms, 95 % bootstrap CI)",
        header: vec!["run", "profile", "stream", "step", "n", "p50", "p95"],
        rows: steps,
        left: 4,
    });
    out.push(VideoTable {
        title: "Deadline misses (95 % Clopper–Pearson CI) and achieved FPS per 1 s window",
        header: vec![
            "run",
            "profile",
            "stream",
            "frames",
            "missed",
            "miss rate",
            "windows",
            "FPS mean",
            "FPS p10",
            "FPS min",
        ],
        rows: v
            .frames
            .iter()
            .map(|r| {
                let d = &r.deadline_miss;
                let fps = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    stream_cell(r),
                    d.n.to_string(),
                    d.k.to_string(),
                    d.rate.map_or_else(
                        || "-".to_string(),
                        |e| {
                            format!(
                                "{:.1} % [{:.1}, {:.1}]",
                                e.value * 100.0,
                                e.lo * 100.0,
                                e.hi * 100.0
                            )
                        },
                    ),
                    r.fps.windows.to_string(),
                    fps(r.fps.mean),
                    fps(r.fps.p10),
                    fps(r.fps.min),
                ]
            })
            .collect(),
        left: 3,
    });
    if !v.errors.is_empty() {
        out.push(VideoTable {
            title: "Failed frames by error kind",
            header: vec!["run", "profile", "error kind", "frames", "example"],
            rows: v
                .errors
                .iter()
                .map(|e| {
                    vec![
                        e.run.clone(),
                        e.profile.clone(),
                        e.kind.clone(),
                        e.count.to_string(),
                        one_line(&e.example, EXAMPLE_CHARS),
                    ]
                })
                .collect(),
            left: 3,
        });
    }
    out.push(VideoTable {
        title: "Detection accuracy per class (IoU ≥ 0.5; n/a without reference annotations)",
        header: vec![
            "run",
            "profile",
            "class",
            "frames",
            "tp",
            "fp",
            "fn",
            "precision",
            "recall",
        ],
        rows: v
            .accuracy
            .iter()
            .map(|a| match &a.class {
                Some(class) => vec![
                    a.run.clone(),
                    a.profile.clone(),
                    class.clone(),
                    a.frames.to_string(),
                    a.tp.to_string(),
                    a.fp.to_string(),
                    a.fn_.to_string(),
                    format!("{} of {}", fraction(a.precision), a.tp + a.fp),
                    format!("{} of {}", fraction(a.recall), a.tp + a.fn_),
                ],
                None => vec![
                    a.run.clone(),
                    a.profile.clone(),
                    "n/a (no reference)".into(),
                    "0".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "n/a".into(),
                    "n/a".into(),
                ],
            })
            .collect(),
        left: 3,
    });
    out.push(VideoTable {
        title: "Latency against accuracy (Pareto: no other profile has p95 as low and person recall as high, and one better)",
        header: vec![
            "run",
            "profile",
            "n",
            "p95 ms",
            "person boxes",
            "person recall",
            "Pareto",
        ],
        rows: v
            .tradeoff
            .iter()
            .map(|t| {
                vec![
                    t.run.clone(),
                    t.profile.clone(),
                    t.count.to_string(),
                    estimate(&t.p95),
                    t.person_boxes.to_string(),
                    fraction(t.person_recall),
                    if t.pareto { "yes" } else { "-" }.to_string(),
                ]
            })
            .collect(),
        left: 2,
    });
    out
}

/// `4 of 40: 10.0 % [2.8, 23.7]` (the interval as the proportion carries it), or `0 of 0`.
pub fn rate(p: &Proportion) -> String {
    match &p.rate {
        Some(e) => format!(
            "{} of {}: {:.1} % [{:.1}, {:.1}]",
            p.k,
            p.n,
            e.value * 100.0,
            e.lo * 100.0,
            e.hi * 100.0
        ),
        None => format!("{} of {}", p.k, p.n),
    }
}

/// The Agent section as tables, in report order: what was called; the reply at the caller's
/// ear; playback gaps; interruptions; turn-taking errors; the agent's own view against the
/// caller's, then its turns. Every figure's sample count is in its row.
pub fn agent_tables(a: &AgentSection) -> Vec<VideoTable> {
    let mut out = Vec::new();
    let opt =
        |v: Option<u64>, unit: &str| v.map_or_else(|| "-".to_string(), |v| format!("{v} {unit}"));
    out.push(VideoTable {
        title: "Agent called",
        header: vec![
            "run",
            "agent",
            "protocol",
            "url",
            "sample rate",
            "answer timeout",
            "barge in after",
            "self-report",
        ],
        rows: a
            .runs
            .iter()
            .map(|r| match &r.agent {
                Some(f) => vec![
                    r.run.clone(),
                    f.name.clone(),
                    f.protocol.clone(),
                    f.url.clone(),
                    format!("{} Hz", f.sample_rate),
                    format!("{} ms", f.answer_timeout_ms),
                    opt(f.barge_in_after_ms, "ms"),
                    f.self_report.as_ref().map_or_else(
                        || "-".to_string(),
                        |s| {
                            format!(
                                "{} from {}: {} lines, {} turns aligned, {} calls left unaligned",
                                s.reporter, s.source, s.lines, s.aligned_turns, s.unaligned_calls
                            )
                        },
                    ),
                ],
                None => {
                    let mut row = vec![r.run.clone(), "(not in the manifest)".into()];
                    row.extend(std::iter::repeat_n("-".to_string(), 6));
                    row
                }
            })
            .collect(),
        left: 4,
    });
    out.push(VideoTable {
        title: "The reply at the caller's ear (ms, 95 % bootstrap CI)",
        header: vec![
            "run",
            "profile",
            "agent",
            "turns",
            "replies",
            "leading silence n",
            "p50",
            "p90",
            "p95",
            "reply length n",
            "p50",
            "p95",
        ],
        rows: a
            .profiles
            .iter()
            .map(|r| {
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    r.agent.clone(),
                    r.turns.to_string(),
                    r.replies.to_string(),
                    r.lead.count.to_string(),
                    estimate(&r.lead.p50),
                    estimate(&r.lead.p90),
                    estimate(&r.lead.p95),
                    r.reply.count.to_string(),
                    estimate(&r.reply.p50),
                    estimate(&r.reply.p95),
                ]
            })
            .collect(),
        left: 3,
    });
    out.push(VideoTable {
        title: "Playback gaps (the caller's playout ran dry ≥ 100 ms; replies with a gap, 95 % Clopper–Pearson CI)",
        header: vec!["run", "profile", "replies with a gap", "gaps", "gap ms in all"],
        rows: a
            .profiles
            .iter()
            .map(|r| {
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    rate(&r.gapped),
                    r.gaps.to_string(),
                    format!("{:.1}", r.gap_ms),
                ]
            })
            .collect(),
        left: 2,
    });
    out.push(VideoTable {
        title: "Interruptions (caller's first sample → the agent's audio stopped at the ear, ms, 95 % bootstrap CI)",
        header: vec![
            "run",
            "profile",
            "interrupted turns",
            "n",
            "p50",
            "p90",
            "p95",
            "by clear",
            "by silence",
            "ignored",
        ],
        rows: a
            .profiles
            .iter()
            .map(|r| {
                let by = |way: &str| {
                    r.interruption_by
                        .iter()
                        .find(|(w, _)| w == way)
                        .map_or(0, |(_, k)| *k)
                        .to_string()
                };
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    r.interruptions.to_string(),
                    r.interruption.count.to_string(),
                    estimate(&r.interruption.p50),
                    estimate(&r.interruption.p90),
                    estimate(&r.interruption.p95),
                    by("clear"),
                    by("silence"),
                    by("ignored"),
                ]
            })
            .collect(),
        left: 2,
    });
    out.push(VideoTable {
        title: "Turn-taking errors (over turns, 95 % Clopper–Pearson CI)",
        header: vec![
            "run",
            "profile",
            "false cutoffs",
            "talk-over turns",
            "talk-over ms in all",
            "dead air",
        ],
        rows: a
            .profiles
            .iter()
            .map(|r| {
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    rate(&r.false_cutoff),
                    rate(&r.talk_over),
                    format!("{:.1}", r.talk_over_ms),
                    rate(&r.dead_air),
                ]
            })
            .collect(),
        left: 2,
    });
    out.push(VideoTable {
        title: "The agent's own view against the caller's (unseen = voice-to-voice − the agent's own figure: time no internal metric sees; ms, 95 % bootstrap CI)",
        header: vec!["run", "profile", "turns with its figure", "unseen p50", "unseen p90"],
        rows: a
            .profiles
            .iter()
            .map(|r| {
                vec![
                    r.run.clone(),
                    r.profile.clone(),
                    r.unseen.count.to_string(),
                    estimate(&r.unseen.p50),
                    estimate(&r.unseen.p90),
                ]
            })
            .collect(),
        left: 2,
    });
    if !a.self_report.is_empty() {
        out.push(VideoTable {
            title: "Turn by turn: the caller's voice-to-voice and the agent's own figure (ms)",
            header: vec![
                "run",
                "profile",
                "call",
                "iteration",
                "turn",
                "caller v2v",
                "agent's own",
                "unseen",
            ],
            rows: a
                .self_report
                .iter()
                .map(|t| {
                    vec![
                        t.run.clone(),
                        t.profile.clone(),
                        t.call.clone(),
                        t.iteration.to_string(),
                        t.turn.to_string(),
                        format!("{:.1}", t.voice_to_voice_ms),
                        format!("{:.1}", t.agent_ms),
                        format!("{:.1}", t.unseen_ms),
                    ]
                })
                .collect(),
            left: 3,
        });
    }
    out
}

/// Columns of the voice-to-voice-by-load-stage table.
pub const LOAD_STAGE_HEADER: [&str; 9] = [
    "profile",
    "load stage",
    "level",
    "n",
    "failed",
    "p50 ms [95% CI]",
    "p95 ms",
    "p99 ms",
    "max ms",
];

/// One row of the voice-to-voice-by-load-stage table.
pub fn load_stage_cells(r: &crate::model::LoadStageRow) -> Vec<String> {
    let v = &r.voice_to_voice;
    vec![
        v.profile.clone(),
        r.load_stage.clone(),
        format!("{} {}", r.target, r.unit),
        v.count.to_string(),
        v.errors.to_string(),
        estimate(&v.p50),
        estimate(&v.p95),
        estimate(&v.p99),
        ms(v.max),
    ]
}

/// Columns of the errors-by-stage table.
pub const ERROR_HEADER: [&str; 5] = ["run", "stage", "error kind", "spans", "example"];

/// Columns of the measurer table.
pub const MEASURER_HEADER: [&str; 8] = [
    "run", "figure", "stage", "measured", "n", "p50 ms", "p99 ms", "max ms",
];

/// One row of the measurer table.
pub fn measurer_cells(r: &MeasurerRow) -> Vec<String> {
    vec![
        r.run.clone(),
        r.figure.clone(),
        r.stage.clone(),
        r.measured.clone(),
        r.n.to_string(),
        format!("{:.3}", r.p50_ms),
        format!("{:.3}", r.p99_ms),
        format!("{:.3}", r.max_ms),
    ]
}

/// One row of the errors-by-stage table (the example as one line).
pub fn error_cells(r: &ErrorRow) -> Vec<String> {
    vec![
        r.run.clone(),
        r.stage.clone(),
        r.kind.clone(),
        r.count.to_string(),
        one_line(&r.example, usize::MAX),
    ]
}

/// An error row as one terminal line: `llm: connect × 29, e.g. "…"` (the run first when the
/// report covers several).
pub fn error_line(r: &ErrorRow, with_run: bool) -> String {
    let run = if with_run {
        format!("{} · ", r.run)
    } else {
        String::new()
    };
    let example = one_line(&r.example, EXAMPLE_CHARS);
    if example.is_empty() {
        format!("{run}{}: {} × {}", r.stage, r.kind, r.count)
    } else {
        format!(
            "{run}{}: {} × {}, e.g. \"{example}\"",
            r.stage, r.kind, r.count
        )
    }
}

/// The most characters of an example message a terminal line shows.
const EXAMPLE_CHARS: usize = 240;

/// `s` with its whitespace runs (line breaks included) as single spaces, cut to `max`
/// characters with an ellipsis.
fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
