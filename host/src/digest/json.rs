//! A JSON line's top-level `key: value` pairs, scanned in place: no tree, no
//! allocation (a string value is unescaped only when it has an escape).
//! Aggregates read a few scalar fields of millions of lines; building a
//! `serde_json::Value` per line cost four times the rest of the work.
//!
//! Lenient: a malformed line yields the pairs before the fault.

use std::borrow::Cow;

/// A value, as its raw bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Val<'a> {
    /// A string's bytes between its quotes, still escaped.
    Str(&'a [u8]),
    /// A number, `true`, `false` or `null`.
    Scalar(&'a [u8]),
    /// An object, braces included.
    Object(&'a [u8]),
    /// An array, brackets included.
    Array(&'a [u8]),
}

impl<'a> Val<'a> {
    /// A scalar's text (a string unescaped); `None` for objects and arrays.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            Val::Str(raw) if !raw.contains(&b'\\') => Some(utf8(raw)),
            Val::Str(raw) => {
                let mut quoted = Vec::with_capacity(raw.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(raw);
                quoted.push(b'"');
                serde_json::from_slice::<String>(&quoted).ok().map(Cow::Owned)
            }
            Val::Scalar(raw) => Some(utf8(raw)),
            Val::Object(_) | Val::Array(_) => None,
        }
    }
}

/// Bytes as text: borrowed when valid UTF-8 (the usual case, checked
/// fast), else with replacement characters.
pub fn utf8(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// The pairs of the object `line` holds (`None` when it does not start
/// with `{`).
pub fn pairs(line: &[u8]) -> Option<Pairs<'_>> {
    let s = skip_ws(line, 0);
    (line.get(s) == Some(&b'{')).then_some(Pairs { b: line, i: s + 1 })
}

/// Iterator over an object's pairs: (raw key, value).
pub struct Pairs<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], Val<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        let b = self.b;
        let mut i = skip_ws(b, self.i);
        if b.get(i) == Some(&b',') {
            i = skip_ws(b, i + 1);
        }
        if b.get(i) != Some(&b'"') {
            self.i = b.len();
            return None;
        }
        let kend = string_end(b, i + 1)?;
        let key = &b[i + 1..kend];
        i = skip_ws(b, kend + 1);
        if b.get(i) != Some(&b':') {
            self.i = b.len();
            return None;
        }
        i = skip_ws(b, i + 1);
        let (val, end) = match b.get(i)? {
            b'"' => {
                let e = string_end(b, i + 1)?;
                (Val::Str(&b[i + 1..e]), e + 1)
            }
            b'{' => {
                let e = nested_end(b, i)?;
                (Val::Object(&b[i..e]), e)
            }
            b'[' => {
                let e = nested_end(b, i)?;
                (Val::Array(&b[i..e]), e)
            }
            _ => {
                let e = b[i..].iter().position(|c| matches!(c, b',' | b'}') || c.is_ascii_whitespace()).map_or(b.len(), |p| i + p);
                (Val::Scalar(&b[i..e]), e)
            }
        };
        self.i = end;
        Some((key, val))
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Index of the quote closing a string whose contents start at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let q = memchr::memchr2(b'"', b'\\', &b[i..])? + i;
        if b[q] == b'"' {
            return Some(q);
        }
        i = q + 2;
        if i > b.len() {
            return None;
        }
    }
}

/// End (exclusive) of the object or array starting at `i`.
fn nested_end(b: &[u8], i: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut j = i;
    while j < b.len() {
        match b[j] {
            b'"' => j = string_end(b, j + 1)?,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j + 1);
                }
            }
            _ => {}
        }
        j += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_of_a_line_as_serde_reads_them() {
        let line = br#" {"a": "x\"y", "n":-1.5e3 ,"o":{"k":[1,{"z":"}"}]},"t":true,"e":"" }"#;
        let got: Vec<(String, Option<String>)> =
            pairs(line).unwrap().map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.text().map(|t| t.into_owned()))).collect();
        assert_eq!(
            got,
            [
                ("a".into(), Some("x\"y".into())),
                ("n".into(), Some("-1.5e3".into())),
                ("o".into(), None),
                ("t".into(), Some("true".into())),
                ("e".into(), Some(String::new())),
            ]
        );
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert_eq!(v["a"], "x\"y");
        assert!(pairs(b"not json").is_none());
        assert_eq!(pairs(br#"{"a": "unterminated"#).unwrap().count(), 0);
        let inner = pairs(br#"{"o":{"k":2}}"#).unwrap().next().unwrap().1;
        let Val::Object(o) = inner else { panic!() };
        assert_eq!(pairs(o).unwrap().map(|(k, _)| k.to_vec()).collect::<Vec<_>>(), [b"k".to_vec()]);
    }
}
