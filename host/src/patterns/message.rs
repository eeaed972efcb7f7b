//! A line's message: what is left once its stamp and syslog header, or its
//! JSON envelope, are taken off. Structure only: the stamp's value is the
//! search core's business (`search::timestamp`); here it is only skipped.

/// How to find the message in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageFormat {
    /// Syslog (RFC 3164 / 5424 / ISO stamp + host + tag), JSON (`message`,
    /// `msg`, ...), or an ISO stamp at line start, whichever the line is.
    #[default]
    Auto,
    /// The line is the message (LogHub's `Content` column).
    Message,
}

impl std::str::FromStr for MessageFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(MessageFormat::Auto),
            "message" => Ok(MessageFormat::Message),
            other => Err(format!("unknown message format '{other}' (expected auto or message)")),
        }
    }
}

/// The message part of `line` (without its terminator).
pub fn message(line: &[u8], format: MessageFormat) -> &[u8] {
    match format {
        MessageFormat::Message => line,
        MessageFormat::Auto => auto(line),
    }
}

/// Built once: `memmem::find` would build a searcher per line.
static JSON_KEYS: std::sync::LazyLock<[memchr::memmem::Finder<'static>; 5]> = std::sync::LazyLock::new(|| {
    [b"\"message\"" as &[u8], b"\"msg\"", b"\"log\"", b"\"MESSAGE\"", b"\"text\""].map(memchr::memmem::Finder::new)
});

fn auto(line: &[u8]) -> &[u8] {
    match line.first() {
        Some(b'{') => json(line).unwrap_or(line),
        Some(_) => syslog(line).unwrap_or(line),
        None => line,
    }
}

/// The raw (still escaped) text of the first message-like string field.
/// Escapes stay: `\"` inside a message is one token's business, and an
/// escaped message has the same shape every time.
fn json(line: &[u8]) -> Option<&[u8]> {
    for key in JSON_KEYS.iter() {
        let Some(at) = key.find(line) else { continue };
        let rest = trim(&line[at + key.needle().len()..]);
        let Some(rest) = rest.strip_prefix(b":") else { continue };
        let rest = trim(rest);
        let Some(rest) = rest.strip_prefix(b"\"") else { continue };
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                b'\\' => i += 2,
                b'"' => return Some(&rest[..i]),
                _ => i += 1,
            }
        }
        return Some(rest);
    }
    None
}

fn trim(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

/// Skips `<PRI>`, a stamp (RFC 3164 `Mmm dd hh:mm:ss`, or ISO 8601, maybe in
/// brackets), then for syslog the host and the `tag[pid]:`.
fn syslog(line: &[u8]) -> Option<&[u8]> {
    let mut rest = line;
    let mut rfc5424 = false;
    if rest.first() == Some(&b'<') {
        let close = rest.iter().take(5).position(|&b| b == b'>')?;
        rest = &rest[close + 1..];
        // RFC 5424's VERSION.
        if rest.len() > 2 && rest[0].is_ascii_digit() && rest[1] == b' ' {
            rest = &rest[2..];
            rfc5424 = true;
        }
    }
    let bracketed = rest.first() == Some(&b'[');
    let after_stamp = if let Some(n) = rfc3164_len(rest) {
        &rest[n..]
    } else if let Some(n) = iso_len(if bracketed { &rest[1..] } else { rest }) {
        let r = &rest[n + bracketed as usize..];
        if bracketed {
            r.strip_prefix(b"]").unwrap_or(r)
        } else {
            r
        }
    } else {
        return None;
    };
    let rest = trim(after_stamp);
    if rfc5424 {
        // HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
        let mut r = rest;
        for _ in 0..4 {
            r = trim(skip_token(r));
        }
        if r.first() == Some(&b'[') {
            let end = r.iter().position(|&b| b == b']').map_or(r.len(), |e| e + 1);
            r = &r[end..];
        } else {
            r = skip_token(r);
        }
        return Some(trim(r));
    }
    // RFC 3164: HOST TAG: MSG. An ISO-stamped plain line has no host: only a
    // second token ending in ':' (a tag) says there is one.
    let host_end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let after_host = trim(&rest[host_end..]);
    let tag_end = after_host.iter().position(|&b| b == b' ').unwrap_or(after_host.len());
    let tag = &after_host[..tag_end];
    // (A loop, not `contains`: a call to memchr costs more than these few
    // bytes.)
    let tag_like = |t: &[u8]| t.len() > 1 && t.ends_with(b":") && t[..t.len() - 1].iter().all(|&b| b != b':');
    if tag_like(tag) {
        return Some(trim(&after_host[tag_end..]));
    }
    let first = &rest[..host_end];
    if tag_like(first) {
        // No host: `tag: msg`.
        return Some(after_host);
    }
    Some(rest)
}

/// A syslog line's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header<'a> {
    /// `<PRI>`, when the line has one.
    pub pri: Option<u8>,
    /// HOSTNAME (RFC 5424) or HOST (RFC 3164), when present.
    pub host: Option<&'a [u8]>,
    /// APP-NAME (RFC 5424) or the TAG without `[pid]:` (RFC 3164).
    pub program: Option<&'a [u8]>,
}

/// The header of a syslog line (RFC 3164 or 5424), `None` for other lines.
pub fn header<'a>(line: &'a [u8]) -> Option<Header<'a>> {
    let mut rest = line;
    let mut h = Header::default();
    let mut rfc5424 = false;
    if rest.first() == Some(&b'<') {
        let close = rest.iter().take(5).position(|&b| b == b'>')?;
        h.pri = std::str::from_utf8(&rest[1..close]).ok().and_then(|p| p.parse().ok());
        rest = &rest[close + 1..];
        if rest.len() > 2 && rest[0].is_ascii_digit() && rest[1] == b' ' {
            rest = &rest[2..];
            rfc5424 = true;
        }
    }
    let n = rfc3164_len(rest).or_else(|| iso_len(rest))?;
    let mut toks = trim(&rest[n..]).split(|&b| b == b' ');
    let nil = |t: &'a [u8]| (t != b"-" && !t.is_empty()).then_some(t);
    if rfc5424 {
        h.host = toks.next().and_then(nil);
        h.program = toks.next().and_then(nil);
        return Some(h);
    }
    let first = toks.next()?;
    let tag = |t: &'a [u8]| {
        let t = t.strip_suffix(b":")?;
        let t = match t.iter().position(|&b| b == b'[') {
            Some(i) => &t[..i],
            None => t,
        };
        (!t.is_empty() && !t.contains(&b':')).then_some(t)
    };
    if let Some(t) = tag(first) {
        h.program = Some(t);
        return Some(h);
    }
    h.program = tag(toks.next()?);
    h.program?;
    h.host = Some(first);
    Some(h)
}

fn skip_token(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| **b != b' ').count();
    &s[n..]
}

fn is_month(m: &[u8]) -> bool {
    matches!(m, b"Jan" | b"Feb" | b"Mar" | b"Apr" | b"May" | b"Jun" | b"Jul" | b"Aug" | b"Sep" | b"Oct" | b"Nov" | b"Dec")
}

/// Length of `Mmm dd hh:mm:ss[.frac]` at the start of `s`.
fn rfc3164_len(s: &[u8]) -> Option<usize> {
    if s.len() < 15 || s[3] != b' ' || !is_month(&s[..3]) {
        return None;
    }
    let i = if s[4] == b' ' || s[5] == b' ' {
        if s[4] == b' ' {
            6
        } else {
            5
        }
    } else {
        6
    };
    let t = s.get(i + 1..i + 9)?;
    if s[i] != b' ' || t[2] != b':' || t[5] != b':' || !t.iter().enumerate().all(|(k, b)| k == 2 || k == 5 || b.is_ascii_digit()) {
        return None;
    }
    let mut n = i + 9;
    if s.get(n) == Some(&b'.') {
        n += 1;
        while s.get(n).is_some_and(u8::is_ascii_digit) {
            n += 1;
        }
    }
    Some(n)
}

/// Length of `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|±HH[:]MM]` at the start of `s`.
fn iso_len(s: &[u8]) -> Option<usize> {
    let d = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    if !(d(0) && d(1) && d(2) && d(3) && s.get(4) == Some(&b'-') && d(5) && d(6) && s.get(7) == Some(&b'-') && d(8) && d(9)) {
        return None;
    }
    if !(matches!(s.get(10), Some(b'T' | b' ')) && d(11) && d(12) && s.get(13) == Some(&b':') && d(14) && d(15)) {
        return None;
    }
    let mut n = 16;
    if s.get(n) == Some(&b':') && d(n + 1) && d(n + 2) {
        n += 3;
        if matches!(s.get(n), Some(b'.' | b',')) {
            n += 1;
            while d(n) {
                n += 1;
            }
        }
    }
    match s.get(n) {
        Some(b'Z') => n += 1,
        Some(b'+' | b'-') if d(n + 1) && d(n + 2) => {
            n += 3;
            if s.get(n) == Some(&b':') {
                n += 1;
            }
            while d(n) {
                n += 1;
            }
        }
        _ => {}
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(l: &str) -> &str {
        std::str::from_utf8(message(l.as_bytes(), MessageFormat::Auto)).unwrap()
    }

    #[test]
    fn strips_stamps_headers_and_envelopes() {
        assert_eq!(m("Nov 23 08:15:00 web-01 sshd[2001]: Accepted publickey for bob"), "Accepted publickey for bob");
        assert_eq!(m("<34>Nov  3 08:15:00.12 db kernel: oom"), "oom");
        assert_eq!(m("<165>1 2026-11-23T13:12:01.003Z host app 42 ID7 [ex@1 a=\"b\"] hello there"), "hello there");
        assert_eq!(m("2026-11-23T13:12:01Z host app[1]: started worker 3"), "started worker 3");
        assert_eq!(m("2026-11-23 13:12:01,123 ERROR payment declined"), "ERROR payment declined");
        assert_eq!(m("[2026-11-23T13:12:01Z] WARN slow"), "WARN slow");
        assert_eq!(m(r#"{"ts":"2026-11-23T13:12:01Z","level":"error","msg":"db \"x\" down","code":7}"#), r#"db \"x\" down"#);
        assert_eq!(m("no stamp at all"), "no stamp at all");
        assert_eq!(message(b"Nov 23 08:15:00 h p: x", MessageFormat::Message), b"Nov 23 08:15:00 h p: x");
    }

    #[test]
    fn reads_syslog_headers() {
        let h = header(b"Nov 23 08:15:00 web-01 sshd[2001]: Accepted publickey for bob").unwrap();
        assert_eq!((h.pri, h.host, h.program), (None, Some(&b"web-01"[..]), Some(&b"sshd"[..])));
        let h = header(b"<165>1 2026-11-23T13:12:01.003Z host app 42 ID7 [ex@1 a=\"b\"] hello").unwrap();
        assert_eq!((h.pri, h.host, h.program), (Some(165), Some(&b"host"[..]), Some(&b"app"[..])));
        let h = header(b"<34>Nov  3 08:15:00 db kernel: oom").unwrap();
        assert_eq!((h.pri, h.host, h.program), (Some(34), Some(&b"db"[..]), Some(&b"kernel"[..])));
        assert_eq!(header(b"2026-11-23 13:12:01,123 ERROR payment declined"), None);
        assert_eq!(header(b"no stamp"), None);
    }
}
