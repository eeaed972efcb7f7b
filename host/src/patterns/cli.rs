//! `logai patterns`: mines one file from the shell.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use super::{mine_file, Config, MessageFormat, Pattern};

#[derive(Args, Debug, Clone)]
pub struct PatternsArgs {
    /// The log file to mine.
    #[arg(long)]
    pub input: PathBuf,
    /// `auto`: strip each line's stamp and syslog header or JSON envelope;
    /// `message`: each line is a bare message.
    #[arg(long, default_value = "auto")]
    pub format: MessageFormat,
    /// One JSON document: line count and every pattern with count, first and
    /// last byte offset and an example.
    #[arg(long)]
    pub json: bool,
    /// Print, for each input line in order, the id of its pattern.
    #[arg(long)]
    pub assign: bool,
    /// Patterns to print (text output); 0 for all.
    #[arg(long, default_value_t = 50)]
    pub top: usize,
    /// Threads (default: available parallelism). The result does not depend on it.
    #[arg(long)]
    pub workers: Option<usize>,
}

pub fn run(args: &PatternsArgs) -> anyhow::Result<()> {
    let workers = args.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let miner = mine_file(&args.input, 0, args.format, Config::default(), workers)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.input.display()))?;
    let summary = miner.summarize();
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    if args.assign {
        let file = std::fs::File::open(&args.input)?;
        let mut reader = io::BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        let mut buf = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            let mut l = line.as_slice();
            if l.last() == Some(&b'\n') {
                l = &l[..l.len() - 1];
            }
            if l.last() == Some(&b'\r') {
                l = &l[..l.len() - 1];
            }
            let msg = super::message::message(l, args.format);
            match summary.assign(msg, &mut buf) {
                Some(p) => writeln!(out, "{}", p.id)?,
                None => writeln!(out, "-")?,
            }
        }
    } else if args.json {
        let v = serde_json::json!({
            "file": args.input.display().to_string(),
            "lines": summary.lines,
            "patterns_total": summary.patterns.len(),
            "compactions": summary.compactions,
            "patterns": summary.patterns.iter().map(pattern_json).collect::<Vec<_>>(),
        });
        serde_json::to_writer(&mut out, &v)?;
        writeln!(out)?;
    } else {
        let shown = if args.top == 0 { summary.patterns.len() } else { args.top };
        writeln!(out, "{} lines, {} patterns", summary.lines, summary.patterns.len())?;
        for p in summary.top(shown) {
            let share = 100.0 * p.stats.count as f64 / summary.lines.max(1) as f64;
            writeln!(out, "{:>10} {:>6.2}% {} {}", p.stats.count, share, p.id, p.template)?;
        }
        if shown < summary.patterns.len() {
            writeln!(out, "... {} more patterns (--top 0 for all)", summary.patterns.len() - shown)?;
        }
    }
    out.flush()?;
    Ok(())
}

fn pattern_json(p: &Pattern) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "template": p.template,
        "count": p.stats.count,
        "shapes": p.shapes,
        "first_offset": p.stats.first.offset,
        "last_offset": p.stats.last.offset,
        "example": p.stats.example,
    })
}
