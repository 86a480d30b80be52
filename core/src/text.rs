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
    /// A sentence ends at `.`, `!` or `?` followed by whitespace and then a character that is
    /// not lower-case (so "7 p.m. on Friday" stays whole). The boundary is known once the next
    /// word starts, which is how a streaming agent sees it too.
    pub fn push(&mut self, token: &str) -> Vec<String> {
        self.pending.push_str(token);
        let mut out = Vec::new();
        while let Some(end) = sentence_end(&self.pending) {
            let sentence = self.pending[..end].trim().to_string();
            self.pending = self.pending[end..].to_string();
            if !sentence.is_empty() {
                out.push(sentence);
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

/// Byte index just after the first complete sentence's terminal punctuation.
fn sentence_end(text: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let mut rest = chars[i + 1..].iter().map(|&(_, c)| c);
        if !rest.next().is_some_and(char::is_whitespace) {
            continue;
        }
        match rest.find(|c| !c.is_whitespace()) {
            Some(next) if next.is_lowercase() => continue,
            Some(_) => return Some(at + c.len_utf8()),
            None => return None, // wait for the next word
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_terminal_punctuation_followed_by_space() {
        let mut s = SentenceSplitter::new();
        let mut got = Vec::new();
        for t in [
            "Sure", ".", " Which", " day", "?", " At 7", " p.m.", " on", " Friday", ".",
        ] {
            got.extend(s.push(t));
        }
        assert_eq!(got, vec!["Sure.", "Which day?"]);
        assert_eq!(s.finish().as_deref(), Some("At 7 p.m. on Friday."));
        assert_eq!(s.finish(), None);
    }
}
