//! Renders a realistic report's plots and the awkward edge cases, as SVG and PNG.

mod fixture;

use latlab_plots::{PlotError, render_svgs, write_pngs};
use latlab_report::model::{
    CdfSeries, FpsSeries, ParetoPoint, PlotData, StageHistogram, TimeSeries, WaterfallBar,
};

const ALL_NAMES: [&str; 10] = [
    "cdf",
    "waterfall",
    "over_time",
    "histogram_endpoint",
    "histogram_stt",
    "histogram_llm",
    "histogram_tool",
    "histogram_tts",
    "histogram_turn",
    "pareto",
];

fn names(plots: &[latlab_plots::Plot]) -> Vec<&str> {
    plots.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn every_plot_is_rendered_in_report_order() -> Result<(), PlotError> {
    let plots = render_svgs(&fixture::plot_data())?;
    assert_eq!(names(&plots), ALL_NAMES);
    for plot in &plots {
        assert!(
            plot.svg.starts_with("<svg"),
            "{}: {}",
            plot.name,
            &plot.svg[..80]
        );
        assert!(plot.svg.trim_end().ends_with("</svg>"), "{}", plot.name);
        assert!(
            plot.svg.contains("viewBox=\"0 0 960 540\""),
            "{}",
            plot.name
        );
        assert!(!plot.title.is_empty());
        for (label, _, _) in fixture::PROFILES {
            assert!(
                plot.svg.contains(label),
                "{} lacks legend label {label}",
                plot.name
            );
        }
    }
    Ok(())
}

#[test]
fn plots_carry_their_axis_labels_and_markers() -> Result<(), PlotError> {
    let plots = render_svgs(&fixture::plot_data())?;
    let svg = |name: &str| &plots.iter().find(|p| p.name == name).unwrap().svg;
    let expect = [
        (
            "cdf",
            vec![
                "Voice-to-voice latency CDF",
                "voice-to-voice latency (ms, log scale)",
                "turns at or below this latency (%)",
                "p90",
                "p95",
                "conservative (n=300)",
                "whiskers: 95 % interval",
            ],
        ),
        (
            "waterfall",
            vec![
                "ms after end of user speech",
                "end of speech detected",
                "LLM first token",
                "TTS first audible",
                "balanced (n=300)",
            ],
        ),
        (
            "over_time",
            vec![
                "p95 voice-to-voice per 1 s window",
                "time since the series",
                "p95 voice-to-voice latency (ms)",
                "calls in flight",
                "aggressive p95",
                "aggressive in flight",
            ],
        ),
        (
            "histogram_llm",
            vec![
                "LLM latency histogram",
                "LLM latency (ms)",
                "turns (count)",
                // The fixture's long tail passes the last edge: counted, and said.
                "(n=300)",
                "past 1000 ms, off axis",
            ],
        ),
        (
            "histogram_turn",
            vec![
                "Voice-to-voice latency histogram",
                "voice-to-voice latency (ms)",
            ],
        ),
        (
            "pareto",
            vec![
                "Latency vs accuracy",
                "word error rate (%)",
                "voice-to-voice latency (ms)",
                "p90 voice-to-voice",
                "p95 voice-to-voice",
                "whiskers: 95 % interval",
                "balanced (n=300)",
            ],
        ),
    ];
    for (name, texts) in expect {
        for text in texts {
            assert!(svg(name).contains(text), "{name} lacks {text:?}");
        }
    }
    Ok(())
}

#[test]
fn labels_are_escaped_in_svg() -> Result<(), PlotError> {
    let mut data = fixture::plot_data();
    let hostile = "<script>x</script>&co";
    data.cdf[0].label = hostile.into();
    data.waterfall[0].label = hostile.into();
    data.over_time[0].label = hostile.into();
    data.histograms[0].series[0].0 = hostile.into();
    data.pareto[0].label = hostile.into();
    data.waterfall[0].boundaries[0].0 = "<b>&".into();
    for plot in render_svgs(&data)? {
        assert!(
            !plot.svg.contains("<script"),
            "{} has raw <script",
            plot.name
        );
        assert!(!plot.svg.contains("<b>"), "{} has raw <b>", plot.name);
        assert!(!plot.svg.contains("&co"), "{} has a raw &", plot.name);
        if [
            "cdf",
            "waterfall",
            "over_time",
            "histogram_endpoint",
            "pareto",
        ]
        .contains(&plot.name.as_str())
        {
            assert!(
                plot.svg.contains("&lt;script&gt;"),
                "{} lost the label",
                plot.name
            );
        }
    }
    Ok(())
}

#[test]
fn empty_series_make_no_plot() -> Result<(), PlotError> {
    assert!(render_svgs(&PlotData::default())?.is_empty());
    let hollow = PlotData {
        cdf: vec![CdfSeries {
            label: "a".into(),
            points: vec![],
            p90: f64::NAN,
            p95: 0.0,
            p90_ci: Some([f64::NAN, 1.0]),
            p95_ci: None,
            count: 0,
        }],
        waterfall: vec![WaterfallBar {
            label: "a".into(),
            boundaries: vec![],
            count: 0,
        }],
        over_time: vec![TimeSeries {
            label: "a".into(),
            p95: vec![],
            in_flight: vec![],
        }],
        histograms: vec![
            StageHistogram {
                stage: "llm".into(),
                edges: vec![],
                series: vec![],
                above: vec![],
            },
            StageHistogram {
                stage: "tts".into(),
                edges: vec![0.0, 10.0],
                series: vec![("a".into(), vec![0])],
                above: vec![0],
            },
            StageHistogram {
                stage: "stt".into(),
                edges: vec![0.0, 10.0],
                series: vec![("a".into(), vec![])],
                above: vec![],
            },
        ],
        pareto: vec![],
        telemetry: Vec::new(),
        frame_cdf: vec![CdfSeries {
            label: "a".into(),
            points: vec![(0.0, 1.0)],
            p90: 0.0,
            p95: 0.0,
            p90_ci: None,
            p95_ci: None,
            count: 1,
        }],
        fps_over_time: vec![FpsSeries {
            label: "a".into(),
            points: vec![(f64::NAN, 1.0, 1)],
            source_fps: Some(10.0),
        }],
    };
    assert!(render_svgs(&hollow)?.is_empty());
    let dir = tempfile::tempdir().unwrap();
    assert!(write_pngs(&hollow, dir.path())?.is_empty());
    Ok(())
}

/// Every series a single point, or all values equal: ranges of zero width, log included.
fn degenerate() -> PlotData {
    PlotData {
        cdf: vec![
            CdfSeries {
                label: "one".into(),
                points: vec![(1000.0, 1.0)],
                p90: 1000.0,
                p95: 1000.0,
                p90_ci: Some([1000.0, 1000.0]),
                p95_ci: Some([1000.0, 1000.0]),
                count: 1,
            },
            CdfSeries {
                label: "flat".into(),
                points: vec![(1000.0, 0.5), (1000.0, 1.0)],
                p90: 1000.0,
                p95: 1000.0,
                p90_ci: None,
                p95_ci: Some([1000.0, f64::INFINITY]),
                count: 2,
            },
            CdfSeries {
                label: "non-positive".into(),
                points: vec![(0.0, 0.5), (-3.0, 1.0)],
                p90: 0.0,
                p95: -1.0,
                p90_ci: Some([-5.0, 0.0]),
                p95_ci: Some([3.0, 1.0]),
                count: 2,
            },
        ],
        waterfall: vec![
            WaterfallBar {
                label: "one".into(),
                boundaries: vec![("tts_first_audible".into(), 0.0)],
                count: 1,
            },
            WaterfallBar {
                label: "nan".into(),
                boundaries: vec![("final_transcript".into(), f64::NAN)],
                count: 1,
            },
        ],
        over_time: vec![TimeSeries {
            label: "one".into(),
            p95: vec![(0.0, 1000.0, 1)],
            in_flight: vec![(0.0, 0)],
        }],
        histograms: vec![StageHistogram {
            stage: "turn".into(),
            edges: vec![1000.0, 1000.0, 1001.0],
            series: vec![("one".into(), vec![5, 1])],
            above: vec![2],
        }],
        pareto: vec![ParetoPoint {
            label: "one".into(),
            p90: 1000.0,
            p95: 1000.0,
            p90_ci: Some([1000.0, 1000.0]),
            p95_ci: Some([f64::NAN, f64::NAN]),
            count: 1,
            wer: 0.0,
        }],
        telemetry: Vec::new(),
        frame_cdf: vec![CdfSeries {
            label: "one".into(),
            points: vec![(40.0, 1.0)],
            p90: 40.0,
            p95: 40.0,
            p90_ci: Some([40.0, 40.0]),
            p95_ci: None,
            count: 1,
        }],
        fps_over_time: vec![FpsSeries {
            label: "one".into(),
            points: vec![(0.0, 0.0, 1)],
            source_fps: None,
        }],
    }
}

/// A video run's two plots: frame latency CDF and achieved FPS, each saying its sample count.
#[test]
fn video_plots_say_what_they_show_and_how_many() -> Result<(), PlotError> {
    let data = PlotData {
        frame_cdf: vec![CdfSeries {
            label: "yolov8n".into(),
            points: (1..=100)
                .map(|i| (30.0 + f64::from(i), f64::from(i) / 100.0))
                .collect(),
            p90: 120.0,
            p95: 125.0,
            p90_ci: Some([118.0, 123.0]),
            p95_ci: Some([122.0, 128.0]),
            count: 100,
        }],
        fps_over_time: vec![FpsSeries {
            label: "yolov8n".into(),
            points: (0..10).map(|s| (f64::from(s), 9.5, 2)).collect(),
            source_fps: Some(10.0),
        }],
        ..PlotData::default()
    };
    let plots = render_svgs(&data)?;
    assert_eq!(names(&plots), ["frame_cdf", "fps_over_time"]);
    assert!(
        plots[0]
            .svg
            .contains("frame latency from scheduled capture")
    );
    assert!(plots[0].svg.contains("yolov8n (n=100)"));
    assert!(plots[1].svg.contains("results per stream per second"));
    assert!(plots[1].svg.contains("yolov8n (n=10 windows)"));
    assert!(plots[1].svg.contains("recorded rate 10.00 fps"));
    Ok(())
}

#[test]
fn single_points_and_equal_values_do_not_panic() -> Result<(), PlotError> {
    let plots = render_svgs(&degenerate())?;
    assert_eq!(
        names(&plots),
        [
            "cdf",
            "waterfall",
            "over_time",
            "histogram_turn",
            "pareto",
            "frame_cdf",
            "fps_over_time"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(write_pngs(&degenerate(), dir.path())?.len(), 7);
    Ok(())
}

#[test]
fn pngs_are_written_non_empty_at_full_size() -> Result<(), PlotError> {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("plots");
    let paths = write_pngs(&fixture::plot_data(), &target)?;
    let expected: Vec<_> = ALL_NAMES
        .iter()
        .map(|n| target.join(format!("{n}.png")))
        .collect();
    assert_eq!(paths, expected);
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{}",
            path.display()
        );
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), latlab_plots::SIZE);
        assert!(
            bytes.len() > 10_000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
    }
    Ok(())
}

/// For looking at: `LATLAB_PLOTS_PREVIEW=/tmp/plots-preview cargo test -p latlab-plots`.
#[test]
fn preview_when_asked() -> Result<(), PlotError> {
    let Some(dir) = std::env::var_os("LATLAB_PLOTS_PREVIEW") else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    write_pngs(&fixture::plot_data(), &dir)?;
    write_pngs(&degenerate(), &dir.join("degenerate"))?;
    for plot in render_svgs(&fixture::plot_data())? {
        std::fs::write(dir.join(format!("{}.svg", plot.name)), plot.svg).unwrap();
    }
    Ok(())
}
