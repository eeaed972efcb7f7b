//! `${VAR}` and `${VAR:-default}` expansion in manifest text. `$$` is a
//! literal `$`. An unset variable without a default expands to "" (so an
//! optional `${SENTRY_DSN}` leaves its exporter unconfigured); a malformed
//! reference is an error at its offset.

pub struct ExpandError {
    pub offset: usize,
    pub message: String,
}

pub fn expand_env(text: &str) -> Result<String, ExpandError> {
    expand_with(text, |name| std::env::var(name).ok())
}

pub fn expand_with(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push_str(&text[copied..i + 1]);
                i += 2;
                copied = i;
            }
            Some(b'{') => {
                out.push_str(&text[copied..i]);
                let close = text[i..]
                    .find('}')
                    .map(|j| i + j)
                    .ok_or_else(|| ExpandError { offset: i, message: "unterminated ${...}: missing '}'".into() })?;
                let inner = &text[i + 2..close];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(ExpandError { offset: i, message: format!("invalid variable name in ${{{inner}}}") });
                }
                let value = lookup(name).filter(|v| !v.is_empty()).or(default.map(str::to_owned)).unwrap_or_default();
                // Values land inside TOML strings: escape what would end or break them.
                out.push_str(&value.replace('\\', "\\\\").replace('"', "\\\""));
                i = close + 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("redis.internal".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_defaults_and_literals() {
        let got = expand_with("a=${HOST} b=${NOPE:-x} c=${EMPTY:-d} e=$$ f=${NOPE}", env).ok().unwrap();
        assert_eq!(got, "a=redis.internal b=x c=d e=$ f=");
    }

    #[test]
    fn reports_offset_of_bad_reference() {
        let err = expand_with("ok\nx = \"${BAD NAME}\"", env).err().unwrap();
        assert_eq!(err.offset, 8);
        assert!(err.message.contains("BAD NAME"));
    }
}
