//! Log patterns: every line's message maps to a template whose variable parts
//! are typed placeholders (`<NUM>`, `<IP>`, ...) or `<*>`; lines of one
//! template are counted together. Knows nothing of MCP, Redis or wasmtime.
//!
//! Two stages (design and reasons in `docs/patterns.md`):
//! 1. [`Miner`]: per line, the message's *shape* (masked tokens, [`mask`]) is
//!    counted in a table of shapes with first/last location, first/last stamp
//!    and one example. This is the hot path; tables of chunks, files or
//!    workers merge by adding counts, which is commutative.
//! 2. [`Miner::summarize`]: the distinct shapes, in a canonical order, are
//!    clustered into patterns ([`cluster`]). The input of this stage is a set,
//!    so its output is the same whatever the chunking or the worker count.
//!
//! Memory is bounded: when a table holds more than [`Config::max_shapes`]
//! shapes it is compacted, each shape replaced by its pattern's template
//! (counts added); [`mine_file`] cuts files into chunks at fixed offsets and
//! folds their tables in chunk order, so even a compaction happens at the same
//! point whatever the number of workers.

pub mod cli;
pub mod cluster;
mod files;
pub mod mask;
mod memo;
pub mod message;
mod scan;
mod shaper;

use rustc_hash::FxHashMap;

pub use files::{mine_file, mine_range, Split, CHUNK};
pub use message::MessageFormat;

/// Tuning. One default for every log: the rules are general.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// Share of a shape's tokens that must agree with a pattern to join it.
    pub similarity: f64,
    /// A differing position with at most this many distinct words (and no
    /// typed placeholder) names events: the group splits there.
    pub few_values: usize,
    /// Most distinct shapes a [`Miner`] keeps before compacting.
    pub max_shapes: usize,
    /// Longest example kept per shape (bytes).
    pub max_example: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config { similarity: 0.6, few_values: 5, max_shapes: 50_000, max_example: 300 }
    }
}

/// Where a line is: which source (file) and the byte offset of its start.
/// Ordered by source, then offset: the first/last of a pattern are the least
/// and greatest locations, which is what makes merging order-free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Loc {
    pub source: u32,
    pub offset: u64,
}

/// What is known of one shape (or one pattern: the sum of its shapes).
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub first: Loc,
    pub last: Loc,
    /// Earliest and latest stamp (ms since the epoch) of lines that had one.
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// The message of the line at `first` (cut at [`Config::max_example`]).
    pub example: Box<str>,
}

impl Stats {
    fn new(loc: Loc, ms: Option<i64>, example: &[u8], max: usize) -> Stats {
        Stats { count: 1, first: loc, last: loc, first_ms: ms, last_ms: ms, example: cut_example(example, max) }
    }

    pub fn absorb(&mut self, o: Stats) {
        self.count += o.count;
        if o.first < self.first {
            self.first = o.first;
            self.example = o.example;
        }
        self.last = self.last.max(o.last);
        self.first_ms = min_opt(self.first_ms, o.first_ms);
        self.last_ms = self.last_ms.max(o.last_ms);
    }
}

/// The smaller of two optional stamps (either may be unknown).
pub(crate) fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn cut_example(b: &[u8], max: usize) -> Box<str> {
    let s = String::from_utf8_lossy(&b[..b.len().min(max)]);
    s.into_owned().into_boxed_str()
}

/// Reads a line's stamp (ms since the epoch), for first/last times.
pub type StampFn<'a> = &'a dyn Fn(&[u8]) -> Option<i64>;

/// The table of shapes: what lines were seen, mergeable with other tables.
#[derive(Debug, Clone)]
pub struct Miner {
    config: Config,
    shapes: FxHashMap<Box<[u8]>, Stats>,
    lines: u64,
    compactions: u32,
    buf: Vec<u8>,
}

impl Miner {
    pub fn new(config: Config) -> Miner {
        Miner { config, shapes: FxHashMap::default(), lines: 0, compactions: 0, buf: Vec::with_capacity(256) }
    }

    /// Lines added (to this table and the ones merged into it).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Distinct shapes held now.
    pub fn shapes(&self) -> usize {
        self.shapes.len()
    }

    /// How many times the table was compacted to stay under its cap.
    pub fn compactions(&self) -> u32 {
        self.compactions
    }

    /// Adds one message (already taken out of its line).
    pub fn add(&mut self, msg: &[u8], loc: Loc, ms: Option<i64>) {
        self.add_shaped(msg, loc, ms);
    }

    /// [`Miner::add`], returning the message's shape (the key its pattern
    /// is found by in [`Summary::pattern_of_shape`]).
    pub fn add_shaped(&mut self, msg: &[u8], loc: Loc, ms: Option<i64>) -> &[u8] {
        self.lines += 1;
        let mut buf = std::mem::take(&mut self.buf);
        mask::shape(msg, &mut buf);
        if let Some(s) = self.shapes.get_mut(buf.as_slice()) {
            s.count += 1;
            // Lines come in file order within one table, so `loc` is the last.
            if loc > s.last {
                s.last = loc;
            }
            if loc < s.first {
                s.first = loc;
                s.example = cut_example(msg, self.config.max_example);
            }
            if ms.is_some() {
                s.first_ms = min_opt(s.first_ms, ms);
                s.last_ms = s.last_ms.max(ms);
            }
        } else {
            self.shapes.insert(buf.as_slice().into(), Stats::new(loc, ms, msg, self.config.max_example));
            if self.shapes.len() > self.config.max_shapes {
                self.compact();
            }
        }
        self.buf = buf;
        &self.buf
    }

    /// Every shape held and what is known of its lines.
    pub fn shape_stats(&self) -> impl Iterator<Item = (&[u8], &Stats)> {
        self.shapes.iter().map(|(k, v)| (&k[..], v))
    }

    /// Moves the locations of `source` by `delta` (wrapping): a chunk's
    /// relative line numbers made absolute once the lines before it are known.
    pub fn shift(&mut self, source: u32, delta: u64) {
        for s in self.shapes.values_mut() {
            for loc in [&mut s.first, &mut s.last] {
                if loc.source == source {
                    loc.offset = loc.offset.wrapping_add(delta);
                }
            }
        }
    }

    /// Adds every line of `bytes` (a chunk of source `source` that starts at
    /// byte `base` of it, holding whole lines); `stamp` reads a line's stamp
    /// when the caller wants first/last times.
    pub fn add_chunk(&mut self, bytes: &[u8], source: u32, base: u64, format: MessageFormat, stamp: Option<StampFn>) {
        let mut start = 0usize;
        for end in memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())) {
            if end == bytes.len() && start == end {
                break;
            }
            let mut line = &bytes[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let ms = stamp.and_then(|f| f(line));
            self.add(message::message(line, format), Loc { source, offset: base + start as u64 }, ms);
            start = end + 1;
        }
    }

    /// Adds another table into this one.
    pub fn merge(&mut self, other: Miner) {
        self.lines += other.lines;
        self.compactions += other.compactions;
        for (k, v) in other.shapes {
            match self.shapes.get_mut(&k) {
                Some(s) => s.absorb(v),
                None => {
                    self.shapes.insert(k, v);
                }
            }
        }
        if self.shapes.len() > self.config.max_shapes {
            self.compact();
        }
    }

    /// Replaces shapes by their patterns' templates until under the cap; if
    /// clustering alone cannot get there, shapes of one length and first
    /// token fold into one, then shapes of one length.
    fn compact(&mut self) {
        self.compactions += 1;
        let target = self.config.max_shapes / 2;
        let groups = self.groups();
        self.shapes = self.fold(groups.into_iter().map(|g| (g.template, g.members)).collect());
        for level in 0..2 {
            if self.shapes.len() <= target {
                break;
            }
            let keys = self.sorted_keys();
            let mut by: std::collections::BTreeMap<Vec<u8>, Vec<usize>> = Default::default();
            for (i, k) in keys.iter().enumerate() {
                let toks = k.split(|&b| b == b' ').count();
                let first: &[u8] = if level == 0 { k.split(|&b| b == b' ').next().unwrap_or(b"") } else { b"" };
                let mut key = toks.to_be_bytes().to_vec();
                key.extend_from_slice(first);
                by.entry(key).or_default().push(i);
            }
            let groups = by
                .into_values()
                .map(|members| {
                    let mut tpl: Vec<&[u8]> = keys[members[0]].split(|&b| b == b' ').collect();
                    for &m in &members[1..] {
                        for (a, b) in tpl.iter_mut().zip(keys[m].split(|&b| b == b' ')) {
                            if *a != b {
                                *a = mask::WILDCARD;
                            }
                        }
                    }
                    (tpl.join(&b' '), members)
                })
                .collect();
            self.shapes = self.fold(groups);
        }
    }

    fn sorted_keys(&self) -> Vec<Box<[u8]>> {
        let mut keys: Vec<Box<[u8]>> = self.shapes.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Rebuilds the table with each group of (sorted) keys as one key.
    fn fold(&mut self, groups: Vec<(Vec<u8>, Vec<usize>)>) -> FxHashMap<Box<[u8]>, Stats> {
        let keys = self.sorted_keys();
        let mut old = std::mem::take(&mut self.shapes);
        let mut out: FxHashMap<Box<[u8]>, Stats> = FxHashMap::default();
        for (template, members) in groups {
            let mut acc: Option<Stats> = None;
            for m in members {
                let s = old.remove(&keys[m]).expect("every key is in one group");
                match &mut acc {
                    Some(a) => a.absorb(s),
                    None => acc = Some(s),
                }
            }
            let s = acc.expect("groups are not empty");
            match out.get_mut(template.as_slice()) {
                Some(o) => o.absorb(s),
                None => {
                    out.insert(template.into_boxed_slice(), s);
                }
            }
        }
        out
    }

    /// Clusters the current shapes; members index [`Self::sorted_keys`].
    fn groups(&self) -> Vec<cluster::Group> {
        let keys = self.sorted_keys();
        let input: Vec<(&[u8], u64)> = keys.iter().map(|k| (&k[..], self.shapes[k].count)).collect();
        cluster::cluster(&input, self.config.similarity, self.config.few_values)
    }

    /// The patterns of everything added, most frequent first.
    pub fn summarize(&self) -> Summary {
        let keys = self.sorted_keys();
        let groups = self.groups();
        let mut patterns = Vec::with_capacity(groups.len());
        let mut index: FxHashMap<Box<[u8]>, usize> = FxHashMap::default();
        let mut templates: FxHashMap<Vec<u8>, usize> = FxHashMap::default();
        for g in groups {
            let mut acc: Option<Stats> = None;
            for &m in &g.members {
                let s = self.shapes[&keys[m]].clone();
                match &mut acc {
                    Some(a) => a.absorb(s),
                    None => acc = Some(s),
                }
            }
            let stats = acc.expect("groups are not empty");
            // Two groups can end with one template (different lengths do
            // not, but a compacted key and a later shape can): one pattern.
            let at = match templates.get(&g.template) {
                Some(&at) => {
                    let p: &mut Pattern = &mut patterns[at];
                    p.stats.absorb(stats);
                    at
                }
                None => {
                    let at = patterns.len();
                    templates.insert(g.template.clone(), at);
                    patterns.push(Pattern {
                        id: pattern_id(&g.template),
                        template: String::from_utf8_lossy(&g.template).into_owned(),
                        shapes: 0,
                        stats,
                    });
                    at
                }
            };
            patterns[at].shapes += g.members.len();
            for &m in &g.members {
                index.insert(keys[m].clone(), at);
            }
        }
        // Most frequent first; ties by id so the order is total.
        let mut order: Vec<usize> = (0..patterns.len()).collect();
        order.sort_by(|&a, &b| patterns[b].stats.count.cmp(&patterns[a].stats.count).then_with(|| patterns[a].id.cmp(&patterns[b].id)));
        let mut rank = vec![0; patterns.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut sorted: Vec<Option<Pattern>> = patterns.into_iter().map(Some).collect();
        let patterns: Vec<Pattern> = order.iter().map(|&i| sorted[i].take().expect("each once")).collect();
        for v in index.values_mut() {
            *v = rank[*v];
        }
        Summary { lines: self.lines, compactions: self.compactions, patterns, index }
    }
}

/// A stable id of a template: the same template has the same id in every
/// run, file and version of logai (FNV-1a 64, not the std hasher).
pub fn pattern_id(template: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in template {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("p{:012x}", h >> 16)
}

/// One pattern and what is known of its lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub id: String,
    pub template: String,
    /// Distinct shapes it holds.
    pub shapes: usize,
    pub stats: Stats,
}

/// The patterns of a [`Miner`], most frequent first.
#[derive(Debug, Clone)]
pub struct Summary {
    pub lines: u64,
    pub compactions: u32,
    pub patterns: Vec<Pattern>,
    /// Shape key -> index in `patterns`.
    index: FxHashMap<Box<[u8]>, usize>,
}

impl Summary {
    /// The `n` most frequent patterns.
    pub fn top(&self, n: usize) -> &[Pattern] {
        &self.patterns[..n.min(self.patterns.len())]
    }

    /// Index in `patterns` of the pattern holding `shape` (a key of a table
    /// this summary was made from, as [`Miner::add_shaped`] returns), or of
    /// the best matching template.
    pub fn pattern_of_shape(&self, shape: &[u8]) -> Option<usize> {
        if let Some(&i) = self.index.get(shape) {
            return Some(i);
        }
        self.best_template(shape)
    }

    /// The pattern a message belongs to: its shape's, or (for a shape the
    /// table no longer holds after a compaction, or never saw) the pattern
    /// whose template it matches best, if any matches at all.
    pub fn assign(&self, msg: &[u8], buf: &mut Vec<u8>) -> Option<&Pattern> {
        mask::shape(msg, buf);
        self.pattern_of_shape(buf).map(|i| &self.patterns[i])
    }

    fn best_template(&self, shape: &[u8]) -> Option<usize> {
        let toks: Vec<&[u8]> = shape.split(|&b| b == b' ').collect();
        let mut best: Option<(usize, usize)> = None;
        for (i, p) in self.patterns.iter().enumerate() {
            let tpl: Vec<&[u8]> = p.template.as_bytes().split(|&b| b == b' ').collect();
            if tpl.len() != toks.len() || !tpl.iter().zip(&toks).all(|(a, b)| a == b || *a == mask::WILDCARD) {
                continue;
            }
            let exact = tpl.iter().zip(&toks).filter(|(a, b)| a == b).count();
            if best.is_none_or(|(_, e)| exact > e) {
                best = Some((i, exact));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests;
