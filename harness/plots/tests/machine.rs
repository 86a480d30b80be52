//! The machine plot: drawn right after latency over time, with its units and legend, with a
//! GPU panel only when the run had a GPU.

use latlab_plots::{PlotError, render_svgs, write_pngs};
use latlab_report::model::{
    GpuPoint, PlotData, TelemetryPhase, TelemetryPoint, TelemetrySeries, TimeSeries,
};

/// A 90 s run on 4 cores whose load ramps up and back, optionally with one GPU.
fn telemetry(gpu: bool) -> TelemetrySeries {
    let points = (1..=90)
        .map(|s| {
            let t = f64::from(s);
            let load = (t / 90.0 * std::f64::consts::PI).sin();
            let cores: Vec<f64> = (0..4)
                .map(|c| (10.0 + 70.0 * load + 5.0 * f64::from(c)).min(100.0))
                .collect();
            TelemetryPoint {
                t_s: t,
                cpu_percent: cores.iter().sum::<f64>() / 4.0,
                cpu_core_percent: cores,
                process_cpu_percent: 150.0 * load,
                rss_bytes: (80 + (40.0 * load) as u64) << 20,
                net_rx_mbit_s: 12.0 * load,
                net_tx_mbit_s: 3.0 * load,
                gpu: if gpu {
                    vec![GpuPoint {
                        utilization_percent: Some(60.0 * load),
                        memory_used_bytes: Some(20 << 30),
                        memory_total_bytes: Some(80 << 30),
                        power_watts: Some(300.0),
                        temperature_c: Some(55.0),
                    }]
                } else {
                    Vec::new()
                },
            }
        })
        .collect();
    TelemetrySeries {
        label: "smoke-run".into(),
        cores: 4,
        gpus: if gpu {
            vec!["NVIDIA H100 80GB HBM3".into()]
        } else {
            Vec::new()
        },
        points,
        phases: vec![
            TelemetryPhase {
                label: "balanced".into(),
                start_s: 2.0,
                end_s: 44.0,
            },
            TelemetryPhase {
                label: "aggressive".into(),
                start_s: 46.0,
                end_s: 88.0,
            },
        ],
    }
}

fn with(series: Vec<TelemetrySeries>) -> PlotData {
    PlotData {
        over_time: vec![TimeSeries {
            label: "balanced".into(),
            p95: (0..90).map(|s| (f64::from(s), 1200.0, 4)).collect(),
            in_flight: (0..90).map(|s| (f64::from(s), 3)).collect(),
        }],
        telemetry: series,
        ..PlotData::default()
    }
}

#[test]
fn the_machine_plot_follows_latency_over_time_with_units_and_legend() -> Result<(), PlotError> {
    let plots = render_svgs(&with(vec![telemetry(false)]))?;
    let names: Vec<&str> = plots.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["over_time", "machine"]);
    let svg = &plots[1].svg;
    assert!(svg.starts_with("<svg") && svg.contains("viewBox=\"0 0 960 540\""));
    for text in [
        "Machine during the run",
        "time since the run",
        "CPU busy (%)",
        "RSS (MiB)",
        "net (Mbit/s)",
        "CPU, all 4 cores",
        "CPU, each core",
        "latlab process",
        "latlab: share of all cores",
        "latlab process RSS",
        "received",
        "sent",
        "all interfaces, loopback too",
        // Each profile's turns are shaded and named.
        "balanced",
        "aggressive",
    ] {
        assert!(svg.contains(text), "machine plot lacks {text:?}");
    }
    assert!(!svg.contains("GPU"), "a GPU panel without a GPU");
    assert_eq!(plots[1].title, "Machine during the run");
    Ok(())
}

#[test]
fn a_gpu_adds_its_panel_and_several_runs_are_told_apart() -> Result<(), PlotError> {
    let mut other = telemetry(false);
    other.label = "other-run".into();
    let plots = render_svgs(&with(vec![telemetry(true), other]))?;
    let svg = &plots.iter().find(|p| p.name == "machine").unwrap().svg;
    for text in [
        "GPU (%)",
        "smoke-run · GPU utilisation",
        "smoke-run · GPU memory used",
        "other-run · CPU, all 4 cores",
    ] {
        assert!(svg.contains(text), "machine plot lacks {text:?}");
    }
    // Each core is drawn for a single run only.
    assert!(!svg.contains("each core"));
    Ok(())
}

#[test]
fn no_samples_no_plot_and_one_sample_does_not_panic() -> Result<(), PlotError> {
    let empty = TelemetrySeries {
        points: Vec::new(),
        ..telemetry(false)
    };
    assert!(
        render_svgs(&with(vec![empty]))?
            .iter()
            .all(|p| p.name != "machine")
    );
    let mut one = telemetry(true);
    one.points.truncate(1);
    one.points[0].rss_bytes = 0;
    one.points[0].net_rx_mbit_s = f64::NAN;
    let dir = tempfile::tempdir().unwrap();
    let paths = write_pngs(&with(vec![one]), dir.path())?;
    assert!(paths.iter().any(|p| p.ends_with("machine.png")));
    Ok(())
}

/// For looking at: `LATLAB_PLOTS_PREVIEW=/tmp/plots-preview cargo test -p latlab-plots`.
#[test]
fn preview_when_asked() -> Result<(), PlotError> {
    let Some(dir) = std::env::var_os("LATLAB_PLOTS_PREVIEW") else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    write_pngs(&with(vec![telemetry(false)]), &dir.join("machine-cpu-only"))?;
    let mut other = telemetry(false);
    other.label = "other-run".into();
    write_pngs(
        &with(vec![telemetry(true), other]),
        &dir.join("machine-gpu-two-runs"),
    )?;
    Ok(())
}
