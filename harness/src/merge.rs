//! `latlab merge`: shards of one run (`latlab run --shard i/N`) into one results folder.
//!
//! Spans and turns are concatenated (their `run` becomes the merged folder's name) and the
//! interval logs are merged histogram by histogram (`hdr::merge`: every count kept), so the
//! merged folder reads like one run. Shards must come from the same scenario file, dataset,
//! seed and speed; a missing shard is allowed and noted (the merge is then `partial`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use latlab_core::timing::{Outcome, Span, TurnTimeline};

use crate::manifest::{self, Counts, RunManifest, RunStatus};
use crate::runner::sort_results;
use crate::sinks::{self, SPANS_LOG, TURNS_LOG, hdr};

/// What a merge produced.
pub struct Merged {
    /// The merged manifest.
    pub manifest: RunManifest,
    /// Shards merged.
    pub shards: usize,
}

/// Merges the results folders `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> anyhow::Result<Merged> {
    if dirs.is_empty() {
        bail!("nothing to merge: give the shards' results folders");
    }
    let manifests: Vec<RunManifest> = dirs
        .iter()
        .map(|d| RunManifest::read(d))
        .collect::<Result<_, _>>()?;
    let first = &manifests[0];
    for (dir, m) in dirs.iter().zip(&manifests).skip(1) {
        let same = |what: &str, a: &str, b: &str| -> anyhow::Result<()> {
            if a != b {
                bail!(
                    "{} is not a shard of the same run as {}: its {what} differs ({b} vs {a})",
                    dir.display(),
                    dirs[0].display()
                );
            }
            Ok(())
        };
        same("scenario", &first.scenario.sha256, &m.scenario.sha256)?;
        same("dataset", &first.dataset.sha256, &m.dataset.sha256)?;
        same("seed", &first.seed.to_string(), &m.seed.to_string())?;
        same("speed", &first.speed.to_string(), &m.speed.to_string())?;
    }
    let shard_of = |m: &RunManifest| m.load.as_ref().and_then(|l| l.shard.clone());
    let mut seen = BTreeSet::new();
    let mut count = None;
    for (dir, m) in dirs.iter().zip(&manifests) {
        let Some(shard) = shard_of(m) else {
            bail!(
                "{} is a whole run, not a shard (run shards with `latlab run --shard i/N`)",
                dir.display()
            );
        };
        let parsed = latlab_core::load::Shard::parse(&shard).map_err(anyhow::Error::msg)?;
        if *count.get_or_insert(parsed.count) != parsed.count {
            bail!("{}: shard {shard} is of a different split", dir.display());
        }
        if !seen.insert(parsed.index) {
            bail!("{}: shard {shard} is given twice", dir.display());
        }
    }
    let count = count.unwrap_or(1);
    let missing: Vec<String> = (0..count)
        .filter(|i| !seen.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();

    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let run_id = out
        .canonicalize()
        .unwrap_or_else(|_| out.to_path_buf())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "merged".into());

    let (mut spans, mut turns) = (Vec::<Span>::new(), Vec::<TurnTimeline>::new());
    let mut torn = 0;
    let (mut latency, mut scheduling) = (Vec::new(), Vec::new());
    for dir in dirs {
        let (s, t1) = sinks::read_log::<Span>(&dir.join(SPANS_LOG))?;
        let (t, t2) = sinks::read_log::<TurnTimeline>(&dir.join(TURNS_LOG))?;
        torn += t1 + t2;
        let log = dir.join(hdr::LATENCY_LOG);
        if log.exists() {
            latency.extend(hdr::read_log(&log)?);
        } else {
            // A killed shard not yet recovered: its histograms from its spans.
            latency.extend(hdr::latency_intervals(&s));
        }
        spans.extend(s.into_iter().map(|mut s| {
            s.run = run_id.clone();
            s
        }));
        turns.extend(t.into_iter().map(|mut t| {
            t.run = run_id.clone();
            t
        }));
        let log = dir.join(hdr::SCHEDULING_LOG);
        if log.exists() {
            scheduling.extend(hdr::read_log(&log)?);
        }
    }
    sort_results(&mut spans, &mut turns);
    let write_log = |name: &str, items: &mut dyn Iterator<Item = String>| -> anyhow::Result<()> {
        let path = out.join(name);
        let mut text = String::new();
        for line in items {
            text.push_str(&line);
            text.push('\n');
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write_log(
        SPANS_LOG,
        &mut spans
            .iter()
            .map(|s| serde_json::to_string(s).unwrap_or_default()),
    )?;
    write_log(
        TURNS_LOG,
        &mut turns
            .iter()
            .map(|t| serde_json::to_string(t).unwrap_or_default()),
    )?;
    sinks::parquet::spans_table(&spans)
        .write(&out.join(sinks::SPANS_PARQUET), "span")
        .context("writing spans.parquet")?;
    sinks::parquet::turns_table(&turns)
        .write(&out.join(sinks::TURNS_PARQUET), "turn")
        .context("writing turns.parquet")?;
    hdr::write_log(
        &out.join(hdr::LATENCY_LOG),
        "latlab latency histograms: one interval per profile.stage per 1 s window (merged shards)",
        &hdr::merge(latency)?,
    )?;
    let scheduling = hdr::merge(scheduling)?;
    let lag_of = |tag: &str| {
        scheduling
            .iter()
            .find(|i| i.tag == tag)
            .map(|i| &i.histogram)
    };
    hdr::write_log(
        &out.join(hdr::SCHEDULING_LOG),
        "latlab scheduling lag (actual - scheduled): audio frames and call starts (merged shards)",
        &scheduling,
    )?;

    let mut manifest = first.clone();
    manifest.run_id = run_id;
    let all_complete = manifests.iter().all(|m| m.status == RunStatus::Complete);
    manifest.status = if missing.is_empty() && all_complete {
        RunStatus::Complete
    } else {
        RunStatus::Partial
    };
    manifest.duration_s = manifests
        .iter()
        .filter_map(|m| m.duration_s)
        .reduce(f64::max);
    if let Some(load) = &mut manifest.load {
        load.shard = None;
    }
    let sum = |f: fn(&Counts) -> usize| -> usize {
        manifests
            .iter()
            .filter_map(|m| m.counts.as_ref())
            .map(f)
            .sum()
    };
    manifest.counts = Some(Counts {
        calls: sum(|c| c.calls),
        turns: turns.len(),
        failed_turns: turns.iter().filter(|t| t.outcome != Outcome::Ok).count(),
        spans: spans.len(),
        dropped_calls: sum(|c| c.dropped_calls),
        max_in_flight: sum(|c| c.max_in_flight),
    });
    manifest.pacing = lag_of("frames").map(manifest::pacing_of);
    manifest.call_starts = lag_of("call_starts").map(manifest::lag_of);
    manifest.llm_queue_wait = crate::measurer::llm_queue_wait(&turns);
    manifest.emulator = None;
    manifest.telemetry = None;
    manifest.notes = vec![format!(
        "merged from {} shard(s) of {count}: {}; each shard timed against its own epoch, so timestamps of different shards are comparable only as far as the shards started together; max_in_flight is the sum of the shards' maxima",
        dirs.len(),
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )];
    if !missing.is_empty() {
        manifest.notes.push(format!(
            "PARTIAL: shards {} are missing",
            missing.join(", ")
        ));
    }
    if dirs
        .iter()
        .any(|d| d.join(latlab_results::files::FRAMES_LOG).exists())
    {
        // Camera streams are not sharded: every shard replays all of them.
        manifest.vision = None;
        manifest.notes.push(
            "the shards' camera frames (frames.jsonl) were not merged: `--shard` splits calls, not camera streams, so every shard replayed every stream; analyse each shard's frames on its own".into(),
        );
    }
    // Each shard lined its own calls up with the agent's self-report.
    if let Some(agent) = &mut manifest.agent {
        let reports: Vec<_> = manifests
            .iter()
            .filter_map(|m| m.agent.as_ref()?.self_report.as_ref())
            .collect();
        if let Some(first) = reports.first() {
            let mut merged = (*first).clone();
            merged.lines = reports.iter().map(|r| r.lines).max().unwrap_or(0);
            merged.aligned_turns = reports.iter().map(|r| r.aligned_turns).sum();
            merged.unaligned_calls = reports.iter().map(|r| r.unaligned_calls).sum();
            agent.self_report = Some(merged);
        }
    }
    if torn > 0 {
        manifest
            .notes
            .push(format!("{torn} torn log lines of killed shards skipped"));
    }
    let hosts: BTreeSet<&str> = manifests
        .iter()
        .map(|m| m.host.cpu_model.as_str())
        .collect();
    if hosts.len() > 1 {
        manifest.notes.push(format!(
            "shards ran on different CPUs: {}",
            hosts.into_iter().collect::<Vec<_>>().join("; ")
        ));
    }
    for (dir, m) in dirs.iter().zip(&manifests) {
        for note in &m.notes {
            manifest.notes.push(format!("{}: {note}", dir.display()));
        }
    }
    manifest.write(out)?;
    Ok(Merged {
        manifest,
        shards: dirs.len(),
    })
}
