//! The miner on lines the tests make themselves: grouping, determinism
//! across workers and chunkings, merging, the cap.

use std::fs::File;
use std::io::Write;

use proptest::prelude::*;

use super::*;

/// A small generated log: events with words that name them and values that
/// vary (numbers, users, hosts, ids), in an order the seed decides.
fn lines(seed: u64, n: usize) -> Vec<String> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let users = ["ann", "bo", "cy", "di", "ed", "flo", "gus", "hal", "ivy", "jo"];
    (0..n)
        .map(|_| {
            let r = next();
            let u = users[(r >> 8) as usize % users.len()];
            match r % 7 {
                0 => format!("Accepted publickey for {u} from 10.0.{}.{} port {}", r >> 20 & 255, r >> 28 & 255, r >> 36 & 0xffff),
                1 => format!("Failed password for {u} from 10.1.{}.{} port {}", r >> 20 & 255, r >> 28 & 255, r >> 36 & 0xffff),
                2 => format!("VM {} (Lifecycle Event)", ["Started", "Stopped", "Paused"][(r >> 12) as usize % 3]),
                3 => format!(
                    "request {:x}-{:x} done in {}ms status={}",
                    r >> 16,
                    r >> 40,
                    r >> 50 & 1023,
                    [200, 404, 500][(r >> 5) as usize % 3]
                ),
                4 => format!("opened /var/lib/app/{}/data.db for {u}@example.org", r >> 44 & 0xff),
                5 => format!("worker {} restarted after {} crashes", r >> 30 & 31, r >> 10 & 7),
                _ => format!("cache {} size {} KB", ["hit", "miss"][(r >> 3) as usize % 2], r >> 33 & 4095),
            }
        })
        .collect()
}

fn mine(ls: &[String]) -> Miner {
    let mut m = Miner::new(Config::default());
    for (i, l) in ls.iter().enumerate() {
        m.add(l.as_bytes(), Loc { source: 0, offset: i as u64 }, None);
    }
    m
}

fn templates(s: &Summary) -> Vec<(String, String, u64)> {
    s.patterns.iter().map(|p| (p.id.clone(), p.template.clone(), p.stats.count)).collect()
}

#[test]
fn events_group_by_their_words_and_values_become_placeholders() {
    let s = mine(&lines(7, 2000)).summarize();
    let t: Vec<&str> = s.patterns.iter().map(|p| p.template.as_str()).collect();
    assert!(t.contains(&"Accepted publickey for <*> from <IP> port <NUM>"), "{t:#?}");
    assert!(t.contains(&"Failed password for <*> from <IP> port <NUM>"), "{t:#?}");
    // A word with a few values each repeated names the event.
    for w in ["Started", "Stopped", "Paused"] {
        assert!(t.contains(&format!("VM {w} (Lifecycle Event)").as_str()), "{t:#?}");
    }
    assert!(t.contains(&"opened <PATH> for <EMAIL>"), "{t:#?}");
    assert!(t.contains(&"cache hit size <SIZE>") && t.contains(&"cache miss size <SIZE>"), "{t:#?}");
    assert_eq!(s.patterns.iter().map(|p| p.stats.count).sum::<u64>(), 2000);
    assert_eq!(s.lines, 2000);
}

#[test]
fn assign_gives_each_line_its_pattern() {
    let ls = lines(3, 500);
    let s = mine(&ls).summarize();
    let mut buf = Vec::new();
    let mut counts: std::collections::HashMap<String, u64> = Default::default();
    for l in &ls {
        *counts.entry(s.assign(l.as_bytes(), &mut buf).expect("every seen line has a pattern").id.clone()).or_default() += 1;
    }
    for p in &s.patterns {
        assert_eq!(counts[&p.id], p.stats.count, "{}", p.template);
    }
}

#[test]
fn first_last_and_example_are_the_least_and_greatest_locations() {
    let mut a = Miner::new(Config::default());
    a.add(b"disk full on sda1", Loc { source: 1, offset: 50 }, Some(5_000));
    let mut b = Miner::new(Config::default());
    b.add(b"disk full on sdb2", Loc { source: 0, offset: 900 }, Some(9_000));
    b.add(b"disk full on sdc3", Loc { source: 1, offset: 10 }, Some(1_000));
    a.merge(b);
    let s = a.summarize();
    assert_eq!(s.patterns.len(), 1);
    let p = &s.patterns[0].stats;
    assert_eq!((p.count, p.first, p.last), (3, Loc { source: 0, offset: 900 }, Loc { source: 1, offset: 50 }));
    assert_eq!((p.first_ms, p.last_ms), (Some(1_000), Some(9_000)));
    assert_eq!(&*p.example, "disk full on sdb2");
}

#[test]
fn the_cap_compacts_and_keeps_every_count() {
    let config = Config { max_shapes: 64, ..Config::default() };
    let mut m = Miner::new(config);
    for i in 0..5000u64 {
        // 5000 distinct shapes: a word that never repeats.
        let l = format!("session w{}x{} ended for {}", to_word(i), to_word(i * 7), ["a", "b"][i as usize % 2]);
        m.add(l.as_bytes(), Loc { source: 0, offset: i }, None);
    }
    assert!(m.shapes() <= 64, "{} shapes", m.shapes());
    assert!(m.compactions() > 0);
    let s = m.summarize();
    assert_eq!(s.patterns.iter().map(|p| p.stats.count).sum::<u64>(), 5000);
}

/// Digits as letters, so a test can make words that never repeat.
fn to_word(mut i: u64) -> String {
    let mut w = String::new();
    loop {
        w.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
        if i == 0 {
            return w;
        }
    }
}

fn file_of(ls: &[String]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for l in ls {
        writeln!(f, "Nov 23 08:15:00 web-01 app[12]: {l}").unwrap();
    }
    f.flush().unwrap();
    f
}

#[test]
fn a_file_mines_the_same_as_its_lines_in_one_table() {
    let ls = lines(11, 3000);
    let f = file_of(&ls);
    let file = File::open(f.path()).unwrap();
    let size = file.metadata().unwrap().len();
    // Tiny chunks: many boundaries inside lines.
    let m = mine_range(&file, 0, 0..size, MessageFormat::Auto, Config::default(), Split { workers: 3, chunk: 1000 }).unwrap();
    assert_eq!(m.lines(), 3000);
    assert_eq!(templates(&m.summarize()), templates(&mine(&ls).summarize()));
}

/// Every shape with its count and first/last byte offsets, sorted.
fn offsets(m: &Miner) -> Vec<(Vec<u8>, u64, Loc, Loc)> {
    let mut v: Vec<_> = m.shape_stats().map(|(k, s)| (k.to_vec(), s.count, s.first, s.last)).collect();
    v.sort();
    v
}

#[test]
fn chunks_and_blocks_see_every_line_once_at_its_offset() {
    // Lines of many lengths, one longer than a chunk, no newline at the end.
    let mut text = Vec::new();
    for (i, l) in lines(5, 400).iter().enumerate() {
        writeln!(text, "Nov 23 08:15:00 web-01 app[12]: {l}{}", " x".repeat(i % 7 * 40)).unwrap();
    }
    text.extend_from_slice(b"Nov 23 08:15:01 web-01 app[12]: last words 42");
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&text).unwrap();
    f.flush().unwrap();
    let file = File::open(f.path()).unwrap();
    let size = text.len() as u64;
    // Mining from a line start in the middle: the lines from there on.
    let from = text[..size as usize / 2].iter().rposition(|&b| b == b'\n').unwrap() as u64 + 1;
    for range in [0..size, from..size] {
        let mut whole = Miner::new(Config::default());
        whole.add_chunk(&text[range.start as usize..], 0, range.start, MessageFormat::Auto, None);
        for chunk in [7, 100, 999, 4096, size] {
            for workers in [1, 3] {
                let m = mine_range(&file, 0, range.clone(), MessageFormat::Auto, Config::default(), Split { workers, chunk }).unwrap();
                assert_eq!(m.lines(), whole.lines(), "chunk {chunk}");
                assert_eq!(offsets(&m), offsets(&whole), "chunk {chunk}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Workers 1, 2 and 8 give identical templates, ids and counts; so do
    /// other chunk sizes, and so does merging per-part tables in any order.
    #[test]
    fn deterministic_whatever_the_workers_chunks_and_merge_order(seed in 1u64.., n in 1usize..600, chunk in 200u64..5000, cut in 0usize..600) {
        let ls = lines(seed, n);
        let f = file_of(&ls);
        let file = File::open(f.path()).unwrap();
        let size = file.metadata().unwrap().len();
        let one = mine_range(&file, 0, 0..size, MessageFormat::Auto, Config::default(), Split { workers: 1, chunk }).unwrap().summarize();
        for workers in [2, 8] {
            let s = mine_range(&file, 0, 0..size, MessageFormat::Auto, Config::default(), Split { workers, chunk }).unwrap().summarize();
            prop_assert_eq!(templates(&s), templates(&one));
            prop_assert_eq!(s.patterns.iter().map(|p| (p.stats.first, p.stats.last)).collect::<Vec<_>>(), one.patterns.iter().map(|p| (p.stats.first, p.stats.last)).collect::<Vec<_>>());
        }
        let other = mine_range(&file, 0, 0..size, MessageFormat::Auto, Config::default(), Split { workers: 2, chunk: CHUNK }).unwrap().summarize();
        prop_assert_eq!(templates(&other), templates(&one));
        // Two parts merged either way round.
        let cut = cut.min(n);
        let (a, b) = (mine(&ls[..cut]), mine(&ls[cut..]));
        let mut ab = a.clone();
        ab.merge(b.clone());
        let mut ba = b;
        ba.merge(a);
        prop_assert_eq!(templates(&ab.summarize()), templates(&one));
        prop_assert_eq!(templates(&ba.summarize()), templates(&one));
    }
}
