//! A scenario's `[agent]`: the user's running voice agent, called as its caller instead of
//! the pipeline latlab builds from STT, LLM and TTS clients (`docs/agents.md`).
//!
//! This module turns the scenario's section into each profile's [`AgentTarget`], describes it
//! in the manifest without secrets, and after the run lines the agent's own per-turn figures
//! (its self-report) up with latlab's caller-side turns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use latlab_core::agent::{AgentTarget, Protocol};
use latlab_core::backends::{ApiKey, public_url};
use latlab_core::profile::Profile;
use latlab_core::timing::TurnTimeline;
use latlab_results::agent::{AgentFacts, SelfReportFacts, SelfReportLine};
use serde::{Deserialize, Serialize};

/// The `url` that means latlab's emulated agent.
pub const EMULATOR: &str = "emulator";

/// `[agent]` in a scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Its name in results (default `agent`).
    #[serde(default = "default_name")]
    pub name: String,
    /// The WebSocket URL to dial, or `emulator` for latlab's emulated agent.
    pub url: String,
    /// `twilio` (default) or `pcm`.
    #[serde(default)]
    pub protocol: ProtocolSpec,
    /// The PCM protocol's sample rate (Hz; Twilio is always 8000).
    #[serde(default = "default_rate")]
    pub sample_rate: u32,
    /// Environment variable holding a key, sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// How long dialing may take (ms).
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: u64,
    /// How long after the caller's end of speech a turn without an audible reply is dead air.
    #[serde(default = "default_answer_ms")]
    pub answer_timeout_ms: u64,
    /// Each turn after the first starts this long after the previous reply became audible,
    /// so the caller talks over the agent (interruptions). Default: the recorded timing.
    #[serde(default)]
    pub barge_in_after_ms: Option<u64>,
    /// The agent's own per-turn figures, as JSON lines (`docs/agents.md`): a file path
    /// (relative to the scenario file), or `emulator` for the emulated agent's.
    #[serde(default)]
    pub self_report: Option<String>,
    /// Per-profile changes: `[agent.profile.NAME]` with `url`, `barge_in_after_ms`,
    /// `answer_timeout_ms` (e.g. two builds of the agent, or barge-in on and off).
    #[serde(default)]
    pub profile: BTreeMap<String, AgentOverride>,
}

/// What a profile may change about the agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentOverride {
    /// Another URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Another barge-in timing (0 turns it off).
    #[serde(default)]
    pub barge_in_after_ms: Option<u64>,
    /// Another answer timeout.
    #[serde(default)]
    pub answer_timeout_ms: Option<u64>,
}

/// The media-stream protocol, as a scenario names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolSpec {
    /// Twilio Media Streams.
    #[default]
    Twilio,
    /// Binary 16-bit PCM.
    Pcm,
}

fn default_name() -> String {
    "agent".into()
}
fn default_rate() -> u32 {
    16_000
}
fn default_connect_ms() -> u64 {
    5_000
}
fn default_answer_ms() -> u64 {
    5_000
}

impl AgentSpec {
    /// Checks the section; the error names the key.
    pub fn validate(&self, profiles: &[Profile]) -> Result<(), (String, String)> {
        if self.name.is_empty() || self.name.len() > 64 || self.name.chars().any(char::is_control) {
            return Err(("name".into(), "must be 1–64 printable characters".into()));
        }
        let check_url = |url: &str| -> Result<(), String> {
            if url == EMULATOR {
                return Ok(());
            }
            match url::Url::parse(url) {
                Ok(u) if u.scheme() == "ws" || u.scheme() == "wss" => Ok(()),
                Ok(u) => Err(format!(
                    "{:?} is a {} URL: an agent is dialled over ws:// or wss://",
                    public_url(url),
                    u.scheme()
                )),
                Err(e) => Err(format!("{:?} is not a URL: {e}", public_url(url))),
            }
        };
        check_url(&self.url).map_err(|m| ("url".to_string(), m))?;
        if !(8_000..=48_000).contains(&self.sample_rate) {
            return Err((
                "sample_rate".into(),
                format!("{} Hz is not in 8000..=48000", self.sample_rate),
            ));
        }
        if !(1..=600_000).contains(&self.answer_timeout_ms) {
            return Err((
                "answer_timeout_ms".into(),
                "must be in 1..=600000 ms".into(),
            ));
        }
        if self.connect_timeout_ms == 0 {
            return Err(("connect_timeout_ms".into(), "must be at least 1 ms".into()));
        }
        if let Some(path) = &self.self_report
            && path.is_empty()
        {
            return Err(("self_report".into(), "give a file or `emulator`".into()));
        }
        for (name, o) in &self.profile {
            if !profiles.iter().any(|p| &p.name == name) {
                return Err((
                    format!("profile.{name}"),
                    format!(
                        "no profile named {name:?} (profiles: {})",
                        profiles
                            .iter()
                            .map(|p| p.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            if let Some(u) = &o.url {
                check_url(u).map_err(|m| (format!("profile.{name}.url"), m))?;
            }
        }
        Ok(())
    }

    /// Whether any profile dials the emulated agent.
    pub fn uses_emulator(&self) -> bool {
        self.url == EMULATOR
            || self
                .profile
                .values()
                .any(|o| o.url.as_deref() == Some(EMULATOR))
    }

    /// The agent a profile calls; `emulator` is the emulated agent's base URL (`ws://…`).
    pub fn for_profile(
        &self,
        profile: &str,
        emulator: Option<&str>,
    ) -> anyhow::Result<AgentTarget> {
        let o = self.profile.get(profile).cloned().unwrap_or_default();
        let url = o.url.unwrap_or_else(|| self.url.clone());
        let protocol = match self.protocol {
            ProtocolSpec::Twilio => Protocol::Twilio,
            ProtocolSpec::Pcm => Protocol::Pcm,
        };
        let url = if url == EMULATOR {
            let base = emulator.ok_or_else(|| {
                anyhow::anyhow!("the agent is the emulator, which is not running")
            })?;
            match protocol {
                Protocol::Twilio => format!("{base}/twilio"),
                Protocol::Pcm => format!("{base}/pcm?rate={}", self.sample_rate),
            }
        } else {
            url
        };
        let api_key = match &self.api_key_env {
            Some(var) => Some(ApiKey::from_env(var).ok_or_else(|| {
                anyhow::anyhow!("[agent] api_key_env: environment variable {var} is not set")
            })?),
            None => None,
        };
        Ok(AgentTarget {
            name: self.name.clone(),
            url,
            protocol,
            pcm_rate: self.sample_rate,
            api_key,
            connect_timeout_ms: self.connect_timeout_ms,
            answer_timeout_ms: o.answer_timeout_ms.unwrap_or(self.answer_timeout_ms),
            barge_in_after_ms: o
                .barge_in_after_ms
                .or(self.barge_in_after_ms)
                .filter(|&ms| ms > 0),
        })
    }

    /// The manifest's description of the agent (the first profile's target).
    pub fn facts(&self, target: &AgentTarget) -> AgentFacts {
        AgentFacts {
            name: self.name.clone(),
            protocol: target.protocol.as_str().into(),
            url: target.public_url(),
            sample_rate: target.sample_rate(),
            answer_timeout_ms: target.answer_timeout_ms,
            barge_in_after_ms: target.barge_in_after_ms,
            self_report: None,
        }
    }
}

/// Where the self-report comes from.
#[derive(Debug, Clone)]
pub enum SelfReportSource {
    /// A JSON-lines file the agent wrote.
    File(PathBuf),
    /// The emulated agent's `GET /self-report` (its base `http://` URL).
    Emulator(String),
}

impl SelfReportSource {
    /// The source a scenario names, resolved against its folder.
    pub fn of(
        spec: &AgentSpec,
        scenario_dir: &Path,
        emulator_http: Option<String>,
    ) -> Option<Self> {
        match spec.self_report.as_deref()? {
            EMULATOR => emulator_http.map(SelfReportSource::Emulator),
            path => Some(SelfReportSource::File(scenario_dir.join(path))),
        }
    }

    /// Reads the lines; a line that does not parse is an error naming the source and line.
    pub async fn read(&self) -> anyhow::Result<(String, Vec<SelfReportLine>)> {
        let (name, text) = match self {
            SelfReportSource::File(path) => (
                path.display().to_string(),
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            ),
            SelfReportSource::Emulator(base) => {
                let url = format!("{base}/self-report");
                let text = reqwest::get(&url)
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| anyhow::anyhow!("{url}: {e}"))?
                    .text()
                    .await
                    .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
                (EMULATOR.to_string(), text)
            }
        };
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            lines.push(
                serde_json::from_str(line)
                    .map_err(|e| anyhow::anyhow!("{name}, line {}: {e}", i + 1))?,
            );
        }
        Ok((name, lines))
    }
}

/// Gives each turn the agent's own figure where the agent counted the call's turns as the
/// recording has them (same number of turns): the k-th turn it reported is latlab's turn k.
/// A call it counted differently (a false cutoff splits a turn; a missed turn merges two) is
/// left unaligned rather than guessed.
pub fn align(
    turns: &mut [TurnTimeline],
    lines: &[SelfReportLine],
    source: &str,
) -> SelfReportFacts {
    let mut by_call: BTreeMap<&str, BTreeMap<u32, &SelfReportLine>> = BTreeMap::new();
    for l in lines {
        by_call
            .entry(l.call_sid.as_str())
            .or_default()
            .insert(l.turn, l);
    }
    let mut ours: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, t) in turns.iter().enumerate() {
        ours.entry(latlab_core::agent::call_sid(
            &t.profile,
            &t.call,
            t.iteration,
        ))
        .or_default()
        .push(i);
    }
    let reporter = lines.first().map(|l| l.source.clone()).unwrap_or_default();
    let mut facts = SelfReportFacts {
        source: source.to_string(),
        reporter,
        lines: lines.len(),
        aligned_turns: 0,
        unaligned_calls: 0,
    };
    for (sid, reported) in &by_call {
        let Some(indices) = ours.get(*sid) else {
            continue;
        };
        let answered: Vec<usize> = indices.clone();
        if reported.len() != answered.len() || reported.keys().copied().ne(0..reported.len() as u32)
        {
            facts.unaligned_calls += 1;
            continue;
        }
        for (k, &i) in answered.iter().enumerate() {
            let line = reported[&(k as u32)];
            if let Some(agent) = turns[i].agent.as_mut() {
                agent.self_ns = Some((line.latency_ms * 1e6).round() as i64);
                facts.aligned_turns += 1;
            }
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use latlab_core::timing::AgentTurn;

    fn turn(call: &str, k: u32) -> TurnTimeline {
        TurnTimeline {
            profile: "p".into(),
            call: call.into(),
            turn: k,
            agent: Some(AgentTurn::default()),
            ..TurnTimeline::default()
        }
    }
    fn line(sid: &str, k: u32, ms: f64) -> SelfReportLine {
        SelfReportLine {
            call_sid: sid.into(),
            turn: k,
            source: "pipecat".into(),
            latency_ms: ms,
            stages: BTreeMap::new(),
        }
    }

    #[test]
    fn self_reports_align_by_turn_order_only_when_the_counts_agree() {
        let mut turns = vec![turn("a", 0), turn("a", 1), turn("b", 0), turn("b", 1)];
        let lines = vec![
            line("p/a#0", 0, 700.0),
            line("p/a#0", 1, 650.5),
            // The agent heard three turns in call b: a false cutoff split one.
            line("p/b#0", 0, 500.0),
            line("p/b#0", 1, 100.0),
            line("p/b#0", 2, 600.0),
        ];
        let facts = align(&mut turns, &lines, "bot.jsonl");
        assert_eq!(facts.aligned_turns, 2);
        assert_eq!(facts.unaligned_calls, 1);
        assert_eq!(facts.reporter, "pipecat");
        assert_eq!(turns[1].agent.as_ref().unwrap().self_ns, Some(650_500_000));
        assert_eq!(turns[2].agent.as_ref().unwrap().self_ns, None);
    }

    #[test]
    fn urls_are_checked_and_shown_without_secrets() {
        let spec: AgentSpec = toml::from_str(
            "url = \"wss://agent.example/ws?token=SECRET\"\nprotocol = \"pcm\"\nsample_rate = 16000",
        )
        .unwrap();
        spec.validate(&[]).unwrap();
        let t = spec.for_profile("p", None).unwrap();
        assert_eq!(t.public_url(), "wss://agent.example/ws");
        assert!(!format!("{:?}", spec.facts(&t)).contains("SECRET"));
        let bad: AgentSpec = toml::from_str("url = \"http://x/?token=SECRET\"").unwrap();
        let (key, message) = bad.validate(&[]).unwrap_err();
        assert_eq!(key, "url");
        assert!(
            !message.contains("SECRET") && message.contains("ws://"),
            "{message}"
        );
    }
}
