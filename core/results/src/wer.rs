//! Word error rate of a transcript against its reference, after the usual normalisation:
//! lower case, punctuation removed, numbers written as words ("4" and "four" are the same
//! word), so formatting differences between STT services do not count as errors.

/// Substitutions + deletions + insertions needed to turn `reference` into `hypothesis`,
/// and the number of reference words.
pub fn word_errors(reference: &str, hypothesis: &str) -> (u64, u64) {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    (edit_distance(&r, &h) as u64, r.len() as u64)
}

/// Word error rate: [`word_errors`] over the reference's words (0 for an empty reference
/// and hypothesis, 1 for an empty reference and anything heard). Above 1 when the
/// hypothesis inserts many words.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    match word_errors(reference, hypothesis) {
        (0, 0) => 0.0,
        (_, 0) => 1.0,
        (e, w) => e as f64 / w as f64,
    }
}

/// Normalised words: lower case; hyphens, dashes and slashes split words, and so does a
/// change between digits and letters ("7pm" is "7 pm"); other punctuation is dropped
/// ("p.m." is "pm", apostrophes inside words stay); numbers are spelled out.
pub fn normalize(text: &str) -> Vec<String> {
    let mut lowered = String::with_capacity(text.len() + 8);
    let mut last: Option<char> = None;
    for c in text.to_lowercase().chars() {
        let c = if matches!(c, '-' | '/' | '\u{2010}'..='\u{2015}') {
            ' '
        } else {
            c
        };
        if let Some(p) = last
            && p.is_alphanumeric()
            && c.is_alphanumeric()
            && p.is_ascii_digit() != c.is_ascii_digit()
        {
            lowered.push(' ');
        }
        if c.is_alphanumeric() || c.is_whitespace() {
            last = Some(c);
        }
        lowered.push(c);
    }
    let mut words = Vec::new();
    for raw in lowered.split_whitespace() {
        let word: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '\'')
            .collect();
        let word = word.trim_matches('\'').to_string();
        if word.is_empty() {
            continue;
        }
        match word.parse::<u64>() {
            Ok(n) if word.chars().all(|c| c.is_ascii_digit()) => words.extend(number_words(n)),
            _ => words.push(word),
        }
    }
    words
}

fn edit_distance(a: &[String], b: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(x != y))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// English words of a number ("48152" → forty eight thousand one hundred fifty two).
fn number_words(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    if n == 0 {
        out.push("zero".to_string());
        return out;
    }
    let scales = [
        (1_000_000_000_000, "trillion"),
        (1_000_000_000, "billion"),
        (1_000_000, "million"),
        (1_000, "thousand"),
    ];
    let mut rest = n;
    for (size, name) in scales {
        if rest >= size {
            out.extend(below_thousand(rest / size));
            out.push(name.to_string());
            rest %= size;
        }
    }
    out.extend(below_thousand(rest));
    out
}

fn below_thousand(n: u64) -> Vec<String> {
    let mut out = Vec::new();
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        out.push(ONES[hundreds as usize].to_string());
        out.push("hundred".to_string());
    }
    if rest >= 20 {
        out.push(TENS[(rest / 10) as usize].to_string());
        if rest % 10 > 0 {
            out.push(ONES[(rest % 10) as usize].to_string());
        }
    } else if rest > 0 {
        out.push(ONES[rest as usize].to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_ignores_case_punctuation_and_number_format() {
        assert_eq!(
            word_errors(
                "A table for 4 at 7 p.m., please!",
                "a table for four at seven pm please"
            ),
            (0, 8)
        );
        assert_eq!(
            normalize("Order 48152"),
            [
                "order", "forty", "eight", "thousand", "one", "hundred", "fifty", "two"
            ]
        );
        assert_eq!(normalize("I'd like it"), ["i'd", "like", "it"]);
        assert_eq!(
            normalize("7pm, well-known"),
            ["seven", "pm", "well", "known"]
        );
        assert_eq!(
            word_error_rate("tomorrow at 7 p.m.", "Tomorrow at 7pm."),
            0.0
        );
        assert_eq!(word_error_rate("", "you"), 1.0);
        assert_eq!(word_error_rate("", ""), 0.0);
    }

    #[test]
    fn counts_substitutions_deletions_and_insertions() {
        assert_eq!(word_errors("the cat sat", "the bat sat"), (1, 3));
        assert_eq!(word_errors("the cat sat", "the sat"), (1, 3));
        assert_eq!(word_errors("the cat sat", "the cat sat down"), (1, 3));
        assert_eq!(word_errors("the cat sat", ""), (3, 3));
        assert_eq!(word_errors("", ""), (0, 0));
    }
}
