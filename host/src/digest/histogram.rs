//! The time grid of a histogram: a round step from a window (or the lines'
//! time range) giving at most [`AUTO_BUCKETS`] buckets, and the buckets
//! filled from sparse counts.

use rustc_hash::FxHashMap;

use logai_records::aggregate::TimeBucket;

/// Buckets an automatic step aims at, at most.
pub const AUTO_BUCKETS: i64 = 60;
/// Most buckets an answer holds (a given step over a long window is
/// refused beyond this; stamps far outside the expected range widen the
/// step instead).
pub const MAX_BUCKETS: i64 = 1000;

/// Round steps, in seconds.
const STEPS: [i64; 22] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 2_592_000, 31_536_000,
];

/// Step and origin of the buckets, and the span they cover whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub origin_ms: i64,
    pub step_ms: i64,
    /// `[start, end)` the buckets cover even where no line is (the window).
    pub span: Option<(i64, i64)>,
    /// No step was given: without a span, the buckets widen to a round
    /// step giving at most [`AUTO_BUCKETS`] over the lines seen.
    pub auto: bool,
}

/// Which buckets an answer shows: grid steps per bucket and the first and
/// last bucket (grid index / `k`).
#[derive(Clone, Copy, Debug)]
struct Layout {
    k: i64,
    first: i64,
    last: i64,
}

impl Grid {
    /// A grid over the window `[start, end)` (`None`: one-minute steps
    /// from the Unix epoch, widened once the lines are seen), with
    /// `step_seconds` or an automatic round step.
    pub fn new(span: Option<(i64, i64)>, step_seconds: Option<u32>) -> Result<Grid, String> {
        let len = span.map(|(s, e)| (e - s).max(1));
        let step_ms = match (step_seconds, len) {
            (Some(0), _) => return Err("step_seconds must be at least 1".into()),
            (Some(s), Some(len)) => {
                let step = s as i64 * 1000;
                if len / step > MAX_BUCKETS {
                    return Err(format!(
                        "step_seconds={s} over a window of {} s gives {} buckets, more than {MAX_BUCKETS}; take a larger step or leave it out for an automatic one",
                        len / 1000,
                        len / step
                    ));
                }
                step
            }
            (Some(s), None) => s as i64 * 1000,
            (None, Some(len)) => round_step(len, 1),
            (None, None) => 60_000,
        };
        let origin_ms = span.map_or(0, |(s, _)| s.div_euclid(step_ms) * step_ms);
        Ok(Grid { origin_ms, step_ms, span, auto: step_seconds.is_none() })
    }

    /// The bucket of a stamp.
    pub fn index(&self, ms: i64) -> i64 {
        (ms - self.origin_ms).div_euclid(self.step_ms)
    }

    fn layout<V>(&self, seen: &FxHashMap<i64, V>) -> Option<Layout> {
        let mut lo = seen.keys().min().copied();
        let mut hi = seen.keys().max().copied();
        if let Some((s, e)) = self.span {
            let (a, b) = (self.index(s), self.index(e - 1));
            lo = Some(lo.map_or(a, |l| l.min(a)));
            hi = Some(hi.map_or(b, |h| h.max(b)));
        }
        let (lo, hi) = (lo?, hi?);
        let k = if self.span.is_none() && self.auto {
            // Round steps over the lines seen (the grid starts at the epoch,
            // so a round step's buckets start at round times).
            round_step((hi - lo + 1) * self.step_ms, self.step_ms) / self.step_ms
        } else {
            // Stamps far outside the window (out of order): widen.
            ((hi - lo + 1 + MAX_BUCKETS - 1) / MAX_BUCKETS).max(1)
        };
        Some(Layout { k, first: lo.div_euclid(k), last: hi.div_euclid(k) })
    }

    /// The step the buckets have (the grid's, or wider, see [`Grid::layout`]).
    pub fn step_of<V>(&self, seen: &FxHashMap<i64, V>) -> i64 {
        self.layout(seen).map_or(self.step_ms, |l| self.step_ms * l.k)
    }

    /// Every bucket from the first to the last (empty ones too).
    pub fn buckets(&self, seen: &FxHashMap<i64, [u64; 2]>) -> Vec<TimeBucket> {
        let Some(l) = self.layout(seen) else { return Vec::new() };
        let mut out: Vec<TimeBucket> =
            (l.first..=l.last).map(|j| TimeBucket { start_ms: self.origin_ms + j * l.k * self.step_ms, lines: 0, errors: 0 }).collect();
        for (i, v) in seen {
            let b = &mut out[(i.div_euclid(l.k) - l.first) as usize];
            b.lines += v[0];
            b.errors += v[1];
        }
        out
    }

    /// A group's counts aligned with `buckets` (made by [`Grid::buckets`]).
    pub fn series(&self, by_bucket: &FxHashMap<i64, u64>, buckets: &[TimeBucket]) -> Vec<u64> {
        let mut out = vec![0; buckets.len()];
        let Some(first) = buckets.first() else { return out };
        let step = buckets.get(1).map_or(self.step_ms, |b| b.start_ms - first.start_ms);
        for (i, n) in by_bucket {
            let start = self.origin_ms + i * self.step_ms;
            let j = (start - first.start_ms).div_euclid(step);
            if let Some(slot) = out.get_mut(j as usize) {
                *slot += n;
            }
        }
        out
    }
}

/// The smallest round step (a multiple of `unit`) giving at most
/// [`AUTO_BUCKETS`] buckets over `len` ms.
fn round_step(len: i64, unit: i64) -> i64 {
    STEPS
        .iter()
        .map(|s| s * 1000)
        .filter(|s| s % unit == 0)
        .find(|s| (len + s - 1) / s <= AUTO_BUCKETS)
        .unwrap_or(STEPS[STEPS.len() - 1] * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_steps_are_round_and_few() {
        let day = 86_400_000;
        let g = Grid::new(Some((0, day)), None).unwrap();
        assert_eq!(g.step_ms, 1_800_000);
        let g = Grid::new(Some((0, 3_600_000)), None).unwrap();
        assert_eq!(g.step_ms, 60_000);
        assert!(Grid::new(Some((0, day)), Some(1)).unwrap_err().contains("more than 1000"));
    }

    #[test]
    fn without_a_window_the_buckets_widen_to_a_round_step_over_the_lines() {
        let g = Grid::new(None, None).unwrap();
        let mut seen = FxHashMap::default();
        let day = 86_400_000;
        seen.insert(g.index(20_000 * day + 5), [1, 0]);
        seen.insert(g.index(20_002 * day + 7_000_000), [2, 1]);
        let b = g.buckets(&seen);
        assert!(b.len() <= AUTO_BUCKETS as usize, "{}", b.len());
        assert_eq!(g.step_of(&seen), 3_600_000);
        assert_eq!(b[0].start_ms, 20_000 * day);
        assert_eq!(b.iter().map(|b| b.lines).sum::<u64>(), 3);
    }

    #[test]
    fn buckets_cover_the_window_and_sum_to_the_lines() {
        let g = Grid::new(Some((1_000, 601_000)), Some(60)).unwrap();
        let mut seen = FxHashMap::default();
        seen.insert(g.index(1_000), [2, 1]);
        seen.insert(g.index(599_999), [3, 0]);
        let b = g.buckets(&seen);
        assert_eq!(b.len(), 11);
        assert_eq!(b.iter().map(|b| b.lines).sum::<u64>(), 5);
        let series = g.series(&[(g.index(599_999), 3)].into_iter().collect(), &b);
        assert_eq!(series.iter().sum::<u64>(), 3);
    }
}
