//! The CI gate on latlab's own overhead: runs the iai-callgrind benches (`iai.rs`) and fails
//! when an instruction count grew by more than the limit over the committed figures in
//! `iai_baseline.toml`, when a committed bench did not run, or when a bench has no committed
//! figure. `LATLAB_IAI_BLESS=1 cargo test -p latlab-benches --test iai_gate` rewrites the
//! figures instead. Needs valgrind and `iai-callgrind-runner` of the iai-callgrind crate's
//! version: without them it skips, saying so, unless `LATLAB_REQUIRE_TOOLS=1` (`.ci/run`).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The committed figures, beside this crate's Cargo.toml.
const BASELINE_FILE: &str = "iai_baseline.toml";
/// The version of iai-callgrind's summary JSON this gate reads (`schemas/summary.v6.schema.json`
/// in iai-callgrind-runner 0.16).
const SUMMARY_SCHEMA: &str = "6";
/// The limit a freshly blessed file gets when there was none before.
const DEFAULT_LIMIT_PCT: f64 = 10.0;

/// Instruction counts (callgrind's Ir) by bench, `group::function::id`.
type Counts = BTreeMap<String, u64>;

/// What `iai_baseline.toml` holds.
#[derive(Debug, PartialEq)]
struct Baseline {
    /// A count may grow by this many percent over its committed figure and still pass.
    limit_pct: f64,
    counts: Counts,
}

/// One bench's line in the verdict table.
#[derive(Debug, PartialEq)]
struct Row {
    bench: String,
    committed: Option<u64>,
    now: Option<u64>,
    verdict: Verdict,
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Verdict {
    /// Grew by no more than the limit (or shrank).
    Within,
    /// Grew by more than the limit.
    Regressed,
    /// Committed, but no such bench ran (renamed or removed: bless again).
    NotRun,
    /// Ran, but has no committed figure (new: bless to add it).
    NoFigure,
}

impl Verdict {
    fn fails(self) -> bool {
        self != Verdict::Within
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Within => "ok",
            Verdict::Regressed => "REGRESSED",
            Verdict::NotRun => "NOT RUN",
            Verdict::NoFigure => "NO FIGURE",
        }
    }
}

fn change_pct(committed: u64, now: u64) -> f64 {
    (now as f64 - committed as f64) / committed.max(1) as f64 * 100.0
}

/// Every bench, committed or run, judged against its committed figure.
fn judge(baseline: &Baseline, now: &Counts) -> Vec<Row> {
    let benches: BTreeSet<&String> = baseline.counts.keys().chain(now.keys()).collect();
    benches
        .into_iter()
        .map(|bench| {
            let committed = baseline.counts.get(bench).copied();
            let now = now.get(bench).copied();
            let verdict = match (committed, now) {
                (Some(c), Some(n)) if change_pct(c, n) > baseline.limit_pct => Verdict::Regressed,
                (Some(_), Some(_)) => Verdict::Within,
                (Some(_), None) => Verdict::NotRun,
                (None, _) => Verdict::NoFigure,
            };
            Row {
                bench: bench.clone(),
                committed,
                now,
                verdict,
            }
        })
        .collect()
}

fn table(rows: &[Row], limit_pct: f64) -> String {
    let count = |c: Option<u64>| c.map_or_else(|| "-".to_owned(), |c| c.to_string());
    let width = rows.iter().map(|r| r.bench.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$}  {:>12}  {:>12}  {:>8}  verdict (limit +{limit_pct} %)\n",
        "bench", "committed Ir", "now Ir", "change"
    );
    for r in rows {
        let change = match (r.committed, r.now) {
            (Some(c), Some(n)) => format!("{:+.2} %", change_pct(c, n)),
            _ => "-".to_owned(),
        };
        out += &format!(
            "{:<width$}  {:>12}  {:>12}  {:>8}  {}\n",
            r.bench,
            count(r.committed),
            count(r.now),
            change,
            r.verdict.label()
        );
    }
    out
}

fn parse_baseline(text: &str) -> Result<Baseline, String> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let limit_pct = match doc.get("limit_pct") {
        Some(toml::Value::Float(f)) => *f,
        Some(toml::Value::Integer(i)) => *i as f64,
        _ => return Err("`limit_pct` (a number of percent) is missing".into()),
    };
    let Some(toml::Value::Table(table)) = doc.get("instructions") else {
        return Err("the `[instructions]` table is missing".into());
    };
    let counts = table
        .iter()
        .map(|(bench, v)| match v {
            toml::Value::Integer(n) if *n >= 0 => Ok((bench.clone(), *n as u64)),
            _ => Err(format!("`{bench}` is not a count of instructions")),
        })
        .collect::<Result<_, _>>()?;
    Ok(Baseline { limit_pct, counts })
}

/// The file as blessing writes it; `provenance` says where the figures were taken.
fn render_baseline(baseline: &Baseline, provenance: &str) -> String {
    let mut out = format!(
        "# Instruction counts (callgrind Ir) of `cargo bench -p latlab-benches --bench iai`, the\n\
         # figures tests/iai_gate.rs holds every run to. Written by\n\
         # `LATLAB_IAI_BLESS=1 cargo test -p latlab-benches --test iai_gate`:\n\
         # {provenance}.\n\
         \n\
         # A count may grow by at most this many percent over its figure below.\n\
         limit_pct = {:?}\n\
         \n\
         [instructions]\n",
        baseline.limit_pct
    );
    for (bench, n) in &baseline.counts {
        out += &format!("\"{bench}\" = {n}\n");
    }
    out
}

/// Instruction counts from iai-callgrind's `--output-format=json` lines, one per bench.
fn parse_summaries(stdout: &str) -> Result<Counts, String> {
    let mut counts = Counts::new();
    for line in stdout.lines().filter(|l| l.starts_with('{')) {
        let s: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        if s["version"] != SUMMARY_SCHEMA {
            return Err(format!(
                "summary schema version {}, the gate reads version {SUMMARY_SCHEMA}",
                s["version"]
            ));
        }
        // "iai::parse::openai_parse_event" + "sse_token_event" → "parse::openai_parse_event::…"
        let module = s["module_path"].as_str().ok_or("no module_path")?;
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        let id = s["id"].as_str().ok_or("no bench id")?;
        let callgrind = s["profiles"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["tool"] == "Callgrind"))
            .ok_or_else(|| format!("{module} {id}: no callgrind profile"))?;
        let ir = &callgrind["summaries"]["total"]["summary"]["Callgrind"]["Ir"]["metrics"];
        // (new, old) as `Both`, or `Left` alone when iai-callgrind kept no earlier run.
        let new = ir.get("Both").map_or(&ir["Left"], |both| &both[0]);
        let n = new["Int"]
            .as_u64()
            .ok_or_else(|| format!("{module} {id}: no Ir count in {ir}"))?;
        counts.insert(format!("{module}::{id}"), n);
    }
    if counts.is_empty() {
        return Err("no bench summary in the output".into());
    }
    Ok(counts)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The iai-callgrind version this crate pins (`=X.Y.Z` in its Cargo.toml).
fn pinned_iai_version() -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let spec = &doc["dev-dependencies"]["iai-callgrind"];
    let version = spec.as_str().or_else(|| spec["version"].as_str()).unwrap();
    version.trim_start_matches('=').to_owned()
}

/// The runner's version: it has no `--version`, but started without arguments it fails
/// with "… Detected version of iai-callgrind-runner is X.Y.Z. …".
fn runner_version(runner: &Path) -> Option<String> {
    let out = Command::new(runner).output().ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let (_, rest) = text.split_once("Detected version of iai-callgrind-runner is ")?;
    let version = rest.split_whitespace().next()?.trim_end_matches('.');
    Some(version.to_owned())
}

/// valgrind's version, or why the gate cannot run here.
fn tools() -> Result<String, String> {
    let want = pinned_iai_version();
    let install = format!(
        "install valgrind (apt-get install valgrind) and \
         `cargo install iai-callgrind-runner --version {want} --locked`, as .ci/run does"
    );
    let valgrind = on_path("valgrind")
        .and_then(|v| Command::new(v).arg("--version").output().ok())
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .ok_or_else(|| format!("valgrind is not installed: {install}"))?;
    // The benches find the runner the same way (IAI_CALLGRIND_RUNNER, else PATH).
    let runner = std::env::var_os("IAI_CALLGRIND_RUNNER")
        .map(PathBuf::from)
        .or_else(|| on_path("iai-callgrind-runner"))
        .ok_or_else(|| format!("iai-callgrind-runner is not installed: {install}"))?;
    match runner_version(&runner) {
        Some(v) if v == want => Ok(valgrind),
        found => Err(format!(
            "{} is version {}, the benches need {want}: {install}",
            runner.display(),
            found.as_deref().unwrap_or("unknown")
        )),
    }
}

/// The target dir this test was built in, where the nested `cargo bench` builds too (whether
/// the outer one came from `CARGO_TARGET_DIR`, `--target-dir` or the default). Cargo has
/// released its build lock by the time tests run, so the nested build does not wait on it.
fn target_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target dir>/tmp` for integration tests.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).to_path_buf()
}

/// Builds and runs `iai.rs` under callgrind; its instruction counts.
fn run_benches() -> Counts {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["bench", "-p", "latlab-benches", "--bench", "iai", "--"])
        .arg("--output-format=json")
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO_TERM_COLOR", "never")
        .env("IAI_CALLGRIND_COLOR", "never");
    // Counted the same way whatever the caller's iai-callgrind settings.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("IAI_CALLGRIND_") && key != "IAI_CALLGRIND_RUNNER" {
            cmd.env_remove(&*key);
        }
    }
    let out = cmd.output().expect("cargo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "cargo bench -p latlab-benches --bench iai failed ({}):\n{stderr}",
        out.status
    );
    parse_summaries(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("reading iai-callgrind's summaries: {e}\n{stderr}"))
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// When, at which commit and with which tools the figures were taken.
fn provenance(valgrind: &str) -> String {
    let unknown = || "unknown".to_owned();
    let date = command_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(unknown);
    let commit = command_line("git", &["describe", "--always", "--dirty"]).unwrap_or_else(unknown);
    // The rustc beside the cargo that runs the benches.
    let rustc = std::env::var_os("CARGO")
        .map(|c| PathBuf::from(c).with_file_name("rustc"))
        .filter(|r| r.is_file())
        .map_or_else(|| "rustc".to_owned(), |r| r.display().to_string());
    let rustc = command_line(&rustc, &["--version"]).unwrap_or_else(unknown);
    format!(
        "{date}, commit {commit}, {rustc}, {valgrind}, iai-callgrind {}",
        pinned_iai_version()
    )
}

#[test]
fn instruction_counts_stay_within_the_limit_of_the_committed_figures() {
    let valgrind = match tools() {
        Ok(v) => v,
        Err(why) => {
            assert!(
                std::env::var("LATLAB_REQUIRE_TOOLS").as_deref() != Ok("1"),
                "the instruction-count gate cannot run: {why}"
            );
            eprintln!("skipping the instruction-count gate: {why}");
            return;
        }
    };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(BASELINE_FILE);
    let committed = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| parse_baseline(&text));
    let now = run_benches();

    if std::env::var("LATLAB_IAI_BLESS").as_deref() == Ok("1") {
        let limit_pct = committed.map_or(DEFAULT_LIMIT_PCT, |b| b.limit_pct);
        let blessed = Baseline {
            limit_pct,
            counts: now,
        };
        std::fs::write(&path, render_baseline(&blessed, &provenance(&valgrind))).unwrap();
        println!("wrote {}:", path.display());
        print!("{}", table(&judge(&blessed, &blessed.counts), limit_pct));
        return;
    }

    let baseline = committed.unwrap_or_else(|e| {
        panic!(
            "{}: {e} (LATLAB_IAI_BLESS=1 cargo test -p latlab-benches --test iai_gate writes it)",
            path.display()
        )
    });
    let rows = judge(&baseline, &now);
    let report = table(&rows, baseline.limit_pct);
    println!("{report}");
    assert!(
        !rows.iter().any(|r| r.verdict.fails()),
        "instruction counts against {}:\n{report}\nA count that grew on purpose, a new bench or \
         a removed one: LATLAB_IAI_BLESS=1 cargo test -p latlab-benches --test iai_gate, and \
         commit the file.",
        path.display()
    );
}

mod rules {
    use super::*;

    fn baseline(counts: &[(&str, u64)]) -> Baseline {
        Baseline {
            limit_pct: 10.0,
            counts: counts.iter().map(|(b, n)| (b.to_string(), *n)).collect(),
        }
    }

    fn verdicts(base: &Baseline, now: &[(&str, u64)]) -> Vec<(String, Verdict)> {
        let now = now.iter().map(|(b, n)| (b.to_string(), *n)).collect();
        judge(base, &now)
            .into_iter()
            .map(|r| (r.bench, r.verdict))
            .collect()
    }

    #[test]
    fn a_count_fails_only_past_the_limit() {
        let base = baseline(&[("a", 1000), ("b", 1000), ("c", 1000)]);
        assert_eq!(
            verdicts(&base, &[("a", 1100), ("b", 1101), ("c", 10)]),
            [
                ("a".into(), Verdict::Within),
                ("b".into(), Verdict::Regressed),
                ("c".into(), Verdict::Within)
            ]
        );
    }

    #[test]
    fn a_bench_without_a_figure_or_a_figure_without_a_bench_fails() {
        let base = baseline(&[("gone", 5)]);
        assert_eq!(
            verdicts(&base, &[("new", 5)]),
            [
                ("gone".into(), Verdict::NotRun),
                ("new".into(), Verdict::NoFigure)
            ]
        );
    }

    #[test]
    fn a_blessed_file_reads_back() {
        let base = baseline(&[("parse::openai_parse_event::sse_token_event", 16_362)]);
        let text = render_baseline(&base, "2026-11-25, commit abc");
        assert_eq!(parse_baseline(&text).unwrap(), base);
    }

    #[test]
    fn summaries_give_the_new_count_of_each_bench() {
        let line = |id: &str, metrics: &str| {
            format!(
                r#"{{"version":"6","module_path":"iai::g::f","id":"{id}","profiles":[{{"tool":"Callgrind","summaries":{{"total":{{"summary":{{"Callgrind":{{"Ir":{{"metrics":{metrics}}}}}}}}}}}}}]}}"#
            )
        };
        let stdout = [
            line("first_run", r#"{"Left":{"Int":7}}"#),
            line("again", r#"{"Both":[{"Int":9},{"Int":8}]}"#),
        ]
        .join("\n");
        let counts = parse_summaries(&stdout).unwrap();
        assert_eq!(counts["g::f::first_run"], 7);
        assert_eq!(counts["g::f::again"], 9);
        assert!(parse_summaries(&stdout.replace(r#""6""#, r#""7""#)).is_err());
    }
}
