//! The `latlab` binary: parse the command line, run, print errors with their causes.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use latlab_analysis::Side;
use latlab_core::timing::Span;
use latlab_harness::cli::{BaselineCommand, Cli, Command, ExportFormat, ModelsCommand};
use latlab_harness::interrupt::Interrupt;
use latlab_harness::runner::{self, RunOptions};
use latlab_harness::scenario::Scenario;
use latlab_harness::{exit, gate, manifest, merge, models, recover, report, sinks, summary};
use latlab_report::terminal;

/// mimalloc keeps freed pages for reuse; with the system allocator, reading 10 M spans a chunk
/// at a time spent a third of its time in the kernel, faulting fresh pages in for every
/// chunk's columns (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = exit::code_of(&e);
            match code {
                // The gate printed its verdicts: no error line.
                exit::GATE_FAILED => {}
                exit::INTERRUPTED => eprintln!("latlab: {e:#}"),
                _ => eprintln!("latlab: error: {e:#}"),
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cli.command {
        Command::Run(args) => {
            if args.out.is_some() && args.scenarios.len() > 1 {
                anyhow::bail!("--out takes one scenario; a suite writes one folder per scenario");
            }
            // Load every scenario first: a typo in the third fails before the first runs.
            let scenarios = args
                .scenarios
                .iter()
                .map(|p| Scenario::load(p))
                .collect::<Result<Vec<_>, _>>()?;
            let models = latlab_core::backends::local::Models::locate();
            if !args.no_fetch {
                for scenario in &scenarios {
                    models::ensure(scenario, &models)?;
                }
            }
            // One listener for the whole suite: Ctrl-C stops it, not only the scenario running.
            let interrupt = Interrupt::new();
            let mut dirs = Vec::new();
            let mut no_success = Vec::new();
            for scenario in &scenarios {
                if interrupt.heard() {
                    break;
                }
                let options = RunOptions::from(&args);
                let result = rt.block_on(runner::run(scenario, &options, &interrupt))?;
                let analysed = match latlab_analysis::analyze(std::slice::from_ref(&result.dir)) {
                    Ok(model) => {
                        print!("{}", terminal::render(&model));
                        if !args.no_report {
                            let written = report::write(&model, &result.dir.join("report.html"))?;
                            println!("report: {}", written.html.display());
                        }
                        true
                    }
                    Err(e) => {
                        eprintln!(
                            "latlab: warning: analysis failed ({e}); the exact summary follows"
                        );
                        print_logged_summary(&result.dir)?;
                        false
                    }
                };
                print_facts(&result.manifest, !analysed);
                println!("results: {}", result.dir.display());
                let m = &result.manifest;
                let audio_failed = m.profiles.iter().any(|p| p.lanes.audio())
                    && m.counts.as_ref().is_none_or(|c| c.failed_turns >= c.turns);
                let video_failed = m.vision.as_ref().is_some_and(|v| v.processed == 0);
                if audio_failed || video_failed {
                    no_success.push(format!(
                        "scenario {} ({})",
                        scenario.spec.name,
                        result.dir.display()
                    ));
                }
                dirs.push(result.dir);
            }
            let interrupted = interrupt.heard();
            drop(rt);
            // A suite: one report over every scenario's results, in the first one's folder.
            if dirs.len() > 1 && !args.no_report {
                let model = latlab_analysis::analyze(&dirs)?;
                let written = report::write(&model, &dirs[0].join("suite.html"))?;
                println!("suite report: {}", written.html.display());
            }
            if interrupted {
                return Err(exit::Interrupted {
                    ran: dirs.len(),
                    of: scenarios.len(),
                }
                .into());
            }
            if !no_success.is_empty() {
                return Err(exit::NoTurnSucceeded(no_success).into());
            }
            Ok(())
        }
        Command::Models { command } => {
            let models = latlab_core::backends::local::Models::locate();
            match command {
                ModelsCommand::Fetch { names } => models::fetch_script(&models, &names),
                ModelsCommand::List => models::fetch_script(&models, &["--list".to_string()]),
                ModelsCommand::Check { names } => {
                    let mut args = vec!["--check".to_string()];
                    args.extend(names);
                    models::fetch_script(&models, &args)
                }
            }
        }
        Command::Report { dirs, out } => {
            let model = latlab_analysis::analyze(&dirs)?;
            let out = out.unwrap_or_else(|| dirs[0].join("report.html"));
            let written = report::write(&model, &out)?;
            print!("{}", terminal::render(&model));
            println!("report: {}", written.html.display());
            Ok(())
        }
        Command::Compare { a, b, out } => {
            let model = latlab_analysis::compare(&Side::parse(&a), &Side::parse(&b))?;
            print!("{}", terminal::render(&model));
            if let Some(out) = out {
                let written = report::write(&model, &out)?;
                println!("report: {}", written.html.display());
            }
            Ok(())
        }
        Command::Export { dir, format, out } => {
            let format = match format {
                ExportFormat::Csv => latlab_analysis::export::Format::Csv,
                ExportFormat::Json => latlab_analysis::export::Format::Json,
            };
            use latlab_analysis::export as ex;
            let spans_out = out.clone().unwrap_or_else(|| ex::default_out(&dir, format));
            // Frames go beside the spans: the same folder, their own file name.
            let frames_out = match &out {
                Some(o) => o.with_file_name(format.frames_file_name()),
                None => ex::default_frames_out(&dir, format),
            };
            if dir.join(sinks::SPANS_PARQUET).exists() {
                let rows = ex::export(&dir, format, &spans_out)?;
                println!("{rows} spans written to {}", spans_out.display());
            }
            match ex::export_frames(&dir, format, &frames_out)? {
                Some(n) => println!("{n} frames written to {}", frames_out.display()),
                None if !dir.join(sinks::SPANS_PARQUET).exists() => {
                    anyhow::bail!(
                        "{}: neither spans.parquet nor frames.parquet (a killed run: `latlab recover` first)",
                        dir.display()
                    )
                }
                None => {}
            }
            Ok(())
        }
        Command::Emulate { config } => rt.block_on(emulate(&config)),
        Command::Merge {
            dirs,
            out,
            no_report,
        } => {
            let merged = merge::merge(&dirs, &out)?;
            let analysed = match latlab_analysis::analyze(std::slice::from_ref(&out)) {
                Ok(model) => {
                    print!("{}", terminal::render(&model));
                    if !no_report {
                        let written = report::write(&model, &out.join("report.html"))?;
                        println!("report: {}", written.html.display());
                    }
                    true
                }
                Err(e) => {
                    eprintln!("latlab: warning: analysis failed ({e})");
                    false
                }
            };
            print_facts(&merged.manifest, !analysed);
            println!("merged {} shards into {}", merged.shards, out.display());
            Ok(())
        }
        Command::Recover { dir } => {
            let r = recover::recover(&dir)?;
            println!(
                "recovered {} spans and {} turns ({} torn lines skipped) into {}",
                r.spans,
                r.turns,
                r.torn_lines,
                dir.display()
            );
            Ok(())
        }
        Command::Gate(args) => gate::gate(&args),
        Command::Baseline {
            command: BaselineCommand::Save { name, dir, root },
        } => gate::save_baseline(&name, &dir, &root),
        Command::Show { dir, json } => {
            // With camera frames, the full analysis (the summary has no video section).
            let frames = dir.join(latlab_results::files::FRAMES_PARQUET).exists();
            if frames {
                let model = latlab_analysis::analyze(std::slice::from_ref(&dir))?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&model.summary)?);
                    return Ok(());
                }
                print!("{}", terminal::render(&model));
            } else if dir.join(sinks::SPANS_PARQUET).exists() {
                let model = latlab_analysis::summarize(std::slice::from_ref(&dir))?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&model.summary)?);
                    return Ok(());
                }
                print!("{}", terminal::render(&model));
            } else {
                // A killed run not yet recovered.
                print_logged_summary(&dir)?;
                println!(
                    "(from spans.jsonl; run `latlab recover {}` for the full analysis)",
                    dir.display()
                );
            }
            if let Ok(m) = manifest::RunManifest::read(&dir) {
                print_facts(&m, true);
            }
            Ok(())
        }
    }
}

/// The exact summary from a results folder's span log (no polars, no Parquet needed).
fn print_logged_summary(dir: &Path) -> anyhow::Result<()> {
    let (mut spans, _) = sinks::read_log::<Span>(&dir.join(sinks::SPANS_LOG))?;
    runner::sort_results(&mut spans, &mut []);
    print!("{}", summary::render(&summary::summarize(&spans)));
    Ok(())
}

/// Prints the run's pacing, counts and (unless the report already showed them) its notes.
fn print_facts(m: &manifest::RunManifest, notes: bool) {
    let audio = m.profiles.iter().any(|p| p.lanes.audio());
    if let Some(v) = &m.vision {
        println!(
            "camera frames: {} captured, {} processed, {} skipped, {} failed ({} at {} fps, {}x{}; decoded off the clock: {} frames in {:.0} ms)",
            v.captured,
            v.processed,
            v.skipped,
            v.failed,
            v.video,
            v.fps,
            v.width,
            v.height,
            v.decode.frames,
            v.decode.total_ms
        );
        if let Some(l) = &v.capture_lag {
            println!(
                "frame capture lag: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} frames picked up by an idle detector",
                l.p50_ns as f64 / 1e6,
                l.p99_ns as f64 / 1e6,
                l.max_ns as f64 / 1e6,
                l.count
            );
        }
    }
    if !audio {
        println!("status {}", m.status);
    }
    if let Some(p) = m.pacing.as_ref().filter(|_| audio) {
        println!(
            "frame pacing lag: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} frames",
            p.p50_ns as f64 / 1e6,
            p.p99_ns as f64 / 1e6,
            p.max_ns as f64 / 1e6,
            p.frames
        );
    }
    if let Some(l) = &m.call_starts
        && l.count > 0
    {
        println!(
            "call-start lag: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} starts",
            l.p50_ns as f64 / 1e6,
            l.p99_ns as f64 / 1e6,
            l.max_ns as f64 / 1e6,
            l.count
        );
    }
    if let Some(a) = &m.agent {
        let reported = a
            .self_report
            .as_ref()
            .map(|r| {
                format!(
                    "; its own figures ({}, {} lines) lined up with {} turns{}",
                    if r.reporter.is_empty() {
                        "self-report"
                    } else {
                        &r.reporter
                    },
                    r.lines,
                    r.aligned_turns,
                    if r.unaligned_calls > 0 {
                        format!(", {} calls counted differently", r.unaligned_calls)
                    } else {
                        String::new()
                    }
                )
            })
            .unwrap_or_default();
        println!(
            "agent {} called over {} at {} ({} Hz){reported}",
            a.name, a.protocol, a.url, a.sample_rate
        );
    }
    if let Some(c) = m.counts.as_ref().filter(|_| audio) {
        println!(
            "{} calls, {} turns ({} failed), {} spans; status {}",
            c.calls, c.turns, c.failed_turns, c.spans, m.status
        );
        if c.dropped_calls > 0 {
            println!(
                "{} arrivals dropped (in-flight cap reached)",
                c.dropped_calls
            );
        }
    }
    if !m.measurer.is_empty() {
        let shares: Vec<String> = m
            .measurer
            .iter()
            .map(|s| {
                format!(
                    "{} {:.0}/{:.0} µs (n={})",
                    s.stage,
                    s.share.p50_ns as f64 / 1e3,
                    s.share.p99_ns as f64 / 1e3,
                    s.share.count
                )
            })
            .collect();
        println!("latlab's own share, p50/p99: {}", shares.join(", "));
    }
    if let Some(q) = &m.llm_queue_wait {
        // The agent's queueing, beside latlab's share and never in it.
        let w = &q.waited;
        if w.count == 0 {
            println!(
                "LLM queue wait: none of {} requests waited behind the call's previous one",
                q.requests
            );
        } else {
            println!(
                "LLM queue wait (behind the call's previous request; the system's, not latlab's): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} of {} requests",
                w.p50_ns as f64 / 1e6,
                w.p99_ns as f64 / 1e6,
                w.max_ns as f64 / 1e6,
                w.count,
                q.requests
            );
        }
    }
    for l in &m.model_loads {
        let note = l
            .note
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!(
            "model load: {} {} on {} in {:.0} ms{note}",
            l.stage, l.model, l.device, l.load_ms
        );
    }
    if notes {
        for note in &m.notes {
            println!("note: {note}");
        }
    }
}

async fn emulate(config: &Path) -> anyhow::Result<()> {
    let (config, dataset_dir) = latlab_emulator::load_config(config)?;
    let dataset = match dataset_dir {
        Some(dir) => Some(std::sync::Arc::new(latlab_core::dataset::Dataset::load(
            &dir,
        )?)),
        None => None,
    };
    let emulator = latlab_emulator::Emulator::start(config, dataset).await?;
    println!("stt: {}/v1/listen", emulator.stt_url());
    println!("llm: {}/chat/completions", emulator.llm_url());
    println!(
        "tts: {}/v1/text-to-speech/{{voice_id}}/stream",
        emulator.tts_url()
    );
    println!(
        "detector (KServe v2 / Triton HTTP): {}/v2/models/{{model}}/infer",
        emulator.detector_url()
    );
    println!(
        "agent (Twilio Media Streams / binary PCM): {0}/twilio, {0}/pcm?rate=16000&call={{call}}; self-report: http://{1}/self-report",
        emulator.agent_url(),
        emulator.agent_addr()
    );
    println!("tools: {}/{{name}}", emulator.tools_url());
    println!("press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    println!("{}", serde_json::to_string_pretty(&emulator.stats())?);
    emulator.shutdown().await;
    Ok(())
}
