//! The renderers on a small hand-built report: every output shows the same numbers, and
//! dataset strings can never become markup.

use latlab_report::html::{Figure, escape, render};
use latlab_report::model::*;

fn estimate(v: f64) -> Option<Estimate> {
    Some(Estimate {
        value: v,
        lo: v - 10.0,
        hi: v + 12.5,
    })
}

fn report() -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        generated_by: "latlab test".into(),
        runs: vec![RunFacts {
            run_id: "smoke-1".into(),
            scenario: "smoke".into(),
            dataset: "smoke".into(),
            dataset_sha256: "ab".repeat(32),
            seed: 42,
            git_commit: Some("0123456789abcdef".into()),
            git_dirty: false,
            cpu_model: "Test CPU".into(),
            cores: 2,
            memory_bytes: 24 << 30,
            os: "Debian 12".into(),
            started_at: "2026-11-23T19:00:00Z".into(),
            status: latlab_results::manifest::RunStatus::Complete,
            duration_s: Some(45.0),
            latlab_version: "0.1.0".into(),
            speed: 1.0,
            concurrency: 10,
        }],
        summary: vec![SummaryRow {
            run: "smoke-1".into(),
            scenario: "smoke".into(),
            profile: "balanced".into(),
            backend: "pipeline".into(),
            stage: "turn".into(),
            count: 29,
            errors: 1,
            skipped: 0,
            error_rate: 1.0 / 30.0,
            mean: estimate(1100.0),
            p50: estimate(1120.6),
            p90: estimate(1355.9),
            p95: estimate(1430.4),
            p99: estimate(1495.9),
            max: Some(1495.9),
        }],
        measurer: vec![
            MeasurerRow {
                run: "smoke-1".into(),
                figure: "latlab's own share".into(),
                stage: "tts".into(),
                measured: "first audible sample: the <emulator>'s mark to latlab's".into(),
                n: 30,
                p50_ms: 0.49,
                p99_ms: 2.6,
                max_ms: 3.1,
            },
            MeasurerRow {
                run: "smoke-1".into(),
                figure: "agent queueing (not latlab's)".into(),
                stage: "llm".into(),
                measured: "LLM requests that waited behind the call's previous one (5 of 30)"
                    .into(),
                n: 5,
                p50_ms: 198.0,
                p99_ms: 678.25,
                max_ms: 700.0,
            },
        ],
        errors: vec![ErrorRow {
            run: "smoke-1".into(),
            stage: "llm".into(),
            kind: "connect".into(),
            count: 7,
            example: "refused <b>127.0.0.1:9</b> | \"now\"\nthen".into(),
        }],
        throughput: vec![],
        load_stages: vec![],
        accuracy: vec![],
        accuracy_by_voice: vec![],
        plots: PlotData::default(),
        slowest_turns: vec![TurnDetail {
            run: "smoke-1".into(),
            profile: "balanced".into(),
            call: "call-01".into(),
            iteration: 0,
            turn: 1,
            voice_to_voice: 1495.9,
            boundaries: vec![
                ("speech_end_detected".into(), Some(500.0)),
                ("tts_first_audible".into(), Some(1495.9)),
            ],
            transcript: Some("<script>alert(1)</script> & \"quotes\"".into()),
            reply: Some("<img src=x onerror=alert(2)>".into()),
            error: None,
        }],
        comparison: None,
        notes: vec!["<b>note</b>".into()],
        video: None,
        agent: None,
        tools: None,
    }
}

#[test]
fn a_script_in_a_transcript_is_shown_as_text() {
    let html = render(&report(), &[]);
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"),
        "{html}"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("<img"));
    assert!(html.contains("&lt;b&gt;note&lt;/b&gt;"));
    assert!(html.contains("default-src 'none'"));
}

#[test]
fn the_html_is_self_contained_and_carries_the_figures() {
    let svg =
        "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"><text>p95</text></svg>";
    let html = render(
        &report(),
        &[Figure {
            title: "CDF <1>",
            svg,
        }],
    );
    assert!(html.contains("<figure><svg xmlns"));
    assert!(!html.contains("<?xml"));
    assert!(html.contains("CDF &lt;1&gt;"));
    for external in ["http://", "https://", "src=\"//"] {
        let outside_svg_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !outside_svg_namespace.contains(external),
            "external reference {external}"
        );
    }
    // The run's facts and the numbers with their intervals.
    for needle in [
        "smoke-1",
        "Test CPU",
        "0123456789ab",
        "seed",
        "1430.4",
        "[1420.4, 1442.9]",
        "voice-to-voice",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
}

#[test]
fn markdown_terminal_and_json_agree_with_the_model() {
    let r = report();
    let md = latlab_report::markdown::render(&r);
    assert!(
        md.contains("| smoke-1 | balanced | voice-to-voice | pipeline | 29 | 1 (3.3 %) |"),
        "{md}"
    );
    assert!(md.contains("1430.4 [1420.4, 1442.9]"));
    assert!(md.contains("&lt;b&gt;note&lt;/b&gt;"));
    let text = latlab_report::terminal::render(&r);
    assert!(
        text.contains("voice-to-voice") && text.contains("1430.4 [1420.4, 1442.9]"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&latlab_report::json(&r)).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["summary"][0]["p95"]["value"], 1430.4);
    let back: Report = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn escape_covers_every_special_character() {
    assert_eq!(
        escape("<a href='x'>\"&\"</a>"),
        "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
    );
}

#[test]
fn every_output_says_why_spans_failed() {
    let r = report();
    let text = latlab_report::terminal::render(&r);
    assert!(
        text.contains("errors by stage")
            && text
                .contains("llm: connect × 7, e.g. \"refused <b>127.0.0.1:9</b> | \"now\" then\""),
        "{text}"
    );
    let md = latlab_report::markdown::render(&r);
    assert!(
        md.contains("## Errors by stage")
            && md.contains(
                "| smoke-1 | llm | connect | 7 | refused &lt;b&gt;127.0.0.1:9&lt;/b&gt; \\| \"now\" then |"
            ),
        "{md}"
    );
    let html = render(&r, &[]);
    assert!(
        html.contains("<h2>Errors by stage</h2>")
            && html.contains("refused &lt;b&gt;127.0.0.1:9&lt;/b&gt; | &quot;now&quot; then"),
        "{html}"
    );
    assert!(!html.contains("<b>127"));
    let json: serde_json::Value = serde_json::from_str(&latlab_report::json(&r)).unwrap();
    assert_eq!(json["errors"][0]["kind"], "connect");
    assert_eq!(json["errors"][0]["count"], 7);
}

#[test]
fn the_markdown_and_html_show_latlabs_share_and_the_agents_queueing_apart() {
    let r = report();
    let md = latlab_report::markdown::render(&r);
    assert!(md.contains("## The measurement itself"), "{md}");
    assert!(
        md.contains("| smoke-1 | agent queueing (not latlab's) | llm |") && md.contains("678.250"),
        "{md}"
    );
    let html = render(&r, &[]);
    assert!(html.contains("<h2>The measurement itself</h2>"), "{html}");
    assert!(
        html.contains("the &lt;emulator&gt;&#39;s mark") || html.contains("the &lt;emulator&gt;")
    );
    assert!(!html.contains("<emulator>"));
    let json: serde_json::Value = serde_json::from_str(&latlab_report::json(&r)).unwrap();
    assert_eq!(json["measurer"][1]["n"], 5);
}
