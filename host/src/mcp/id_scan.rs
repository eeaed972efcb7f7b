//! The top-level `id` of a line too long to parse.
//!
//! A line over the size limit is discarded without being buffered, but its
//! error must still carry the request's `id` or the client waits forever for
//! it. [`IdScan`] is fed the line chunk by chunk as it streams past and keeps
//! only a few counters and the id's text (at most [`MAX_ID_TEXT`] bytes): it
//! follows strings, escapes and nesting depth across chunk boundaries, and
//! takes the value of a key `"id"` only at depth 1 of a top-level object, so
//! an `"id"` inside `params` (or inside a string) is never taken. The id may
//! come anywhere in the object (the TypeScript SDK writes it after `params`);
//! when the key repeats, the last one wins, as when the line is parsed.
//!
//! The scan is lenient: it does not check the line is valid JSON. It reports
//! the id's exact JSON text; whether that text is an id the server can echo
//! (a string or an integer) is the caller's decision, made the same way as
//! for a line that parses.

/// Longest id text kept; a longer id is reported as none.
pub const MAX_ID_TEXT: usize = 1024;

/// Streaming search for the top-level `id` of one JSON object.
#[derive(Debug, Default)]
pub struct IdScan {
    /// Nesting depth (objects and arrays) at the current byte.
    depth: u64,
    top: Top,
    /// Where the grammar of the top-level object stands (meaningful at depth 1).
    slot: Slot,
    /// Inside a string: which one.
    string: Option<Str>,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
    /// The text of the id value being read, while it is read.
    capture: Option<Capture>,
    /// The last complete id value's text (`None`: none yet, or it could not be kept).
    found: Option<Vec<u8>>,
}

#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
enum Top {
    /// Only whitespace so far.
    #[default]
    Unknown,
    /// Inside the top-level object.
    Object,
    /// The line is not an object, or its object has ended: nothing more to find.
    Done,
}

/// What the top-level object expects next.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
enum Slot {
    #[default]
    Key,
    /// After a key, before its `:`; `id` says whether the key was `"id"`.
    Colon { id: bool },
    /// After the `:`, before the value.
    Value { id: bool },
    /// Inside or after a value, before the `,` or `}`.
    Comma,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Str {
    /// A key of the top-level object; `matched` counts the bytes of `id`
    /// matched so far (`None` once it cannot be `id`).
    Key { matched: Option<u8> },
    /// The value of a top-level `"id"` key (being captured).
    Id,
    /// Any other string.
    Other,
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum CaptureKind {
    String,
    Number,
}

#[derive(Debug)]
struct Capture {
    kind: CaptureKind,
    text: Vec<u8>,
    /// The value grew past [`MAX_ID_TEXT`]; it is read to its end and dropped.
    overflow: bool,
}

impl IdScan {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next bytes of the line (without its terminator).
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            if self.top == Top::Done {
                return;
            }
            if self.string == Some(Str::Other) && !self.escaped {
                // Most of a huge line is string content: jump to what matters.
                match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    Some(n) => i += n,
                    None => return,
                }
            }
            self.byte(chunk[i]);
            i += 1;
        }
    }

    /// The end of the line: the id's JSON text, if a top-level `"id"` with a
    /// string or number value (of at most [`MAX_ID_TEXT`] bytes) was seen.
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if matches!(&self.capture, Some(c) if c.kind == CaptureKind::Number) {
            self.end_capture();
        }
        self.found
    }

    fn byte(&mut self, b: u8) {
        if let Some(s) = self.string {
            return self.string_byte(s, b);
        }
        if matches!(&self.capture, Some(c) if c.kind == CaptureKind::Number) {
            if matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                return self.keep(b);
            }
            self.end_capture(); // the number ended; `b` is what follows it
        }
        if b.is_ascii_whitespace() {
            return;
        }
        if self.top == Top::Unknown {
            self.top = if b == b'{' { Top::Object } else { Top::Done };
            self.depth = 1;
            return;
        }
        let top_level = self.depth == 1;
        match b {
            b'"' => self.open_string(top_level),
            b'{' | b'[' => {
                self.value_starts(top_level, None);
                self.depth += 1;
            }
            b'}' | b']' => {
                self.depth -= 1;
                if self.depth == 0 {
                    self.top = Top::Done;
                }
            }
            b':' if top_level => {
                if let Slot::Colon { id } = self.slot {
                    self.slot = Slot::Value { id };
                }
            }
            b',' if top_level => self.slot = Slot::Key,
            _ => self.value_starts(top_level, Some(b)),
        }
    }

    fn string_byte(&mut self, s: Str, b: u8) {
        if s == Str::Id {
            self.keep(b);
        }
        if self.escaped {
            self.escaped = false;
            self.key_byte(s, None);
            return;
        }
        match b {
            b'\\' => self.escaped = true,
            b'"' => self.close_string(s),
            _ => self.key_byte(s, Some(b)),
        }
    }

    /// One byte of a top-level key (`None`: an escape, which never spells plain `id`).
    fn key_byte(&mut self, s: Str, b: Option<u8>) {
        let Str::Key { matched } = s else { return };
        let matched = match (matched, b) {
            (Some(m), Some(b)) if b"id".get(m as usize) == Some(&b) => Some(m + 1),
            _ => None,
        };
        self.string = Some(Str::Key { matched });
    }

    fn open_string(&mut self, top_level: bool) {
        if top_level && self.slot == Slot::Key {
            self.string = Some(Str::Key { matched: Some(0) });
            return;
        }
        if top_level && self.slot == (Slot::Value { id: true }) {
            self.slot = Slot::Comma;
            self.string = Some(Str::Id);
            self.capture = Some(Capture { kind: CaptureKind::String, text: Vec::new(), overflow: false });
            self.keep(b'"');
            return;
        }
        self.value_starts(top_level, None);
        self.string = Some(Str::Other);
    }

    fn close_string(&mut self, s: Str) {
        self.string = None;
        match s {
            Str::Key { matched } => self.slot = Slot::Colon { id: matched == Some(2) },
            Str::Id => self.end_capture(),
            Str::Other => {}
        }
    }

    /// A value other than a string starts at this byte: a number's first
    /// byte (`Some`), or a container or literal. Only a number can be an id.
    fn value_starts(&mut self, top_level: bool, first: Option<u8>) {
        if !top_level {
            return;
        }
        if let Slot::Value { id } = self.slot {
            self.slot = Slot::Comma;
            if !id {
                return;
            }
            match first {
                Some(b @ (b'-' | b'0'..=b'9')) => {
                    self.capture = Some(Capture { kind: CaptureKind::Number, text: vec![b], overflow: false });
                }
                // `"id": {...}`, `"id": null`, ...: a later duplicate may still be one
                _ => self.found = None,
            }
        }
    }

    fn keep(&mut self, b: u8) {
        if let Some(c) = &mut self.capture {
            if c.text.len() < MAX_ID_TEXT {
                c.text.push(b);
            } else {
                c.overflow = true;
            }
        }
    }

    fn end_capture(&mut self) {
        if let Some(c) = self.capture.take() {
            self.found = (!c.overflow).then_some(c.text);
        }
    }
}

/// The top-level id of `line` fed in chunks of `chunk` bytes (tests).
#[cfg(test)]
pub fn scan_in_chunks(line: &[u8], chunk: usize) -> Option<String> {
    let mut s = IdScan::new();
    for c in line.chunks(chunk.max(1)) {
        s.feed(c);
    }
    s.finish().map(|t| String::from_utf8_lossy(&t).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_of(line: &str) -> Option<String> {
        let whole = scan_in_chunks(line.as_bytes(), line.len());
        for n in 1..=7 {
            assert_eq!(scan_in_chunks(line.as_bytes(), n), whole, "chunks of {n}: {line}");
        }
        whole
    }

    #[test]
    fn finds_the_top_level_id_before_or_after_params() {
        assert_eq!(id_of(r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#).as_deref(), Some("7"));
        assert_eq!(id_of(r#"{"method":"x","params":{"a":[1,{"b":2}]},"id":7}"#).as_deref(), Some("7"));
        assert_eq!(id_of(r#" { "id" : "a\"b\\" , "params":{}}"#).as_deref(), Some(r#""a\"b\\""#));
        assert_eq!(id_of(r#"{"params":{"x":1}, "id":-12}"#).as_deref(), Some("-12"));
        // a number at the very end of a truncated line
        assert_eq!(id_of(r#"{"params":{}, "id":123"#).as_deref(), Some("123"));
        // the text is kept as written; the caller decides if it is a valid id
        assert_eq!(id_of(r#"{"id":1.5e3}"#).as_deref(), Some("1.5e3"));
    }

    #[test]
    fn ignores_ids_that_are_not_top_level_keys() {
        assert_eq!(id_of(r#"{"params":{"id":1},"method":"x"}"#), None);
        assert_eq!(id_of(r#"{"params":[{"id":1}],"method":"id"}"#), None);
        assert_eq!(id_of(r#"{"method":"\"id\":3","params":"{\"id\":4}"}"#), None);
        assert_eq!(id_of(r#"[{"id":1}]"#), None);
        assert_eq!(id_of(r#""id":1"#), None);
        assert_eq!(id_of(r#"{"idx":1,"xid":2,"i":3}"#), None);
        assert_eq!(id_of(r#"{"\u0069d":1}"#), None);
        assert_eq!(id_of(r#"{"a":1} {"id":2}"#), None);
        assert_eq!(id_of(""), None);
    }

    #[test]
    fn ids_that_cannot_be_echoed_are_none() {
        assert_eq!(id_of(r#"{"id":null,"params":{}}"#), None);
        assert_eq!(id_of(r#"{"id":{"x":1},"params":{}}"#), None);
        assert_eq!(id_of(r#"{"id":[7],"params":{}}"#), None);
        assert_eq!(id_of(r#"{"id":true}"#), None);
        assert_eq!(id_of(r#"{"id":"unterminated"#), None);
        let long = format!(r#"{{"id":"{}","params":{{}}}}"#, "x".repeat(MAX_ID_TEXT));
        assert_eq!(id_of(&long), None);
        let fits = format!(r#"{{"id":"{}"}}"#, "x".repeat(MAX_ID_TEXT - 2));
        assert_eq!(id_of(&fits).map(|t| t.len()), Some(MAX_ID_TEXT));
    }

    #[test]
    fn the_last_of_repeated_ids_wins() {
        assert_eq!(id_of(r#"{"id":1,"params":{},"id":"two"}"#).as_deref(), Some(r#""two""#));
        assert_eq!(id_of(r#"{"id":1,"id":null}"#), None);
    }
}
