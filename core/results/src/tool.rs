//! A turn on which the LLM called a tool (OpenAI function calling): what it called, whether the
//! result came from the cache, and the second LLM round that spoke the result. Carried on
//! [`crate::span::TurnTimeline::tool`] (the `tool_*` and `llm2_*` columns of `turns.parquet`);
//! the `tool` span holds the tool stage's latency and its cache outcome.

use serde::{Deserialize, Serialize};

/// Where a tool's result came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheOutcome {
    /// The cache held a fresh result: the tool's API was not called.
    Hit,
    /// The cache had none (or a stale one): the API was called and its result stored.
    Miss,
    /// The profile has no cache (`tool_cache = "none"`).
    Off,
}

impl CacheOutcome {
    /// Every outcome.
    pub const ALL: [CacheOutcome; 3] = [CacheOutcome::Hit, CacheOutcome::Miss, CacheOutcome::Off];

    /// The name as written in results.
    pub const fn as_str(self) -> &'static str {
        match self {
            CacheOutcome::Hit => "hit",
            CacheOutcome::Miss => "miss",
            CacheOutcome::Off => "off",
        }
    }
}

impl std::str::FromStr for CacheOutcome {
    type Err = crate::span::UnknownName;
    fn from_str(s: &str) -> Result<CacheOutcome, Self::Err> {
        CacheOutcome::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| crate::span::UnknownName {
                what: "cache outcome",
                name: s.to_string(),
                expected: "hit, miss, off".into(),
            })
    }
}

/// The tool call of one turn. Times are ns since the run's epoch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolTurn {
    /// The function the LLM called.
    pub name: String,
    /// Its arguments as the LLM streamed them (a JSON object, as text).
    pub arguments: String,
    /// When the call was complete in the first round's stream: the tool stage's anchor.
    pub call_ns: Option<u64>,
    /// When the request went to the tool's API (none on a cache hit).
    pub sent_ns: Option<u64>,
    /// When the result was in hand (from the cache or the API).
    pub result_ns: Option<u64>,
    /// Where the result came from (none when the call never got that far).
    pub cache: Option<CacheOutcome>,
    /// The second LLM request (the conversation with the tool's result) was sent.
    pub llm2_request_sent_ns: Option<u64>,
    /// Its first content token: the spoken answer begins.
    pub llm2_first_token_ns: Option<u64>,
    /// Whether the call was the one the dataset expected (name and arguments), when it says.
    pub matched: Option<bool>,
}
