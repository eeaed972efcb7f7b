//! Time-bucketed series: what the counters and histograms of
//! [`names::WINDOWED`] added in each minute (and each 5 minutes), so a
//! reader can ask "in the last hour" rather than "since the start".
//!
//! A delta is put in its buckets when it is recorded (not when it is
//! flushed), so a retried or spooled batch lands in the minute it happened.
//! Two resolutions ([`RESOLUTIONS`]): 1-minute buckets kept 2 h (windows up
//! to 2 h, exact to the minute) and 5-minute buckets kept 25 h (longer
//! windows, to 5 minutes). Memory is bounded by the buckets kept times the
//! series that changed in each.
//!
//! - Redis: one hash per bucket, `{prefix}:metrics:w:<width>:<start>`
//!   (fields as in the running totals' hash), given `EXPIREAT start + keep`
//!   by the flush script. They are the only metrics keys with a TTL: under
//!   `volatile-*` eviction Redis may drop a bucket before its time, and a
//!   window over it then reads lower by what that bucket held (the running
//!   totals, without a TTL, are never evicted).
//! - Locally: a ring of the same buckets for this process (the window during
//!   an outage or without Redis, and what is re-added when Redis lost its
//!   data).
//!
//! Bucket times are this host's wall clock (seconds since the epoch).

use std::collections::{BTreeMap, HashMap};

use super::names;

/// One bucket width and how long its buckets are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// Bucket width in seconds.
    pub width: u64,
    /// Seconds a bucket is kept after its start.
    pub keep: u64,
}

/// 1-minute buckets kept 2 h, 5-minute buckets kept 25 h.
pub const RESOLUTIONS: [Resolution; 2] = [Resolution { width: 60, keep: 2 * 3600 }, Resolution { width: 300, keep: 25 * 3600 }];

/// The longest window answered (minutes): 24 h.
pub const MAX_WINDOW_MINUTES: u32 = 24 * 60;

/// Whether a metric is kept in buckets.
pub fn windowed(name: &str) -> bool {
    names::WINDOWED.contains(&name)
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A bucket: its width and start (seconds since the epoch).
pub type Bucket = (u64, u64);

/// The bucket of `res` that holds time `t`.
pub fn bucket_at(res: Resolution, t: u64) -> Bucket {
    (res.width, t - t % res.width)
}

/// A bucket's key suffix (after `{prefix}:metrics:w:`).
pub fn suffix(b: Bucket) -> String {
    format!("{}:{}", b.0, b.1)
}

/// The delta field that the flush script adds to bucket `b`'s hash (field
/// `inner`) and expires at the bucket's end of keeping.
pub fn bucket_field(b: Bucket, inner: &str) -> String {
    let keep = RESOLUTIONS.iter().find(|r| r.width == b.0).map_or(0, |r| r.keep);
    format!("w\t{}\t{}\t{inner}", suffix(b), b.1 + keep)
}

/// The bucket and inner field of a [`bucket_field`], or `None`.
pub fn parse_bucket_field(field: &str) -> Option<(Bucket, &str)> {
    let rest = field.strip_prefix("w\t")?;
    let (suffix, rest) = rest.split_once('\t')?;
    let (_expire, inner) = rest.split_once('\t')?;
    let (width, start) = suffix.split_once(':')?;
    Some(((width.parse().ok()?, start.parse().ok()?), inner))
}

/// The buckets that make up the last `minutes` minutes at time `now`: the
/// current (partial) bucket and the whole ones before it, 1-minute buckets
/// up to 2 h, 5-minute ones beyond. `minutes` is clamped to 1..=24 h. The
/// window so covers between `minutes - width` and `minutes` of the past.
pub fn plan(minutes: u32, now: u64) -> Vec<Bucket> {
    let minutes = u64::from(minutes.clamp(1, MAX_WINDOW_MINUTES));
    let res = if minutes * 60 <= RESOLUTIONS[0].keep { RESOLUTIONS[0] } else { RESOLUTIONS[1] };
    let n = (minutes * 60).div_ceil(res.width);
    let (_, current) = bucket_at(res, now);
    (0..n).rev().filter_map(|i| current.checked_sub(i * res.width)).map(|start| (res.width, start)).collect()
}

/// This process's buckets (field -> value), pruned as time moves on.
#[derive(Default)]
pub(crate) struct Ring {
    buckets: BTreeMap<Bucket, HashMap<String, f64>>,
    /// The newest bucket start seen per width (pruning runs when it moves).
    newest: HashMap<u64, u64>,
}

impl Ring {
    /// Add `v` to `inner` in every resolution's bucket of time `t`; returns
    /// the delta fields for Redis.
    pub(crate) fn add(&mut self, t: u64, inner: &str, v: f64) -> Vec<String> {
        let mut fields = Vec::with_capacity(RESOLUTIONS.len());
        for res in RESOLUTIONS {
            let b = bucket_at(res, t);
            if self.newest.get(&res.width).is_none_or(|n| *n < b.1) {
                self.newest.insert(res.width, b.1);
                self.prune(res, t);
            }
            *self.buckets.entry(b).or_default().entry(inner.to_string()).or_insert(0.0) += v;
            fields.push(bucket_field(b, inner));
        }
        fields
    }

    fn prune(&mut self, res: Resolution, t: u64) {
        self.buckets.retain(|(w, start), _| *w != res.width || start + res.keep > t);
    }

    /// The summed fields of `buckets` (a [`plan`]).
    pub(crate) fn sum(&self, buckets: &[Bucket]) -> HashMap<String, f64> {
        let mut out: HashMap<String, f64> = HashMap::new();
        for b in buckets {
            for (f, v) in self.buckets.get(b).into_iter().flatten() {
                *out.entry(f.clone()).or_insert(0.0) += v;
            }
        }
        out
    }

    /// Every bucket still kept at `now`, as delta fields (re-added when Redis lost its data).
    pub(crate) fn all_fields(&self, now: u64) -> Vec<(String, f64)> {
        let kept = |(w, start): &Bucket| RESOLUTIONS.iter().any(|r| r.width == *w && start + r.keep > now);
        self.buckets
            .iter()
            .filter(|(b, _)| kept(b))
            .flat_map(|(b, fields)| fields.iter().map(move |(f, v)| (bucket_field(*b, f), *v)))
            .collect()
    }

    /// Buckets held (tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

/// Add the delta fields meant for `buckets` (this process's unflushed
/// ones) to `into`, by inner field.
pub(crate) fn add_pending(into: &mut HashMap<String, f64>, pending: impl IntoIterator<Item = (String, f64)>, buckets: &[Bucket]) {
    for (field, v) in pending {
        if let Some((b, inner)) = parse_bucket_field(&field) {
            if buckets.contains(&b) {
                *into.entry(inner.to_string()).or_insert(0.0) += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_picks_the_resolution_and_counts_buckets() {
        let minute = 1_000_000_020; // a minute's start (a multiple of 60)
        let now = minute + 59;
        let hour = plan(60, now);
        assert_eq!(hour.len(), 60);
        assert!(hour.iter().all(|b| b.0 == 60));
        assert_eq!(hour.last().unwrap().1, minute);
        assert_eq!(hour.last().unwrap().1 - hour[0].1, 59 * 60);
        let six = plan(360, now);
        assert_eq!((six.len(), six[0].0), (72, 300));
        let day = plan(1440, now);
        assert_eq!(day.len(), 288);
        // Clamped: nothing beyond a day, nothing below a minute.
        assert_eq!(plan(100_000, now).len(), 288);
        assert_eq!(plan(0, now).len(), 1);
    }

    #[test]
    fn fields_round_trip() {
        let f = bucket_field((60, 120), "c\tx\t[]");
        assert_eq!(f, format!("w\t60:120\t{}\tc\tx\t[]", 120 + 7200));
        assert_eq!(parse_bucket_field(&f), Some(((60, 120), "c\tx\t[]")));
        assert_eq!(parse_bucket_field("c\tx\t[]"), None);
    }

    #[test]
    fn ring_sums_windows_and_forgets_old_buckets() {
        let mut r = Ring::default();
        let t0 = 1_800_000_000; // a multiple of 300: a 5-minute bucket's start
        r.add(t0, "a", 1.0);
        r.add(t0 + 30, "a", 2.0);
        r.add(t0 + 90, "a", 4.0);
        // The last minute (t0+90's bucket) holds 4; two minutes hold all.
        assert_eq!(r.sum(&plan(1, t0 + 90))["a"], 4.0);
        assert_eq!(r.sum(&plan(2, t0 + 90))["a"], 7.0);
        assert_eq!(r.sum(&plan(360, t0 + 90))["a"], 7.0);
        // 3 h later the minute buckets are gone, the 5-minute one is kept.
        let later = t0 + 3 * 3600;
        r.add(later, "b", 1.0);
        assert_eq!(r.sum(&plan(240, later)).get("a"), Some(&7.0));
        assert!(!r.sum(&plan(120, later)).contains_key("a"));
        assert_eq!(r.len(), 3); // t0's 5-minute bucket, later's minute and 5-minute ones
                                // 26 h later only the new buckets are held.
        let much_later = t0 + 26 * 3600;
        r.add(much_later, "c", 1.0);
        assert!(r.all_fields(much_later).iter().all(|(f, _)| !f.ends_with("\ta")));
    }
}
