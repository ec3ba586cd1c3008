//! Tests of the message mapper: splits, coalescing, gaps, framing failures, and segment
//! lists kept as text against the same lists built as entries.

use super::*;

fn entries(m: &MessageMapper) -> &[SegmentEntry] {
    match &m.segments {
        SegmentList::Entries(v) => v,
        SegmentList::Packed(_) => panic!("the tests build entries"),
    }
}

/// Runs the mapper over segments given as (frame, bytes), all in order.
fn run(kind: &str, segs: &[&[u8]]) -> MessageMapper {
    let kind: FramingKind = kind.parse().unwrap();
    let mut m = MessageMapper::new(&kind, "test".into(), (1, 2), 1 << 20, 1000, false, false);
    let mut off = 0u64;
    for (i, s) in segs.iter().enumerate() {
        let frame = i as u64 + 1;
        let id = m.add_segment(SegmentFacts {
            frame,
            offset: off,
            len: s.len() as u64,
            new_bytes: s.len() as u64,
            new_captured: s.len() as u64,
            ..SegmentFacts::default()
        });
        m.bytes(id, frame, off, s, None);
        off += s.len() as u64;
    }
    m.finish(None);
    m
}

/// Segments kept packed write the bytes their entries would have been written as.
#[test]
fn segments_as_text_are_the_entries_json() {
    use crate::report::json_out::{JsonOut, WriteJson};
    let kind: FramingKind = "len16be".parse().unwrap();
    let mut both = [true, false]
        .map(|json| MessageMapper::new(&kind, "t".into(), (1, 2), 1 << 20, 1000, false, json));
    // Whole, coalesced, split and cut messages, a resent and an oversized segment.
    let segs: [(&[u8], u64); 5] = [
        (&[0, 2, b'a', b'b', 0, 1], 6),
        (&[b'c', 0, 5, b'd'], 3),
        (b"ef", 2),
        (b"gh\0\0\0\x03", 6),
        (b"x", 1),
    ];
    for m in &mut both {
        let mut off = 0u64;
        for (i, (bytes, new)) in segs.iter().enumerate() {
            let frame = i as u64 + 1;
            let id = m.add_segment(SegmentFacts {
                frame,
                offset: off,
                len: bytes.len() as u64,
                new_bytes: *new,
                new_captured: bytes.len() as u64,
                oversized: i == 3,
                buffered: i == 2,
                captured: (i == 4).then_some(1),
            });
            m.bytes(id, frame, off, bytes, None);
            off += bytes.len() as u64;
        }
        m.finish(None);
    }
    let [json, built] = &both;
    let SegmentList::Packed(packed) = &json.segments else {
        panic!("asked for the packed list");
    };
    let mut want = b"[".to_vec();
    let mut o = JsonOut {
        buf: &mut want,
        check: &mut |_| Ok(()),
    };
    for (i, e) in entries(built).iter().enumerate() {
        if i > 0 {
            o.buf.push(b',');
        }
        e.write_json(&mut o).unwrap();
    }
    want.push(b']');
    assert_eq!(packed.len(), entries(built).len());
    assert_eq!(
        String::from_utf8_lossy(&packed.to_json()),
        String::from_utf8_lossy(&want)
    );
    assert!(want.windows(10).any(|w| w == b"coalescing"));
}

#[test]
fn split_and_coalesced() {
    // Messages (len32le): A = 4+2, B = 4+1, C = 4+6.
    // Segment 1: A whole + head of B; segment 2: tail of B + head of C; 3: tail of C.
    let m = run(
        "len32le",
        &[
            &[2, 0, 0, 0, b'a', b'a', 1, 0],
            &[0, 0, b'b', 6, 0, 0, 0, b'c'],
            b"ccccc",
        ],
    );
    let lens: Vec<u64> = m.messages.iter().map(|x| x.len).collect();
    assert_eq!(lens, vec![6, 5, 10]);
    let segs: Vec<Vec<u64>> = m.messages.iter().map(|x| x.segments.clone()).collect();
    assert_eq!(segs, vec![vec![1], vec![1, 2], vec![2, 3]]);
    let flags: Vec<(bool, bool)> = m.messages.iter().map(|x| (x.split, x.coalesced)).collect();
    assert_eq!(flags, vec![(false, true), (true, true), (true, true)]);
    use MessagePart::*;
    let parts: Vec<Vec<MessagePart>> = entries(&m).iter().map(|s| s.parts.clone()).collect();
    assert_eq!(parts, vec![vec![Whole, Head], vec![Tail, Head], vec![Tail]]);
    let s = m.stats;
    assert_eq!(
        (
            s.messages,
            s.split_messages,
            s.coalesced_messages,
            s.coalescing_segments,
            s.max_messages_per_segment,
            s.max_segments_per_message
        ),
        (3, 2, 3, 2, 2, 2)
    );
}

#[test]
fn one_message_per_segment_is_neither() {
    let m = run("len16be", &[&[0, 1, b'x'], &[0, 2, b'y', b'y'], &[0, 0]]);
    assert_eq!(m.stats.messages, 3);
    assert_eq!(m.stats.split_messages + m.stats.coalesced_messages, 0);
    assert!(m.messages.iter().all(|x| !x.split && !x.coalesced));
    assert!(entries(&m).iter().all(|s| s.parts == [MessagePart::Whole]));
}

#[test]
fn a_message_across_three_segments_has_head_middle_tail() {
    let m = run("len16be", &[&[0, 5, 1], &[2, 3], &[4, 5]]);
    assert_eq!(m.messages[0].segments, vec![1, 2, 3]);
    let parts: Vec<&str> = entries(&m).iter().map(|s| s.parts[0].name()).collect();
    assert_eq!(parts, ["head", "middle", "tail"]);
    assert_eq!(m.stats.max_segments_per_message, 3);
}

#[test]
fn failure_falls_back_to_segments() {
    // One good message, then an HTTP-looking stream turns to garbage.
    let m = run("http", &[b"GET / HTTP/1.1\r\n\r\n", b"\x00\x01garbage"]);
    assert_eq!(m.stats.messages, 1);
    let e = m.error.as_ref().unwrap();
    assert_eq!(e.offset, 18);
    assert_eq!(e.frame, Some(2));
    assert_eq!(m.unframed, 9);
    assert_eq!(entries(&m)[1].messages, Vec::<u64>::new());
    // The first message is not coalesced with the unframed bytes.
    assert!(!m.messages[0].coalesced);
}

#[test]
fn incomplete_at_end() {
    let m = run("len32le", &[&[9, 0, 0, 0, 1, 2]]);
    assert_eq!(m.stats.messages, 0);
    assert_eq!(m.stats.incomplete_messages, 1);
    assert!(!m.messages[0].complete);
    assert_eq!(m.messages[0].len, 6);
}

#[test]
fn gap_inside_a_known_body_keeps_framing() {
    let kind: FramingKind = "len16be".parse().unwrap();
    let mut m = MessageMapper::new(&kind, "t".into(), (1, 2), 1 << 20, 100, false, false);
    let a = m.add_segment(SegmentFacts {
        frame: 1,
        offset: 0,
        len: 4,
        new_bytes: 4,
        new_captured: 4,
        ..SegmentFacts::default()
    });
    m.bytes(a, 1, 0, &[0, 6, 1, 2], None);
    m.gap(4, 2, None);
    let b = m.add_segment(SegmentFacts {
        frame: 3,
        offset: 6,
        len: 4,
        new_bytes: 4,
        new_captured: 4,
        ..SegmentFacts::default()
    });
    m.bytes(b, 3, 6, &[5, 6, 0, 0], None);
    m.finish(None);
    assert_eq!(m.stats.messages, 2);
    assert_eq!(m.messages[0].gap_bytes, 2);
    assert_eq!(m.messages[0].len, 8);
    assert!(m.error.is_none());
    // A gap where a header should be breaks framing at that offset.
    let mut m = MessageMapper::new(&kind, "t".into(), (1, 2), 1 << 20, 100, false, false);
    m.gap(0, 3, None);
    assert_eq!(m.error.as_ref().unwrap().offset, 0);
}
