//! Grouping rows by several text keys, as plain Rust over slices: each key column becomes
//! small dense integer codes and the codes fold into one dense group id per row, chunk by
//! chunk.
//!
//! polars' own multi-key `group_by` spends seconds on 10 M rows of five string keys (it
//! hashes row-encoded keys; see `docs/performance.md`), while latlab's keys repeat a
//! handful of values. The caller codes each row cheaply where it can (the analysis compares
//! Arrow string views first) and asks a [`Coder`] only for values it has not seen.

use std::collections::HashMap;

/// Dense codes for the distinct values of one column, numbered in order of first appearance.
/// It keeps the values, so one coder can code a column read in several chunks.
#[derive(Debug, Default)]
pub struct Coder {
    values: Vec<String>,
    index: HashMap<String, u32>,
    last: Option<u32>,
}

impl Coder {
    /// The code of `value`, assigning the next one if it is new.
    #[inline]
    pub fn code(&mut self, value: &str) -> u32 {
        if let Some(code) = self.last
            && self.values[code as usize] == value
        {
            return code;
        }
        let code = match self.index.get(value) {
            Some(&code) => code,
            None => {
                let code = self.values.len() as u32;
                self.index.insert(value.to_string(), code);
                self.values.push(value.to_string());
                code
            }
        };
        self.last = Some(code);
        code
    }

    /// The distinct values, indexed by code.
    pub fn values(&self) -> &[String] {
        &self.values
    }
}

/// Dense group ids for rows keyed by several coded columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    /// Each row's group, `0..keys.len()`, numbered in order of first appearance.
    pub ids: Vec<u32>,
    /// Each group's key: its code in every column, in column order.
    pub keys: Vec<Vec<u32>>,
}

/// Folds coded columns (each `(codes, distinct count)`, all the same length) into one dense
/// group id per row.
pub fn fold(columns: &[(&[u32], usize)]) -> Groups {
    let rows = columns.first().map_or(0, |(c, _)| c.len());
    let mut ids = vec![0u32; rows];
    let mut keys: Vec<Vec<u32>> = vec![Vec::new()];
    for &(codes, cardinality) in columns {
        assert_eq!(codes.len(), rows, "every key column has one code per row");
        let cardinality = cardinality.max(1) as u64;
        let combined = keys.len() as u64 * cardinality;
        let mut next_keys: Vec<Vec<u32>> = Vec::new();
        let mut assign = |combined_id: u64| {
            let group = (combined_id / cardinality) as usize;
            let code = (combined_id % cardinality) as u32;
            let mut key = keys[group].clone();
            key.push(code);
            next_keys.push(key);
            (next_keys.len() - 1) as u32
        };
        if combined <= 1 << 22 {
            // A dense table from (group so far, code) to the new group.
            let mut table = vec![u32::MAX; combined as usize];
            for (id, &code) in ids.iter_mut().zip(codes) {
                let c = u64::from(*id) * cardinality + u64::from(code);
                let slot = &mut table[c as usize];
                if *slot == u32::MAX {
                    *slot = assign(c);
                }
                *id = *slot;
            }
        } else {
            let mut table: HashMap<u64, u32> = HashMap::new();
            for (id, &code) in ids.iter_mut().zip(codes) {
                let c = u64::from(*id) * cardinality + u64::from(code);
                *id = *table.entry(c).or_insert_with(|| assign(c));
            }
        }
        keys = next_keys;
    }
    if rows == 0 {
        keys.clear();
    }
    Groups { ids, keys }
}

/// Group ids that stay the same across chunks of rows: each chunk is folded on its own
/// ([`fold`]) and its groups are looked up, by key, among those of the chunks before.
#[derive(Debug, Default)]
pub struct ChunkedGroups {
    index: HashMap<Vec<u32>, u32>,
    /// Each group's key: its code in every column, in column order (codes must come from
    /// coders that live across the chunks).
    pub keys: Vec<Vec<u32>>,
}

impl ChunkedGroups {
    /// The group of each row of one chunk, numbered across all chunks in order of first
    /// appearance; writes them into `ids` (cleared first).
    pub fn add(&mut self, columns: &[(&[u32], usize)], ids: &mut Vec<u32>) {
        let local = fold(columns);
        let global: Vec<u32> = local
            .keys
            .into_iter()
            .map(|key| {
                let next = self.keys.len() as u32;
                *self.index.entry(key.clone()).or_insert_with(|| {
                    self.keys.push(key);
                    next
                })
            })
            .collect();
        ids.clear();
        ids.extend(local.ids.iter().map(|&id| global[id as usize]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_first_appearance_past_the_linear_limit() {
        let words: Vec<String> = (0..40).map(|i| format!("w{}", i % 20)).collect();
        let mut coder = Coder::default();
        let codes: Vec<u32> = words.iter().map(|w| coder.code(w)).collect();
        let values = coder.values();
        assert_eq!(values.len(), 20);
        for (w, c) in words.iter().zip(&codes) {
            assert_eq!(&values[*c as usize], w);
        }
        assert_eq!(codes[..20], (0..20).collect::<Vec<u32>>()[..]);
        assert_eq!(codes[20..], codes[..20]);
    }

    #[test]
    fn folding_groups_equal_keys_and_only_those() {
        let a = [0, 0, 1, 1, 0, 2];
        let b = [0, 1, 0, 1, 0, 0];
        let g = fold(&[(&a, 3), (&b, 2)]);
        assert_eq!(g.ids, vec![0, 1, 2, 3, 0, 4]);
        assert_eq!(
            g.keys,
            vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1], vec![2, 0]]
        );
        // Large cardinalities go through the hashed table and agree.
        let big: Vec<u32> = (0..6).map(|i| i * 1_000_000).collect();
        let g = fold(&[(&big, 6_000_000), (&big, 6_000_000), (&b, 2)]);
        assert_eq!(g.ids, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(fold(&[(&[], 0)]).keys, Vec::<Vec<u32>>::new());
    }

    #[test]
    fn chunked_groups_agree_with_one_fold() {
        let a = [0, 0, 1, 1, 0, 2, 2, 1];
        let b = [0, 1, 0, 1, 0, 0, 1, 1];
        let whole = fold(&[(&a, 3), (&b, 2)]);
        let mut chunked = ChunkedGroups::default();
        let (mut ids, mut all) = (Vec::new(), Vec::new());
        for range in [0..3, 3..4, 4..8] {
            let (a, b) = (&a[range.clone()], &b[range]);
            chunked.add(&[(a, 3), (b, 2)], &mut ids);
            all.extend_from_slice(&ids);
        }
        assert_eq!(all, whole.ids);
        assert_eq!(chunked.keys, whole.keys);
    }
}
