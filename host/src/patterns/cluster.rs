//! From shapes to patterns: shapes of one length whose tokens mostly agree
//! are one pattern, the positions where they differ become [`WILDCARD`].
//!
//! The input is the set of distinct shapes with their counts, never the lines
//! in their arrival order, and it is visited in one canonical order (length,
//! then count descending, then bytes): so the result depends only on which
//! shapes were seen how often, not on chunking, worker count or order.

use rustc_hash::FxHashMap;

use super::mask::WILDCARD;

/// One pattern: its template tokens (joined by spaces) and the indices of the
/// input shapes it holds.
#[derive(Debug, Clone)]
pub struct Group {
    pub template: Vec<u8>,
    pub members: Vec<usize>,
}

/// Clusters `shapes` (key bytes, count); `threshold` is the share of
/// positions that must agree (0..=1).
pub fn cluster(shapes: &[(&[u8], u64)], threshold: f64, few: usize) -> Vec<Group> {
    let mut dict: FxHashMap<&[u8], u32> = FxHashMap::default();
    let mut words: Vec<&[u8]> = vec![WILDCARD];
    dict.insert(WILDCARD, 0);
    let toks: Vec<Vec<u32>> = shapes
        .iter()
        .map(|(k, _)| {
            k.split(|&b| b == b' ')
                .filter(|t| !t.is_empty())
                .map(|t| {
                    *dict.entry(t).or_insert_with(|| {
                        words.push(t);
                        (words.len() - 1) as u32
                    })
                })
                .collect()
        })
        .collect();
    let counts: Vec<u64> = shapes.iter().map(|s| s.1).collect();
    let mut order: Vec<usize> = (0..shapes.len()).collect();
    order.sort_by(|&a, &b| toks[a].len().cmp(&toks[b].len()).then(shapes[b].1.cmp(&shapes[a].1)).then(shapes[a].0.cmp(shapes[b].0)));

    // Tokens holding a typed placeholder, and tokens that are one.
    let placeholder: Vec<bool> = words.iter().map(|w| w.contains(&b'<') && w.contains(&b'>')).collect();
    let pure: Vec<bool> = words.iter().map(|w| w.len() > 2 && w[0] == b'<' && w[w.len() - 1] == b'>' && !w[1..].contains(&b'<')).collect();
    let mut out: Vec<Group> = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let len = toks[order[i]].len();
        let mut j = i;
        while j < order.len() && toks[order[j]].len() == len {
            j += 1;
        }
        let mut refined = Vec::new();
        for g in group_of_length(&order[i..j], &toks, &pure, threshold) {
            refine(g.1, &toks, &counts, &placeholder, few, &mut refined);
        }
        for g in refined {
            let mut template = Vec::new();
            for (k, &w) in g.0.iter().enumerate() {
                if k > 0 {
                    template.push(b' ');
                }
                template.extend_from_slice(words[w as usize]);
            }
            out.push(Group { template, members: g.1 });
        }
        i = j;
    }
    out
}

/// Greedy clustering of shapes of one length, visited in the given order.
fn group_of_length(order: &[usize], toks: &[Vec<u32>], pure: &[bool], threshold: f64) -> Vec<(Vec<u32>, Vec<usize>)> {
    let mut groups: Vec<(Vec<u32>, Vec<usize>)> = Vec::new();
    for &s in order {
        let t = &toks[s];
        let len = t.len().max(1);
        let mut best: Option<(usize, usize)> = None;
        for (gi, (tpl, _)) in groups.iter().enumerate() {
            // Two typed placeholders agree whatever their types: `003a90fc`
            // (hex) and `01290878` (digits) are one variable's values.
            let same = tpl.iter().zip(t).filter(|(a, b)| **a != 0 && (a == b || (pure[**a as usize] && pure[**b as usize]))).count();
            if best.is_none_or(|(_, m)| same > m) {
                best = Some((gi, same));
            }
        }
        match best {
            Some((gi, same)) if same as f64 >= threshold * len as f64 && !t.is_empty() => {
                let g = &mut groups[gi];
                for (a, b) in g.0.iter_mut().zip(t) {
                    if a != b {
                        *a = 0;
                    }
                }
                g.1.push(s);
            }
            _ => groups.push((t.clone(), vec![s])),
        }
    }
    groups
}

/// Splits a group at a differing position that holds only a few distinct
/// words (`VM Started` / `VM Stopped`): few values repeated is the mark of a
/// constant that names the event; a variable (a user, a host) takes many.
/// A position where some value is a typed placeholder is a variable.
// Positions index every member's tokens, not one slice.
#[allow(clippy::needless_range_loop)]
fn refine(members: Vec<usize>, toks: &[Vec<u32>], counts: &[u64], placeholder: &[bool], few: usize, out: &mut Vec<(Vec<u32>, Vec<usize>)>) {
    let first = &toks[members[0]];
    let mut best: Option<(usize, usize)> = None;
    for p in 0..first.len() {
        let mut vals: Vec<(u32, u64)> = members.iter().map(|&m| (toks[m][p], counts[m])).collect();
        vals.sort_unstable();
        vals.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });
        let d = vals.len();
        // Values seen once each say nothing of repetition: a variable.
        if d < 2 || d > few || vals.iter().any(|&(v, _)| placeholder[v as usize]) || vals.iter().all(|&(_, c)| c == 1) {
            continue;
        }
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((p, d));
        }
    }
    match best {
        Some((p, _)) => {
            let mut parts: std::collections::BTreeMap<u32, Vec<usize>> = Default::default();
            for m in members {
                parts.entry(toks[m][p]).or_default().push(m);
            }
            for (_, part) in parts {
                refine(part, toks, counts, placeholder, few, out);
            }
        }
        None => {
            let mut tpl = first.clone();
            for &m in &members[1..] {
                for (a, b) in tpl.iter_mut().zip(&toks[m]) {
                    if a != b {
                        *a = 0;
                    }
                }
            }
            out.push((tpl, members));
        }
    }
}
