//! Input mutations for the parsers' property tests, shared by every crate's `*_props` tests
//! (included with `#[path]`, so it needs only proptest, serde_json and toml).
//!
//! Random bytes rarely get past a parser's first check, so besides them the tests start from a
//! valid input and mutate it: [`TreeEdit`]s change a parsed JSON or TOML tree (a value
//! replaced by one of another type, a key removed, renamed or added, an array grown), then
//! [`ByteEdit`]s damage its text (bytes inserted, deleted, overwritten, repeated, the end cut
//! off). Keys and strings are drawn from the format's own vocabulary half the time, so the
//! mutated input keeps reaching the checks behind the first ones.
#![allow(dead_code)] // each test binary uses part of it

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// `default` cases, or `PROPTEST_CASES` when set (to run more, e.g. `PROPTEST_CASES=100000`).
pub fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        // Inputs are cheap to make; a rejected one (prop_assume) is simply redrawn.
        max_global_rejects: cases.saturating_mul(4).max(1024),
        // A failing case's seed goes beside the test file (`name.proptest-regressions`) and
        // is replayed first from then on; integration tests have no lib.rs for the default.
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// One damage done to an input's bytes. Positions are taken modulo the length, so every edit
/// applies to every input.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Delete up to `n` bytes from a position.
    Delete(usize, usize),
    /// Overwrite bytes from a position.
    Overwrite(usize, Vec<u8>),
    /// Repeat up to `n` bytes from a position right after themselves.
    Repeat(usize, usize),
    /// Cut the input at a position.
    Truncate(usize),
}

/// Bytes that matter to text formats: quotes, brackets, separators, escapes, line ends,
/// a NUL, and the start of a multi-byte UTF-8 character.
const SYNTAX_BYTES: &[u8] = b"\"'{}[]=:,.\\\n\r\t #-+0123456789eE\x00\xc3\xa9";

fn some_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        prop::collection::vec(prop::sample::select(SYNTAX_BYTES), 1..4),
    ]
}

/// Up to `max` byte edits.
pub fn byte_edits(max: usize) -> impl Strategy<Value = Vec<ByteEdit>> {
    let edit = prop_oneof![
        3 => (any::<usize>(), some_bytes()).prop_map(|(at, b)| ByteEdit::Insert(at, b)),
        3 => (any::<usize>(), 1..16usize).prop_map(|(at, n)| ByteEdit::Delete(at, n)),
        3 => (any::<usize>(), some_bytes()).prop_map(|(at, b)| ByteEdit::Overwrite(at, b)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(at, n)| ByteEdit::Repeat(at, n)),
        1 => any::<usize>().prop_map(ByteEdit::Truncate),
    ];
    prop::collection::vec(edit, 0..=max)
}

/// No byte edits two times in three, else up to `max`: after tree edits, so that most inputs
/// stay well-formed and reach the checks behind the syntax.
pub fn few_byte_edits(max: usize) -> impl Strategy<Value = Vec<ByteEdit>> {
    prop_oneof![2 => Just(Vec::new()), 1 => byte_edits(max)]
}

/// Applies `edits` in order.
pub fn apply_bytes(mut bytes: Vec<u8>, edits: &[ByteEdit]) -> Vec<u8> {
    for edit in edits {
        let at = |i: usize, len: usize| i % (len + 1);
        match edit {
            ByteEdit::Insert(i, b) => {
                let i = at(*i, bytes.len());
                bytes.splice(i..i, b.iter().copied());
            }
            ByteEdit::Delete(i, n) => {
                let i = at(*i, bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            ByteEdit::Overwrite(i, b) => {
                let i = at(*i, bytes.len());
                for (k, byte) in b.iter().enumerate() {
                    match bytes.get_mut(i + k) {
                        Some(slot) => *slot = *byte,
                        None => bytes.push(*byte),
                    }
                }
            }
            ByteEdit::Repeat(i, n) => {
                let i = at(*i, bytes.len());
                let end = (i + n).min(bytes.len());
                let piece: Vec<u8> = bytes[i..end].to_vec();
                bytes.splice(end..end, piece);
            }
            ByteEdit::Truncate(i) => {
                let i = at(*i, bytes.len());
                bytes.truncate(i);
            }
        }
    }
    bytes
}

/// Applies `edits` to a text and gives text back (invalid UTF-8 replaced, as a reader of
/// text would).
pub fn apply_text(text: &str, edits: &[ByteEdit]) -> String {
    String::from_utf8_lossy(&apply_bytes(text.as_bytes().to_vec(), edits)).into_owned()
}

/// One change to a parsed tree. `node` picks a node (all nodes in document order, modulo
/// their count), so every edit applies to every tree.
#[derive(Debug, Clone)]
pub enum TreeEdit<V> {
    /// Replace the node by a value (often of another type).
    Replace { node: usize, value: V },
    /// Remove the node from its table or array.
    Remove { node: usize },
    /// Add a key to the node (a table) or an element (an array); else replace it by `value`.
    Add { node: usize, key: String, value: V },
    /// Rename the node's key in its table.
    Rename { node: usize, key: String },
}

/// A key: from `vocabulary` (the format's own field names) or made up.
pub fn key(vocabulary: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        3 => prop::sample::select(vocabulary).prop_map(str::to_string),
        1 => "[a-z_]{1,12}",
        1 => any::<String>(),
    ]
    .boxed()
}

/// A string: from `vocabulary`, a tricky one, or any.
pub fn word(vocabulary: &'static [&'static str]) -> BoxedStrategy<String> {
    const TRICKY: &[&str] = &[
        "",
        " ",
        "-",
        "_",
        "0",
        "-1",
        "nan",
        "inf",
        "p",
        "p0",
        "p100",
        "p99.999999",
        "pNaN",
        "pinf",
        "pcm_",
        "wav_0",
        "pcm_4294967296",
        "wav_18446744073709551616",
        "a_b_c",
        "[DONE]",
        "é",
        "\u{0}",
        "\u{202e}",
        "../../..",
        "true",
        "null",
    ];
    prop_oneof![
        3 => prop::sample::select(vocabulary).prop_map(str::to_string),
        2 => prop::sample::select(TRICKY).prop_map(str::to_string),
        1 => any::<String>(),
    ]
    .boxed()
}

/// Numbers at the edges of every type a field might have.
const EDGE_INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    7,
    255,
    256,
    1000,
    8000,
    16_000,
    65_535,
    65_536,
    i32::MAX as i64,
    i32::MIN as i64,
    u32::MAX as i64,
    u32::MAX as i64 + 1,
    i64::MAX,
    i64::MIN,
];
const EDGE_FLOATS: &[f64] = &[
    0.0,
    -0.0,
    0.5,
    1.0,
    -1.0,
    0.999_999,
    1e-300,
    5e-324,
    1e300,
    f64::MAX,
    f64::MIN,
    1e19,
    -1e19,
];

/// Any JSON value, nested a few levels, with strings and keys from `vocabulary`.
pub fn json_value(vocabulary: &'static [&'static str]) -> BoxedStrategy<serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(EDGE_INTS).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        prop::sample::select(EDGE_FLOATS).prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        word(vocabulary).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(vocabulary), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Any TOML value (datetimes, NaN and infinities included), nested a few levels.
pub fn toml_value(vocabulary: &'static [&'static str]) -> BoxedStrategy<toml::Value> {
    use toml::Value;
    const DATETIMES: &[&str] = &[
        "1979-05-27T07:32:00Z",
        "1979-05-27",
        "07:32:00",
        "0000-01-01T00:00:00",
    ];
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Boolean),
        prop::sample::select(EDGE_INTS).prop_map(Value::Integer),
        any::<i64>().prop_map(Value::Integer),
        prop::sample::select(EDGE_FLOATS).prop_map(Value::Float),
        prop::sample::select(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY][..])
            .prop_map(Value::Float),
        any::<f64>().prop_map(Value::Float),
        word(vocabulary).prop_map(Value::String),
        prop::sample::select(DATETIMES)
            .prop_map(|d| Value::Datetime(d.parse().expect("a valid TOML datetime"))),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(vocabulary), inner), 0..4)
                .prop_map(|kv| Value::Table(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Up to `max` tree edits with values from `value`.
pub fn tree_edits<V: Clone + std::fmt::Debug + 'static>(
    max: usize,
    value: BoxedStrategy<V>,
    vocabulary: &'static [&'static str],
) -> impl Strategy<Value = Vec<TreeEdit<V>>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), value.clone()).prop_map(|(node, value)| TreeEdit::Replace { node, value }),
        2 => any::<usize>().prop_map(|node| TreeEdit::Remove { node }),
        2 => (any::<usize>(), key(vocabulary), value)
            .prop_map(|(node, key, value)| TreeEdit::Add { node, key, value }),
        1 => (any::<usize>(), key(vocabulary)).prop_map(|(node, key)| TreeEdit::Rename { node, key }),
    ];
    prop::collection::vec(edit, 0..=max)
}

/// A step from a node to one of its children.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// A tree the edits can walk: JSON values and TOML values.
trait Tree: Clone {
    fn children(&self) -> Vec<Step>;
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self>;
    fn remove(&mut self, step: &Step);
    fn add(&mut self, key: String, value: Self) -> bool;
    fn rename(&mut self, from: &str, to: String);
}

impl Tree for serde_json::Value {
    fn children(&self) -> Vec<Step> {
        match self {
            serde_json::Value::Object(m) => m.keys().cloned().map(Step::Key).collect(),
            serde_json::Value::Array(a) => (0..a.len()).map(Step::Index).collect(),
            _ => Vec::new(),
        }
    }
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match (self, step) {
            (serde_json::Value::Object(m), Step::Key(k)) => m.get_mut(k),
            (serde_json::Value::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        }
    }
    fn remove(&mut self, step: &Step) {
        match (self, step) {
            (serde_json::Value::Object(m), Step::Key(k)) => {
                m.remove(k);
            }
            (serde_json::Value::Array(a), Step::Index(i)) if *i < a.len() => {
                a.remove(*i);
            }
            _ => {}
        }
    }
    fn add(&mut self, key: String, value: Self) -> bool {
        match self {
            serde_json::Value::Object(m) => {
                m.insert(key, value);
                true
            }
            serde_json::Value::Array(a) => {
                a.push(value);
                true
            }
            _ => false,
        }
    }
    fn rename(&mut self, from: &str, to: String) {
        if let serde_json::Value::Object(m) = self
            && let Some(v) = m.remove(from)
        {
            m.insert(to, v);
        }
    }
}

impl Tree for toml::Value {
    fn children(&self) -> Vec<Step> {
        match self {
            toml::Value::Table(m) => m.keys().cloned().map(Step::Key).collect(),
            toml::Value::Array(a) => (0..a.len()).map(Step::Index).collect(),
            _ => Vec::new(),
        }
    }
    fn child_mut(&mut self, step: &Step) -> Option<&mut Self> {
        match (self, step) {
            (toml::Value::Table(m), Step::Key(k)) => m.get_mut(k),
            (toml::Value::Array(a), Step::Index(i)) => a.get_mut(*i),
            _ => None,
        }
    }
    fn remove(&mut self, step: &Step) {
        match (self, step) {
            (toml::Value::Table(m), Step::Key(k)) => {
                m.remove(k);
            }
            (toml::Value::Array(a), Step::Index(i)) if *i < a.len() => {
                a.remove(*i);
            }
            _ => {}
        }
    }
    fn add(&mut self, key: String, value: Self) -> bool {
        match self {
            toml::Value::Table(m) => {
                m.insert(key, value);
                true
            }
            toml::Value::Array(a) => {
                a.push(value);
                true
            }
            _ => false,
        }
    }
    fn rename(&mut self, from: &str, to: String) {
        if let toml::Value::Table(m) = self
            && let Some(v) = m.remove(from)
        {
            m.insert(to, v);
        }
    }
}

/// Every node's path from the root, in document order (the root is the empty path).
fn paths<T: Tree>(root: &mut T) -> Vec<Vec<Step>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < out.len() {
        let path = out[i].clone();
        if let Some(node) = walk(root, &path) {
            for step in node.children() {
                let mut child = path.clone();
                child.push(step);
                out.push(child);
            }
        }
        i += 1;
    }
    out
}

fn walk<'a, T: Tree>(root: &'a mut T, path: &[Step]) -> Option<&'a mut T> {
    let mut node = root;
    for step in path {
        node = node.child_mut(step)?;
    }
    Some(node)
}

fn apply_tree<T: Tree>(root: &mut T, edits: &[TreeEdit<T>]) {
    for edit in edits {
        let all = paths(root);
        let pick = |node: usize| all[node % all.len()].clone();
        match edit {
            TreeEdit::Replace { node, value } => {
                if let Some(n) = walk(root, &pick(*node)) {
                    *n = value.clone();
                }
            }
            TreeEdit::Remove { node } => {
                let path = pick(*node);
                if let Some((last, parent)) = path.split_last()
                    && let Some(p) = walk(root, parent)
                {
                    p.remove(last);
                }
            }
            TreeEdit::Add { node, key, value } => {
                if let Some(n) = walk(root, &pick(*node))
                    && !n.add(key.clone(), value.clone())
                {
                    *n = value.clone();
                }
            }
            TreeEdit::Rename { node, key } => {
                let path = pick(*node);
                if let Some((Step::Key(last), parent)) = path.split_last()
                    && let Some(p) = walk(root, parent)
                {
                    p.rename(last, key.clone());
                }
            }
        }
    }
}

/// Applies tree edits to a JSON value.
pub fn apply_json(value: &mut serde_json::Value, edits: &[TreeEdit<serde_json::Value>]) {
    apply_tree(value, edits);
}

/// Applies tree edits to a TOML document; the root stays a table (a TOML document is one).
pub fn apply_toml(table: &mut toml::Table, edits: &[TreeEdit<toml::Value>]) {
    let mut root = toml::Value::Table(std::mem::take(table));
    apply_tree(&mut root, edits);
    *table = match root {
        toml::Value::Table(t) => t,
        other => toml::Table::from_iter([("value".to_string(), other)]),
    };
}

/// A valid TOML text, parsed, edited as a tree and written back; `None` when the edited tree
/// has no TOML text (toml cannot write it).
pub fn mutate_toml_text(valid: &str, edits: &[TreeEdit<toml::Value>]) -> Option<String> {
    let mut table: toml::Table = valid.parse().expect("the seed input is valid TOML");
    apply_toml(&mut table, edits);
    toml::to_string(&table).ok()
}

/// A valid JSON text, parsed, edited as a tree and written back on one line.
pub fn mutate_json_text(valid: &str, edits: &[TreeEdit<serde_json::Value>]) -> String {
    let mut value: serde_json::Value =
        serde_json::from_str(valid).expect("the seed input is valid JSON");
    apply_json(&mut value, edits);
    value.to_string()
}

/// Cuts `bytes` into consecutive chunks at the given cut points (taken modulo the length),
/// as a network read might deliver them. Empty chunks are kept: a read may return none.
pub fn split_at_cuts(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::with_capacity(points.len() + 1);
    let mut start = 0;
    for p in points {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out.push(bytes[start..].to_vec());
    out
}

/// Writes a test input file: removes it first, since truncating an existing file costs
/// milliseconds on some filesystems (overlayfs) where creating one does not.
pub fn rewrite(path: &std::path::Path, bytes: impl AsRef<[u8]>) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).expect("a test input file");
}
