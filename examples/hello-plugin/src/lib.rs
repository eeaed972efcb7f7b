//! An example logai tool plugin, written the way a team would write its own:
//! three tools, each a [`Tool`] impl with a JSON Schema for its arguments.
//!
//! - `hello`: greets someone (the smallest possible tool);
//! - `word_count`: counts lines, words and characters of a text, with a
//!   structured result matching a declared output schema;
//! - `echo_json`: returns its `value` argument as structured content (handy
//!   to check what a client sends).
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p hello-plugin`.

use logai_plugin_sdk::{export_tools, json, log, CallResult, Context, Tool, ToolError, ToolSpec};
use serde::{Deserialize, Serialize};

/// `hello`: a greeting.
pub struct Hello;

#[derive(Deserialize)]
struct HelloArgs {
    name: String,
    #[serde(default)]
    shout: bool,
}

impl Tool for Hello {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "hello",
            "Greet someone by name. Returns one line of text.",
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Who to greet." },
                    "shout": { "type": "boolean", "description": "Greet in capitals.", "default": false }
                },
                "required": ["name"],
                "additionalProperties": false
            }),
        )
        .title("Say hello")
        .read_only()
    }

    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let args: HelloArgs = ctx.args()?;
        Ok(CallResult::text(greeting(&args.name, args.shout)))
    }
}

/// The greeting `hello` returns (shared with the host's native twin used
/// in benchmarks, so both do the same work).
pub fn greeting(name: &str, shout: bool) -> String {
    let g = format!("Hello, {name}! Greetings from a WebAssembly component.");
    if shout {
        g.to_uppercase()
    } else {
        g
    }
}

/// `word_count`: lines, words and characters of a text.
pub struct WordCount;

#[derive(Deserialize)]
struct WordCountArgs {
    text: String,
    #[serde(default)]
    top: Option<usize>,
}

/// The structured result of `word_count`.
#[derive(Serialize, Debug, PartialEq)]
pub struct Counts {
    pub lines: usize,
    pub words: usize,
    pub chars: usize,
    pub bytes: usize,
    /// The most frequent words (lowercased), most frequent first.
    pub top_words: Vec<WordFreq>,
}

/// One word and how often it occurs.
#[derive(Serialize, Debug, PartialEq)]
pub struct WordFreq {
    pub word: String,
    pub count: usize,
}

/// Count `text` (pure, so it is unit-testable natively).
pub fn count(text: &str, top: usize) -> Counts {
    let mut freq = std::collections::HashMap::<String, usize>::new();
    let mut words = 0;
    for w in text.split_whitespace() {
        words += 1;
        let w: String = w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase();
        if !w.is_empty() {
            *freq.entry(w).or_default() += 1;
        }
    }
    let mut top_words: Vec<WordFreq> = freq.into_iter().map(|(word, count)| WordFreq { word, count }).collect();
    top_words.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.word.cmp(&b.word)));
    top_words.truncate(top);
    Counts { lines: text.lines().count(), words, chars: text.chars().count(), bytes: text.len(), top_words }
}

impl Tool for WordCount {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "word_count",
            "Count the lines, words, characters and bytes of a text, and list its most frequent words.",
            json!({
                "type": "object",
                "properties": {
                    "text": { "type": "string", "description": "The text to count." },
                    "top": { "type": "integer", "minimum": 0, "maximum": 100, "default": 5,
                             "description": "How many of the most frequent words to list." }
                },
                "required": ["text"],
                "additionalProperties": false
            }),
        )
        .title("Count words")
        .output_schema(json!({
            "type": "object",
            "properties": {
                "lines": { "type": "integer" },
                "words": { "type": "integer" },
                "chars": { "type": "integer" },
                "bytes": { "type": "integer" },
                "top_words": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": { "word": { "type": "string" }, "count": { "type": "integer" } },
                        "required": ["word", "count"]
                    }
                }
            },
            "required": ["lines", "words", "chars", "bytes", "top_words"]
        }))
        .read_only()
    }

    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let args: WordCountArgs = ctx.args()?;
        let counts = count(&args.text, args.top.unwrap_or(5));
        log::debug(format!("word_count: {} words for {}", counts.words, ctx.user()));
        let text = format!("{} lines, {} words, {} characters, {} bytes", counts.lines, counts.words, counts.chars, counts.bytes);
        CallResult::structured(text, &counts)
    }
}

/// `echo_json`: returns `value` as structured content.
pub struct EchoJson;

impl Tool for EchoJson {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "echo_json",
            "Return the `value` argument unchanged, as structured content and as JSON text.",
            json!({
                "type": "object",
                "properties": { "value": { "description": "Any JSON value." } },
                "required": ["value"]
            }),
        )
        .title("Echo JSON")
        .read_only()
    }

    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let value = ctx.raw_args().get("value").cloned().unwrap_or_default();
        CallResult::json(&json!({ "value": value }))
    }
}

export_tools!(Hello, WordCount, EchoJson);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let c = count("the cat\nand the hat.\n", 2);
        assert_eq!((c.lines, c.words), (2, 5));
        assert_eq!(c.top_words[0], WordFreq { word: "the".into(), count: 2 });
        assert_eq!(c.top_words.len(), 2);
    }

    #[test]
    fn greets() {
        assert!(greeting("Ada", false).starts_with("Hello, Ada!"));
        assert!(greeting("Ada", true).starts_with("HELLO, ADA!"));
    }
}
