//! A direction's finished segment entries, packed: what the JSON report lists for each
//! TCP segment, in a few bytes per segment until the direction is finalized.
//!
//! Why: a connection stays open for its linger time (5 s) after a complete close, and its
//! segment entries wait with it, so a capture of many short connections holds thousands
//! at once. As the JSON text the report writes (about 70 bytes a segment, in pieces of
//! 256 bytes and up), they were 15.4 MB of the 1 GB benchmark capture's `--all --json`
//! peak (heaptrack, 94,596 pieces). Packed, a segment without messages takes 4 to 8
//! bytes; the JSON is written from the packed form when the direction is finalized,
//! with the same writer ([`write_segment`]), so the report is byte for byte the same.
//!
//! Format, per segment (varints: [`crate::analyze::varint`]): a flags byte (see the `F_`
//! constants); the frame as a zigzag delta from the previous segment's; the stream offset
//! as a zigzag delta from the previous segment's end, only when it is not that end
//! (`F_OFFSET`); the length; `new_bytes`, `captured` and `messages_total` when present;
//! then, with `F_MESSAGES`, the number of messages and per message its index as a zigzag
//! delta from the previous message index (of any segment) and a byte holding its part
//! (bit 0: has its first byte, bit 1: has its last).
//!
//! Invariant: [`SegPack`]'s [`JsonList::write_list`] writes the JSON list of the entries
//! pushed, each exactly as [`write_segment`] writes it (tests here and in
//! `messages::tests`).

use std::io;

use crate::analyze::varint::{get_iv, get_uv, put_iv, put_uv};
use crate::report::json_out::{write_segment, Items, JsonList, JsonOut, SegmentHead};
use crate::report::streams::MessagePart;

const F_COALESCING: u8 = 1;
const F_OVERSIZED: u8 = 1 << 1;
const F_NEW_BYTES: u8 = 1 << 2;
const F_CAPTURED: u8 = 1 << 3;
const F_OUT_OF_ORDER: u8 = 1 << 4;
/// The offset is stored: it is not the previous segment's end.
const F_OFFSET: u8 = 1 << 5;
const F_MESSAGES: u8 = 1 << 6;
const F_MESSAGES_TOTAL: u8 = 1 << 7;

/// A message a segment carries: its index, whether the segment has its first byte and
/// whether it has its last.
pub type MsgRef = (u64, bool, bool);

#[derive(Debug, Default)]
pub struct SegPack {
    bytes: Vec<u8>,
    count: usize,
    /// The previous segment's frame, end offset and last message index: what the next
    /// one is stored relative to.
    last_frame: u64,
    next_offset: u64,
    last_msg: u64,
}

impl SegPack {
    /// Segment entries in the list.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends one entry.
    pub fn push(&mut self, h: &SegmentHead, msgs: &[MsgRef]) {
        let out = &mut self.bytes;
        let flag = |on: bool, f: u8| if on { f } else { 0 };
        out.push(
            flag(h.coalescing, F_COALESCING)
                | flag(h.oversized, F_OVERSIZED)
                | flag(h.new_bytes.is_some(), F_NEW_BYTES)
                | flag(h.captured.is_some(), F_CAPTURED)
                | flag(h.out_of_order, F_OUT_OF_ORDER)
                | flag(h.offset != self.next_offset, F_OFFSET)
                | flag(!msgs.is_empty(), F_MESSAGES)
                | flag(h.messages_total != 0, F_MESSAGES_TOTAL),
        );
        put_iv(out, h.frame.wrapping_sub(self.last_frame) as i64);
        if h.offset != self.next_offset {
            put_iv(out, h.offset.wrapping_sub(self.next_offset) as i64);
        }
        put_uv(out, h.len);
        for v in [h.new_bytes, h.captured].into_iter().flatten() {
            put_uv(out, v);
        }
        if h.messages_total != 0 {
            put_uv(out, h.messages_total);
        }
        if !msgs.is_empty() {
            put_uv(out, msgs.len() as u64);
            for &(index, first, last) in msgs {
                put_iv(out, index.wrapping_sub(self.last_msg) as i64);
                self.last_msg = index;
                out.push(u8::from(first) | u8::from(last) << 1);
            }
        }
        self.last_frame = h.frame;
        self.next_offset = h.offset.wrapping_add(h.len);
        self.count += 1;
    }

    /// Calls `f` with each entry, in order: its fields and its messages with their parts;
    /// stops at the first error `f` returns.
    fn each(
        &self,
        mut f: impl FnMut(&SegmentHead, &[u64], &[MessagePart]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut rest = &self.bytes[..];
        let (mut frame, mut next_offset, mut last_msg) = (0u64, 0u64, 0u64);
        let mut msgs: Vec<u64> = Vec::new();
        let mut parts: Vec<MessagePart> = Vec::new();
        while let Some((&flags, tail)) = rest.split_first() {
            rest = tail;
            let on = |f: u8| flags & f != 0;
            frame = frame.wrapping_add(get_iv(&mut rest) as u64);
            let offset = if on(F_OFFSET) {
                next_offset.wrapping_add(get_iv(&mut rest) as u64)
            } else {
                next_offset
            };
            let len = get_uv(&mut rest);
            let new_bytes = on(F_NEW_BYTES).then(|| get_uv(&mut rest));
            let captured = on(F_CAPTURED).then(|| get_uv(&mut rest));
            let messages_total = if on(F_MESSAGES_TOTAL) {
                get_uv(&mut rest)
            } else {
                0
            };
            msgs.clear();
            parts.clear();
            if on(F_MESSAGES) {
                let n = get_uv(&mut rest);
                for _ in 0..n {
                    last_msg = last_msg.wrapping_add(get_iv(&mut rest) as u64);
                    let Some((&part, tail)) = rest.split_first() else {
                        break;
                    };
                    rest = tail;
                    msgs.push(last_msg);
                    parts.push(MessagePart::of(part & 1 != 0, part & 2 != 0));
                }
            }
            let head = SegmentHead {
                frame,
                offset,
                len,
                messages_total,
                coalescing: on(F_COALESCING),
                oversized: on(F_OVERSIZED),
                new_bytes,
                captured,
                out_of_order: on(F_OUT_OF_ORDER),
            };
            f(&head, &msgs, &parts)?;
            next_offset = offset.wrapping_add(len);
        }
        Ok(())
    }
}

#[cfg(test)]
impl SegPack {
    /// The list's JSON, brackets included.
    pub fn to_json(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        self.write_list(&mut JsonOut {
            buf: &mut buf,
            check: &mut |_| Ok(()),
        })
        .expect("no checkpoint fails");
        buf
    }
}

impl JsonList for SegPack {
    /// The entries as the report writes them, straight from the packed form (no text
    /// list in between), with a checkpoint every hundred entries (about 8 KiB).
    fn write_list(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        let mut items = Items::new(o);
        self.each(|head, msgs, parts| {
            items.push(|o| write_segment(o, head, msgs.iter().copied(), parts.iter().copied()))
        })?;
        items.end();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field at the edges of its range, offsets that jump back and forth, frames out
    /// of order and message lists: the packed list writes what the text list held.
    #[test]
    fn packed_entries_write_the_same_json() {
        let head = |frame, offset, len| SegmentHead {
            frame,
            offset,
            len,
            messages_total: 0,
            coalescing: false,
            oversized: false,
            new_bytes: None,
            captured: None,
            out_of_order: false,
        };
        let mut cases: Vec<(SegmentHead, Vec<MsgRef>)> = vec![
            (head(1, 0, 0), vec![]),
            (head(2, 0, 1448), vec![(0, true, false)]),
            (head(3, 1448, 1448), vec![(0, false, false)]),
            (
                head(9, 2896, 10),
                vec![(0, false, true), (1, true, true), (2, true, false)],
            ),
            // A hole, a resent range below the end, frames going back.
            (head(12, 5000, 7), vec![]),
            (head(11, 100, 3), vec![(7, true, true)]),
            (
                head(u64::MAX, u64::MAX - 1, u64::MAX),
                vec![(u64::MAX, false, true)],
            ),
            (head(0, 0, 0), vec![(0, true, true)]),
        ];
        let mut flags = head(40, 3, 5);
        flags.messages_total = 65;
        flags.coalescing = true;
        flags.oversized = true;
        flags.new_bytes = Some(0);
        flags.captured = Some(u64::MAX);
        flags.out_of_order = true;
        cases.push((
            flags,
            (0..64).map(|i| (i * 3, i % 2 == 0, i % 3 == 0)).collect(),
        ));
        // Enough plain segments after them for several checkpoints.
        for i in 0..250 {
            cases.push((head(100 + i, 7_000 + 10 * i, 10), vec![]));
        }
        let mut packed = SegPack::default();
        let mut want = b"[".to_vec();
        for (i, (h, msgs)) in cases.iter().enumerate() {
            packed.push(h, msgs);
            if i > 0 {
                want.push(b',');
            }
            let messages = msgs.iter().map(|m| m.0);
            let parts = msgs.iter().map(|m| MessagePart::of(m.1, m.2));
            let mut o = JsonOut {
                buf: &mut want,
                check: &mut |_| Ok(()),
            };
            write_segment(&mut o, h, messages, parts);
        }
        want.push(b']');
        assert_eq!(packed.len(), cases.len());
        assert_eq!(
            String::from_utf8_lossy(&packed.to_json()),
            String::from_utf8_lossy(&want)
        );
        // Checkpoints come every hundred entries, and a failing one stops the list.
        let mut calls = 0;
        let mut got = Vec::new();
        let r = packed.write_list(&mut JsonOut {
            buf: &mut got,
            check: &mut |_| {
                calls += 1;
                if calls == 2 {
                    Err(io::Error::other("full"))
                } else {
                    Ok(())
                }
            },
        });
        assert!(r.is_err());
        assert_eq!(calls, 2);
        // A plain bulk segment is a few bytes, not its ~60 bytes of JSON.
        let mut bulk = SegPack::default();
        bulk.push(&head(2_900_000, 0, 1448), &[]);
        bulk.push(&head(2_900_002, 1448, 1448), &[]);
        assert!(bulk.bytes.len() <= 12, "{}", bulk.bytes.len());
    }
}
