//! `service:NAME`: the service's globs match files, every file can be read,
//! and the lines of a sample (the last 64 KiB of each file, the first of a
//! gzipped one) carry stamps its format parses: a search's time window
//! depends on them.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::Finding;
use crate::config::{Config, ServiceConfig};
use crate::search::files::{is_gz, Service};
use crate::search::timestamp::StampParser;

/// Bytes read from each file.
const SAMPLE_BYTES: u64 = 64 * 1024;

pub(super) fn check(config: &Config) -> Vec<Finding> {
    config.service.iter().map(|s| one(config, s)).collect()
}

fn one(config: &Config, cfg: &ServiceConfig) -> Finding {
    let check = format!("service:{}", cfg.name);
    let service = match Service::from_config(cfg, &config.base_dir) {
        Ok(s) => s,
        Err(e) => return Finding::fail(check, e.message, "fix the service's format, timezone or paths in the manifest"),
    };
    let files = service.discover();
    if files.is_empty() {
        return Finding::warn(
            check,
            format!("no file matches {}", cfg.paths.join(", ")),
            "check the paths (globs resolve against the manifest's directory); searches of this service find nothing",
        );
    }
    let parser = StampParser::new(service.format, service.tz, chrono::Utc::now());
    let (mut unreadable, mut unstamped, mut lines, mut stamped) = (Vec::new(), Vec::new(), 0usize, 0usize);
    for path in &files {
        match sample(path) {
            Err(e) => unreadable.push(format!("{}: {e}", path.display())),
            Ok(text) => {
                let (n, s) = count_stamps(&text, &parser);
                (lines, stamped) = (lines + n, stamped + s);
                if n > 0 && s == 0 {
                    unstamped.push(path.clone());
                }
            }
        }
    }
    verdict(check, &service, files.len(), &unreadable, &unstamped, (lines, stamped))
}

fn verdict(
    check: String,
    service: &Service,
    files: usize,
    unreadable: &[String],
    unstamped: &[PathBuf],
    (lines, stamped): (usize, usize),
) -> Finding {
    let format = service.format.as_str();
    if !unreadable.is_empty() {
        return Finding::fail(
            check,
            format!("{} of {files} files cannot be read: {}", unreadable.len(), unreadable.join("; ")),
            "give the serving account read access to the service's files (group adm, or an ACL)",
        );
    }
    if !unstamped.is_empty() {
        let names: Vec<String> = unstamped.iter().map(|p| p.display().to_string()).collect();
        return Finding::fail(
            check,
            format!("no line of the sample of {} has a stamp the '{format}' format parses", names.join(", ")),
            "set the service's `format` (syslog, json, plain) and `timezone` to what the files hold; time windows cannot cut them",
        );
    }
    Finding::ok(check, format!("{files} files readable; {stamped} of {lines} sampled lines stamped ({format})"))
}

/// The last [`SAMPLE_BYTES`] of `path` (the first of a gzipped file), from
/// the first whole line.
fn sample(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    if is_gz(path) {
        flate2::read::MultiGzDecoder::new(file).take(SAMPLE_BYTES).read_to_end(&mut buf)?;
        return Ok(buf);
    }
    let len = file.metadata()?.len();
    let start = len.saturating_sub(SAMPLE_BYTES);
    file.seek(SeekFrom::Start(start))?;
    file.take(SAMPLE_BYTES).read_to_end(&mut buf)?;
    if start > 0 {
        let cut = buf.iter().position(|&b| b == b'\n').map_or(buf.len(), |i| i + 1);
        buf.drain(..cut);
    }
    Ok(buf)
}

/// Non-blank lines, and those with a stamp.
fn count_stamps(text: &[u8], parser: &StampParser) -> (usize, usize) {
    let mut n = 0;
    let mut stamped = 0;
    for line in text.split(|&b| b == b'\n').filter(|l| !l.iter().all(u8::is_ascii_whitespace)) {
        n += 1;
        stamped += usize::from(parser.parse(line).is_some());
    }
    (n, stamped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::LogFormat;

    #[test]
    fn counts_stamped_lines() {
        let p = StampParser::new(LogFormat::Plain, chrono_tz::Tz::UTC, chrono::Utc::now());
        assert_eq!(count_stamps(b"2026-11-23T10:00:00Z a\n  trace\n\nno stamp\n", &p), (3, 1));
    }
}
