//! Token budgets: every tool's text answer stays within `budget_tokens`
//! (estimated as characters / 4). Items go in most informative first; what
//! does not fit is counted and named at the end, never cut silently.

use std::fmt::Write;

/// `budget_tokens` when the call does not say.
pub const DEFAULT_TOKENS: u32 = 4000;
/// The most `budget_tokens` may be.
pub const MAX_TOKENS: u32 = 20_000;
/// The least (a summary line and the notes must fit).
pub const MIN_TOKENS: u32 = 200;
/// Characters per estimated token.
pub const CHARS_PER_TOKEN: usize = 4;
/// Kept free for the closing note on what was left out.
const NOTE_ROOM: usize = 400;

/// A text answer being filled within its budget.
pub struct Budget {
    tokens: u32,
    limit: usize,
    text: String,
    /// What was left out: (count, what), in the order met.
    omitted: Vec<(usize, String)>,
}

impl Budget {
    pub fn new(tokens: Option<u32>) -> Budget {
        let tokens = tokens.unwrap_or(DEFAULT_TOKENS).clamp(MIN_TOKENS, MAX_TOKENS);
        Budget { tokens, limit: tokens as usize * CHARS_PER_TOKEN, text: String::new(), omitted: Vec::new() }
    }

    fn room(&self) -> usize {
        self.limit.saturating_sub(NOTE_ROOM).saturating_sub(self.text.chars().count())
    }

    /// Adds `line` (and a newline) if it fits; `false` when it did not.
    pub fn line(&mut self, line: &str) -> bool {
        if line.chars().count() + 1 > self.room() {
            return false;
        }
        self.text.push_str(line);
        self.text.push('\n');
        true
    }

    /// Adds each of `lines` while they fit; the rest are counted as left
    /// out under `what` (e.g. "patterns").
    pub fn lines(&mut self, lines: impl IntoIterator<Item = String>, what: &str) -> usize {
        let mut shown = 0;
        let mut left = 0;
        for l in lines {
            if left == 0 && self.line(&l) {
                shown += 1;
            } else {
                left += 1;
            }
        }
        self.omit(left, what);
        shown
    }

    /// Notes `n` items of `what` left out.
    pub fn omit(&mut self, n: usize, what: &str) {
        if n > 0 {
            self.omitted.push((n, what.to_string()));
        }
    }

    /// The text, with the note on what was left out and where it is.
    pub fn finish(mut self, rest: &str) -> String {
        if !self.omitted.is_empty() {
            let list: Vec<String> = self.omitted.iter().map(|(n, w)| format!("{n} {w}")).collect();
            let _ = writeln!(
                self.text,
                "[left out of this text to stay within budget_tokens={}: {}. {rest} Or raise budget_tokens (at most {MAX_TOKENS}).]",
                self.tokens,
                list.join(", ")
            );
        }
        self.text
    }

    /// An already rendered text cut at a line boundary to fit, saying how
    /// much was left out and where the rest is.
    pub fn cut(text: String, tokens: Option<u32>, rest: &str) -> String {
        let mut b = Budget::new(tokens);
        if text.chars().count() <= b.limit {
            return text;
        }
        let mut left = 0;
        for l in text.lines() {
            if left == 0 && b.line(l) {
                continue;
            }
            left += 1;
        }
        b.omit(left, "lines");
        b.finish(rest)
    }
}

/// The estimated tokens of a text.
#[cfg(test)]
pub fn tokens_of(text: &str) -> usize {
    text.chars().count().div_ceil(CHARS_PER_TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_text_fits_and_says_what_it_left_out() {
        let long: String = (0..2000).map(|i| format!("line {i} with some words in it\n")).collect();
        let t = Budget::cut(long, Some(500), "See structuredContent.");
        assert!(tokens_of(&t) <= 500, "{}", tokens_of(&t));
        assert!(t.contains("lines") && t.contains("budget_tokens=500"), "{t}");
        let short = "one line\n".to_string();
        assert_eq!(Budget::cut(short.clone(), None, ""), short);
    }
}
