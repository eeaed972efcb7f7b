//! `ssh`: the serving account's `authorized_keys` (`[access] account`, else
//! this account; `--authorized-keys` when sshd's `AuthorizedKeysFile` is
//! elsewhere) gives every key `restrict` and a forced `logai serve`
//! command: a key without one logs in to a shell, where its holder can run
//! `logai serve --as` any name (docs/deploy.md). Problems are warnings:
//! logai itself works without SSH.

use std::path::{Path, PathBuf};

use super::Finding;
use crate::config::Config;

pub(super) fn check(config: &Config, keys_file: Option<&Path>) -> Vec<Finding> {
    let account = config.access.as_ref().and_then(|a| a.account.clone()).unwrap_or_else(crate::identity::local_user_name);
    let path = match keys_file.map(Path::to_path_buf).or_else(|| home_of(&account).map(|h| h.join(".ssh/authorized_keys"))) {
        Some(p) => p,
        None => {
            return vec![Finding::warn(
                "ssh",
                format!("account '{account}' has no home directory"),
                "create the serving account (docs/deploy.md)",
            )]
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Finding::warn(
                "ssh",
                format!("cannot read {} ({e}): no agent can reach logai over SSH as '{account}'", path.display()),
                "add one line per person as in config/examples/authorized_keys (restrict,command=\"logai serve --as NAME\")",
            )]
        }
    };
    vec![judge(&path, &account, &text)]
}

/// One finding over every key line of the file.
fn judge(path: &Path, account: &str, text: &str) -> Finding {
    let (mut forced, mut unforced, mut unrestricted, mut unnamed) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#')) {
        let at = format!("line {}", i + 1);
        let options = options_of(line.trim());
        match forced_command(options) {
            Some(cmd) if cmd.contains("logai") && cmd.contains(" serve") => {
                if !options.split(',').any(|o| o == "restrict") {
                    unrestricted.push(at.clone());
                }
                unnamed += usize::from(!cmd.contains("--as"));
                forced.push(at);
            }
            _ => unforced.push(at),
        }
    }
    let file = path.display();
    if !unforced.is_empty() || !unrestricted.is_empty() || forced.is_empty() {
        let mut seen = format!("{file} ({account}): {} keys with a forced `logai serve`", forced.len());
        if !unforced.is_empty() {
            seen += &format!("; without one (a shell, and any --as name): {}", unforced.join(", "));
        }
        if !unrestricted.is_empty() {
            seen += &format!("; without `restrict` (forwarding, pty): {}", unrestricted.join(", "));
        }
        return Finding::warn(
            "ssh",
            seen,
            "give every key `restrict,command=\"logai serve --as NAME\"` (config/examples/authorized_keys); keep admin keys on another account",
        );
    }
    let named = if unnamed > 0 { format!(" ({unnamed} without --as: they act as '{account}')") } else { String::new() };
    Finding::ok("ssh", format!("{file} ({account}): all {} keys restricted to a forced `logai serve`{named}", forced.len()))
}

/// The options field of an `authorized_keys` line (empty when the line
/// starts with the key type): up to the first space outside quotes.
fn options_of(line: &str) -> &str {
    let first = line.split_whitespace().next().unwrap_or("");
    if first.starts_with("ssh-") || first.starts_with("ecdsa-") || first.starts_with("sk-") {
        return "";
    }
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The `command="..."` option's value.
fn forced_command(options: &str) -> Option<&str> {
    let start = options.find("command=\"")? + "command=\"".len();
    let end = options[start..].find('"')?;
    Some(&options[start..start + end])
}

fn home_of(account: &str) -> Option<PathBuf> {
    let name = std::ffi::CString::new(account).ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or null; the
    // fields are read before any other call could reuse it.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() || (*pw).pw_dir.is_null() {
            return None;
        }
        Some(PathBuf::from(std::ffi::CStr::from_ptr((*pw).pw_dir).to_string_lossy().into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_restricted_keys_pass_and_others_are_named() {
        let good = "restrict,command=\"/usr/local/bin/logai serve --as alice\" ssh-ed25519 AAAA alice\n# admin\n";
        assert_eq!(judge(Path::new("k"), "logai", good).status, super::super::Status::Ok);
        let bad = format!("{good}ssh-ed25519 AAAB admin\ncommand=\"logai serve --as bob\" ssh-ed25519 AAAC bob\n");
        let f = judge(Path::new("k"), "logai", &bad);
        assert_eq!(f.status, super::super::Status::Warn);
        assert!(f.seen.contains("without one (a shell, and any --as name): line 3"), "{}", f.seen);
        assert!(f.seen.contains("without `restrict` (forwarding, pty): line 4"), "{}", f.seen);
    }
}
