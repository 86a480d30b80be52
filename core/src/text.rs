//! Text helpers for the reply path: splitting a streamed reply into speakable sentences.

/// Accumulates streamed tokens and hands out complete sentences as soon as they end.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    pending: String,
}

impl SentenceSplitter {
    /// A new, empty splitter.
    pub fn new() -> SentenceSplitter {
        SentenceSplitter::default()
    }

    /// Adds a token; returns the sentences it completed.
    ///
    /// A sentence ends at `.`, `!` or `?` followed by whitespace; the boundary is only
    /// known once the next token starts, which is how a streaming agent sees it too.
    pub fn push(&mut self, token: &str) -> Vec<String> {
        self.pending.push_str(token);
        let mut out = Vec::new();
        loop {
            let bytes = self.pending.as_bytes();
            let cut = (0..bytes.len().saturating_sub(1)).find(|&i| {
                matches!(bytes[i], b'.' | b'!' | b'?') && bytes[i + 1].is_ascii_whitespace()
            });
            match cut {
                Some(i) => {
                    let sentence = self.pending[..=i].trim().to_string();
                    self.pending = self.pending[i + 1..].to_string();
                    if !sentence.is_empty() {
                        out.push(sentence);
                    }
                }
                None => break,
            }
        }
        out
    }

    /// The text left when the stream ends (the last sentence, possibly unterminated).
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_terminal_punctuation_followed_by_space() {
        let mut s = SentenceSplitter::new();
        let mut got = Vec::new();
        for t in ["Sure", ".", " Which", " day", "?", " At 7.30", " pm", "."] {
            got.extend(s.push(t));
        }
        assert_eq!(got, vec!["Sure.", "Which day?"]);
        assert_eq!(s.finish().as_deref(), Some("At 7.30 pm."));
        assert_eq!(s.finish(), None);
    }
}
