use super::*;
use std::io::{Read, Seek, SeekFrom};

/// JSON written elsewhere and pushed as bytes reads back as the same entries pushed
/// as values, small ones staged and large ones written as chunks of their own.
#[test]
fn pushed_bytes_read_back_like_pushed_values() {
    let (mut bytes, mut values) = (KeyedFile::new().unwrap(), KeyedFile::new().unwrap());
    for (i, len) in [10usize, LARGE + 10, 3, 2 * LARGE, 7]
        .into_iter()
        .enumerate()
    {
        let key = 9 - i as u64;
        let v = format!("{i}:{}", "z".repeat(len));
        bytes
            .push_bytes(key, &serde_json::to_vec(&v).unwrap())
            .unwrap();
        values.push(key, &v).unwrap();
        assert!(bytes.stage.capacity() <= CHUNK, "the stage grew");
    }
    let read = |f: &mut KeyedFile| {
        let mut all = Vec::new();
        f.for_each(&mut |e| {
            all.push(e.to_vec());
            Ok(true)
        })
        .unwrap();
        all
    };
    let got = read(&mut bytes);
    assert_eq!(got.len(), 5);
    assert!(got[0].starts_with(b"\"4:"), "key order");
    assert_eq!(got, read(&mut values));
}

/// Entries pushed in a scrambled key order, some larger than a window or than LARGE,
/// across many chunks, come back by key (push order among equal keys).
#[test]
fn chunks_are_sorted_and_read_back_by_key() {
    let mut f = KeyedFile::new().unwrap();
    let n = 3_000u64;
    let mut want = Vec::new();
    for i in 0..n {
        // Keys scrambled, each pushed twice (the second copy later): equal keys come
        // back in push order.
        let key = (i * 7919) % (n / 2);
        let len = [3usize, 200, 5_000, 40_000][(i % 4) as usize];
        // Every 500th entry is larger than LARGE: it goes to the file directly.
        let len = if i % 500 == 7 { 300_000 } else { len };
        let v = format!("{key}:{i}:{}", "y".repeat(len));
        f.push(key, &v).unwrap();
        assert!(f.stage.capacity() <= CHUNK, "the stage grew");
        want.push((key, i, v));
    }
    want.sort_by_key(|&(key, i, _)| (key, i));
    let mut got = Vec::new();
    f.for_each(&mut |e| {
        got.push(serde_json::from_slice::<String>(e).map_err(io::Error::other)?);
        Ok(true)
    })
    .unwrap();
    assert!(f.chunks.len() > 5, "{} chunks", f.chunks.len());
    assert_eq!(got.len(), want.len());
    for (g, (_, i, w)) in got.iter().zip(&want) {
        assert!(g == w, "entry pushed {i}");
    }
    // Pushes go on after reading; stopping early stops.
    f.push(0, &"late".to_string()).unwrap();
    let mut first = Vec::new();
    f.for_each(&mut |e| {
        first.push(e.to_vec());
        Ok(first.len() < 3)
    })
    .unwrap();
    assert_eq!(first.len(), 3);
    assert_eq!(first[2], b"\"late\"");
}

/// A reader made from the file lists the same entries as the file, also after the file
/// itself was copied into a report (which moves its data file's position) and dropped.
#[test]
fn a_reader_reads_on_after_its_file_was_copied() {
    let mut f = KeyedFile::new().unwrap();
    for i in 0..2_000u64 {
        let key = (i * 7919) % 1_000;
        f.push(
            key,
            &format!("{key}:{i}:{}", "z".repeat((i % 7 * 3_000) as usize)),
        )
        .unwrap();
    }
    let reader = f.reader().unwrap();
    let mut listed = Vec::new();
    f.for_each(&mut |e| {
        listed.push(e.to_vec());
        Ok(true)
    })
    .unwrap();
    let mut copied = Vec::new();
    let sink = tempfile::tempfile().unwrap();
    let mut w = io::BufWriter::new(sink.try_clone().unwrap());
    f.copy_keyed(&mut w, Some(&sink)).unwrap();
    drop(w);
    let mut again = Vec::new();
    reader
        .for_each(&mut |e| {
            again.push(e.to_vec());
            Ok(true)
        })
        .unwrap();
    assert_eq!(listed.len(), 2_000);
    assert!(again == listed);
    (&sink).seek(SeekFrom::Start(0)).unwrap();
    (&sink).read_to_end(&mut copied).unwrap();
    assert_eq!(copied, listed.join(SEP));
}

/// Entries pushed through their hand-written writer come back byte for byte as the
/// serde path writes them, small ones through the stage and ones larger than LARGE
/// straight into the file, and the stage never grows.
#[test]
fn hand_written_entries_match_serde_ones() {
    use crate::report::streams::{SegmentEntry, StreamEntry};
    let (mut fast, mut slow) = (KeyedFile::new().unwrap(), KeyedFile::new().unwrap());
    for i in 0..400u64 {
        let key = (i * 37) % 101;
        // Every 50th entry lists enough segments to pass LARGE (about 60 bytes each).
        let n = if i % 50 == 3 { 6_000 } else { i % 20 };
        let e = StreamEntry {
            conn: i,
            dir: "orig".into(),
            segments: (0..n)
                .map(|k| SegmentEntry {
                    frame: k,
                    offset: k * 1448,
                    len: 1448,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        fast.push_json(key, &e).unwrap();
        slow.push(key, &e).unwrap();
        assert!(fast.stage.capacity() <= CHUNK, "the stage grew");
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    fast.copy_keyed(&mut a, None).unwrap();
    slow.copy_keyed(&mut b, None).unwrap();
    assert!(a.len() > 8 * LARGE);
    assert!(a == b);
}
