//! The listed datagrams of one UDP flow, both directions in one byte string.
//!
//! Why: a UDP flow stays open for the whole UDP idle timeout (60 s) after its last
//! datagram, so a capture of many short exchanges (DNS, say) holds tens of thousands of
//! them at once. A `Vec<DatagramEntry>` per direction took a 160-byte allocation (room for
//! four 40-byte entries) even for a one-datagram direction; at the 1 GB benchmark
//! capture's peak, those lists were 18.5 MB of the 92 MB `--streams --json` run.
//! Encoded, a datagram takes 3 to 6 bytes.
//!
//! Format, per datagram in arrival order: a flags byte (bit 0: the direction, 1 for the
//! responder's; bit 1: reassembled from IPv4 fragments); the frame number as a zigzag
//! varint delta from the previous datagram's (of either direction; from 0 for the first);
//! the payload length as a varint; if reassembled, the number of fragment frames and each
//! one as a zigzag delta from the datagram's frame (varints: [`crate::analyze::varint`]).
//!
//! Invariant: [`DgramList::entries`] returns, per direction, exactly the entries pushed for
//! it, in order, and [`DgramList::dir`] writes the JSON of that list (unit tests here;
//! every fixture's `udp_flows` report is unchanged).

use std::io;

use crate::analyze::varint::{get_iv, get_uv, put_iv, put_uv};
use crate::analyze::Dir;
use crate::report::json_out::{write_datagram, Items, JsonList, JsonOut};
use crate::report::streams::DatagramEntry;

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct DgramList {
    bytes: Vec<u8>,
    /// Frame of the last datagram pushed (either direction), for the next delta.
    last_frame: u64,
}

impl DgramList {
    pub(super) fn push(&mut self, dir: Dir, frame: u64, len: u64, fragments: &[u64]) {
        let out = &mut self.bytes;
        out.push(
            dir.index() as u8
                | if fragments.is_empty() {
                    0
                } else {
                    F_FRAGMENTED
                },
        );
        put_iv(out, frame.wrapping_sub(self.last_frame) as i64);
        self.last_frame = frame;
        put_uv(out, len);
        if !fragments.is_empty() {
            put_uv(out, fragments.len() as u64);
            for &f in fragments {
                put_iv(out, f.wrapping_sub(frame) as i64);
            }
        }
    }

    /// Bytes the list takes in a packed record (see [`put`](Self::put)), at most.
    pub(super) fn packed_len(&self) -> usize {
        self.bytes.len() + 20
    }

    /// Appends the list to a packed record: the last frame and the byte count as
    /// varints, then the bytes.
    pub(super) fn put(&self, out: &mut Vec<u8>) {
        put_uv(out, self.last_frame);
        put_uv(out, self.bytes.len() as u64);
        out.extend_from_slice(&self.bytes);
    }

    /// The list [`put`](Self::put) appended, read from the front of `rest`.
    pub(super) fn get(rest: &mut &[u8]) -> DgramList {
        let last_frame = get_uv(rest);
        let len = usize::try_from(get_uv(rest)).map_or(rest.len(), |n| n.min(rest.len()));
        let (bytes, tail) = rest.split_at(len);
        *rest = tail;
        DgramList {
            bytes: bytes.to_vec(),
            last_frame,
        }
    }

    /// The entries of each direction (`[orig, resp]`), in the order they were pushed.
    pub(super) fn entries(&self) -> [Vec<DatagramEntry>; 2] {
        let mut out: [Vec<DatagramEntry>; 2] = Default::default();
        let _ = self.each(|dir, frame, len, fragments| {
            out[dir].push(DatagramEntry {
                frame,
                len,
                fragments: fragments.to_vec(),
            });
            Ok(())
        });
        out
    }

    /// The datagrams of `dir` as the report writes them (see [`DirList`]).
    pub(super) fn dir(&self, dir: Dir) -> DirList<'_> {
        DirList {
            list: self,
            dir: dir.index(),
        }
    }

    /// Calls `f` with each datagram's direction index, frame, length and fragment frames,
    /// in the order they were pushed, until it fails.
    fn each(&self, mut f: impl FnMut(usize, u64, u64, &[u64]) -> io::Result<()>) -> io::Result<()> {
        let mut rest = &self.bytes[..];
        let mut frame = 0u64;
        // Reused: fragments are rare, and an empty Vec does not allocate.
        let mut fragments = Vec::new();
        while let Some((&flags, tail)) = rest.split_first() {
            rest = tail;
            frame = frame.wrapping_add(get_iv(&mut rest) as u64);
            let len = get_uv(&mut rest);
            fragments.clear();
            if flags & F_FRAGMENTED != 0 {
                let n = get_uv(&mut rest);
                for _ in 0..n {
                    if rest.is_empty() {
                        break;
                    }
                    fragments.push(frame.wrapping_add(get_iv(&mut rest) as u64));
                }
            }
            f(usize::from(flags & 1), frame, len, &fragments)?;
        }
        Ok(())
    }
}

/// One direction's datagrams, written into the report straight from the encoded list
/// (no `DatagramEntry` list in between), with a checkpoint every hundred entries.
pub(super) struct DirList<'a> {
    list: &'a DgramList,
    dir: usize,
}

impl JsonList for DirList<'_> {
    fn write_list(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        let mut items = Items::new(o);
        self.list.each(|dir, frame, len, fragments| {
            if dir != self.dir {
                return Ok(());
            }
            items.push(|o| write_datagram(o, frame, len, fragments.iter().copied()))
        })?;
        items.end();
        Ok(())
    }
}

/// Flags bit: the datagram was reassembled from IPv4 fragments (their frames follow).
const F_FRAGMENTED: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(frame: u64, len: u64, fragments: &[u64]) -> DatagramEntry {
        DatagramEntry {
            frame,
            len,
            fragments: fragments.to_vec(),
        }
    }

    #[test]
    fn each_direction_reads_back_what_was_pushed() {
        let pushed = [
            (Dir::Orig, entry(3_000_001, 40, &[])),
            (Dir::Resp, entry(3_000_002, 0, &[])),
            (
                Dir::Orig,
                entry(3_000_010, 65_535, &[3_000_008, 3_000_009, 3_000_010]),
            ),
            // Frames out of order (a reader that numbers frames differently) and the ends
            // of the u64 range still round-trip.
            (Dir::Resp, entry(7, u64::MAX, &[u64::MAX, 0])),
            (Dir::Resp, entry(u64::MAX, 1, &[])),
            (Dir::Orig, entry(0, 2, &[5])),
        ];
        let mut list = DgramList::default();
        for (dir, e) in &pushed {
            list.push(*dir, e.frame, e.len, &e.fragments);
        }
        let [orig, resp] = list.entries();
        let want = |d: Dir| -> Vec<(u64, u64, Vec<u64>)> {
            pushed
                .iter()
                .filter(|(x, _)| *x == d)
                .map(|(_, e)| (e.frame, e.len, e.fragments.clone()))
                .collect()
        };
        let got = |v: Vec<DatagramEntry>| -> Vec<(u64, u64, Vec<u64>)> {
            v.into_iter()
                .map(|e| (e.frame, e.len, e.fragments))
                .collect()
        };
        assert_eq!(got(orig), want(Dir::Orig));
        assert_eq!(got(resp), want(Dir::Resp));
    }

    /// Each direction's list, written from the encoded form, is the JSON serde gives the
    /// entries pushed for it (one direction has more than a hundred, so a checkpoint runs
    /// mid-list), and a failing checkpoint stops the list.
    #[test]
    fn each_direction_writes_the_json_of_its_entries() {
        let mut list = DgramList::default();
        let mut pushed: [Vec<DatagramEntry>; 2] = Default::default();
        for i in 0..250u64 {
            let dir = if i % 3 == 0 { Dir::Resp } else { Dir::Orig };
            let frags: Vec<u64> = if i % 50 == 7 {
                vec![i * 10 + 1, i * 10 + 2]
            } else {
                Vec::new()
            };
            let e = entry(i * 10 + 3, i * 7 % 1500, &frags);
            list.push(dir, e.frame, e.len, &e.fragments);
            pushed[dir.index()].push(e);
        }
        for dir in [Dir::Orig, Dir::Resp] {
            let mut buf = Vec::new();
            let mut checks = 0;
            let mut check = |_: &mut Vec<u8>| {
                checks += 1;
                Ok(())
            };
            list.dir(dir)
                .write_list(&mut JsonOut {
                    buf: &mut buf,
                    check: &mut check,
                })
                .unwrap();
            assert_eq!(checks, pushed[dir.index()].len() / 100);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                serde_json::to_string(&pushed[dir.index()]).unwrap()
            );
        }
        let mut buf = Vec::new();
        let mut fail = |_: &mut Vec<u8>| Err(io::Error::other("full"));
        let r = list.dir(Dir::Orig).write_list(&mut JsonOut {
            buf: &mut buf,
            check: &mut fail,
        });
        assert!(r.is_err());
    }

    #[test]
    fn a_short_exchange_stays_small() {
        // A DNS-like flow: one query and one answer late in a big capture.
        let mut list = DgramList::default();
        list.push(Dir::Orig, 2_900_000, 45, &[]);
        list.push(Dir::Resp, 2_900_003, 120, &[]);
        assert!(list.bytes.len() <= 10, "{}", list.bytes.len());
        assert_eq!(DgramList::default().entries(), [Vec::new(), Vec::new()]);
    }
}
