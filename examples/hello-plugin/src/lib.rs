//! An example logai tool plugin, written the way a team would write its own:
//! three typed tools, each a struct of arguments (its JSON Schema derived)
//! and a `call`.
//!
//! - `hello`: greets someone (the smallest possible tool);
//! - `word_count`: counts lines, words and characters of a text, with a
//!   structured result whose output schema is derived from `Counts`;
//! - `echo_json`: returns its `value` argument as structured content (handy
//!   to check what a client sends).
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p hello-plugin`.
//! Test natively: `cargo test -p hello-plugin`.

use logai_plugin_sdk::schemars::{self, JsonSchema};
use logai_plugin_sdk::{export_tools, log, Context, Error, Json, SearchLimits, Structured, Tool, ToolSpec, Value};
use serde::{Deserialize, Serialize};

/// Greet someone by name. Returns one line of text.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    /// Who to greet.
    #[schemars(length(min = 1, max = 200))]
    name: String,
    /// Greet in capitals.
    #[serde(default)]
    shout: bool,
}

impl Tool for Hello {
    const NAME: &'static str = "hello";
    type Output = String;
    fn call(self, _ctx: &Context) -> Result<String, Error> {
        Ok(greeting(&self.name, self.shout))
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Say hello").read_only()
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

/// Count the lines, words, characters and bytes of a text, and list its most frequent words.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WordCount {
    /// The text to count.
    text: String,
    /// How many of the most frequent words to list.
    #[serde(default = "five")]
    #[schemars(range(max = 100))]
    top: u32,
}

fn five() -> u32 {
    5
}

/// The structured result of `word_count`.
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct Counts {
    /// Lines in the text.
    pub lines: usize,
    /// Whitespace-separated words.
    pub words: usize,
    /// Unicode characters.
    pub chars: usize,
    /// UTF-8 bytes.
    pub bytes: usize,
    /// The most frequent words (lowercased), most frequent first.
    pub top_words: Vec<WordFreq>,
}

/// One word and how often it occurs.
#[derive(Serialize, JsonSchema, Debug, PartialEq)]
pub struct WordFreq {
    /// The word, lowercased.
    pub word: String,
    /// How often it occurs.
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
    const NAME: &'static str = "word_count";
    type Output = Structured<Counts>;
    fn call(self, ctx: &Context) -> Result<Structured<Counts>, Error> {
        let counts = count(&self.text, self.top as usize);
        log::debug(format!("word_count: {} words for {}", counts.words, ctx.user()));
        let text = format!("{} lines, {} words, {} characters, {} bytes", counts.lines, counts.words, counts.chars, counts.bytes);
        Ok(Structured::new(text, counts))
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Count words").read_only()
    }
}

/// Return the `value` argument unchanged, as structured content and as JSON text.
#[derive(Deserialize, JsonSchema)]
pub struct EchoJson {
    /// Any JSON value.
    value: Value,
}

/// What `echo_json` returns.
#[derive(Serialize, JsonSchema)]
pub struct Echoed {
    /// The value as sent.
    value: Value,
}

impl Tool for EchoJson {
    const NAME: &'static str = "echo_json";
    type Output = Json<Echoed>;
    fn call(self, _ctx: &Context) -> Result<Json<Echoed>, Error> {
        Ok(Json(Echoed { value: self.value }))
    }
    fn spec(spec: ToolSpec, _: &SearchLimits) -> ToolSpec {
        spec.title("Echo JSON").read_only()
    }
}

export_tools!(HelloPlugin = Hello, WordCount, EchoJson);

#[cfg(test)]
mod tests {
    use super::*;
    use logai_plugin_sdk::testing::TestHost;
    use logai_plugin_sdk::{json, ToolError};

    #[test]
    fn counts() {
        let c = count("the cat\nand the hat.\n", 2);
        assert_eq!((c.lines, c.words), (2, 5));
        assert_eq!(c.top_words[0], WordFreq { word: "the".into(), count: 2 });
        assert_eq!(c.top_words.len(), 2);
    }

    #[test]
    fn greets() {
        let host = TestHost::new();
        let r = host.call::<Hello>(json!({"name": "Ada", "shout": true})).unwrap();
        assert!(TestHost::text(&r).starts_with("HELLO, ADA!"));
        match host.call::<Hello>(json!({"name": 5})) {
            Err(ToolError::InvalidArguments(a)) => assert_eq!(a.path, "$.name"),
            other => panic!("{other:?}"),
        }
    }

    /// `word_count` logs through the host import; natively the test host
    /// captures it (before the SDK's doubles, this aborted the test binary).
    #[test]
    fn word_count_logs_and_answers_structured() {
        let host = TestHost::new();
        let r = host.call_plugin::<HelloPlugin>("word_count", json!({"text": "a b a", "top": 1})).unwrap();
        assert_eq!(TestHost::text(&r), "1 lines, 3 words, 5 characters, 5 bytes");
        assert_eq!(TestHost::structured(&r).unwrap()["top_words"], json!([{"word": "a", "count": 2}]));
        assert_eq!(host.logs()[0].message, "word_count: 3 words for test@local");
    }

    #[test]
    fn schemas_are_the_documented_ones() {
        let specs = TestHost::new().list::<HelloPlugin>();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["hello", "word_count", "echo_json"]);
        let hello: Value = serde_json::from_str(&specs[0].input_schema).unwrap();
        assert_eq!(
            hello,
            json!({
                "type": "object",
                "properties": {
                    "name": { "type": "string", "minLength": 1, "maxLength": 200, "description": "Who to greet." },
                    "shout": { "type": "boolean", "description": "Greet in capitals.", "default": false }
                },
                "required": ["name"],
                "additionalProperties": false
            })
        );
        assert_eq!(specs[0].description, "Greet someone by name. Returns one line of text.");
        let wc: Value = serde_json::from_str(&specs[1].input_schema).unwrap();
        assert_eq!(
            wc["properties"]["top"],
            json!({"type": "integer", "minimum": 0, "maximum": 100, "default": 5, "description": "How many of the most frequent words to list."})
        );
        let out: Value = serde_json::from_str(specs[1].output_schema.as_deref().unwrap()).unwrap();
        assert_eq!(out["required"], json!(["lines", "words", "chars", "bytes", "top_words"]));
        assert_eq!(out["properties"]["top_words"]["items"]["required"], json!(["word", "count"]));
    }
}
