//! Helpers shared by the integration tests: where fixtures and the corpus are, an
//! independent record walker for pcap/pcapng (so tests do not check netlens's reader with
//! netlens's reader), and a small pcapng builder for hand-made captures.
//!
//! The walker applies the file formats' own rules (record header sizes, block lengths,
//! byte orders), written separately from `src/capture/file/`: when both agree on where
//! every record starts and ends, the tests' expectations are independent facts.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub mod fuzz_dissect;
pub mod fuzz_input;
pub mod netns;
pub mod synth;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every capture in fixtures/ (pcap and pcapng), sorted by name.
pub fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .expect("fixtures/ exists")
        .map(|e| e.expect("readable fixtures/ entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap") | Some("pcapng")
            )
        })
        .collect();
    v.sort();
    v
}

pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The corpus captures (../shared/corpus/captures or $NETLENS_CORPUS/captures), sorted;
/// None when the corpus is absent.
pub fn corpus_captures() -> Option<Vec<PathBuf>> {
    let dir = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/corpus"));
    let caps = dir.join("captures");
    if !caps.is_dir() {
        return None;
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(caps)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Some(v)
}

pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What a record of the file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A packet record (pcap record; pcapng EPB, SPB or obsolete PB).
    Packet,
    /// A pcapng custom block: Wireshark gives it a frame number but it has no packet.
    Custom,
    /// Any other pcapng block (SHB, IDB, statistics, unknown types, ...).
    Other,
}

/// One record (pcap) or block (pcapng): where it starts and ends in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub start: u64,
    pub end: u64,
    pub kind: Kind,
}

/// The layout of a capture file as far as it can be walked.
#[derive(Debug, Clone)]
pub struct Layout {
    pub pcapng: bool,
    /// End of the file header (pcap: 24; pcapng: end of the first section header block).
    pub header_end: u64,
    /// Every whole record after the file header, in order.
    pub recs: Vec<Rec>,
    /// Where walking stopped when that was not the end of the file (a record cut short or
    /// with an impossible length): the start of that record.
    pub stop: Option<u64>,
}

impl Layout {
    /// Records that take a frame number (packets and custom blocks), in order.
    pub fn numbered(&self) -> impl Iterator<Item = &Rec> {
        self.recs.iter().filter(|r| r.kind != Kind::Other)
    }

    /// Number of packets whose records end at or before `cut`.
    pub fn packets_before(&self, cut: u64) -> usize {
        self.recs
            .iter()
            .filter(|r| r.kind == Kind::Packet && r.end <= cut)
            .count()
    }

    /// The record containing byte `cut` strictly inside it (start < cut < end), if any.
    pub fn record_cut_by(&self, cut: u64) -> Option<&Rec> {
        self.recs.iter().find(|r| r.start < cut && cut < r.end)
    }
}

/// Walks `bytes` as pcap or pcapng, independently of netlens's reader. Records longer than
/// `max_record` stop the walk as netlens's cap does. None if the file header is not whole.
pub fn walk(bytes: &[u8], max_record: u64) -> Option<Layout> {
    if bytes.len() < 4 {
        return None;
    }
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    let (big, rec_hdr) = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => (false, 16),
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => (true, 16),
        [0x34, 0xcd, 0xb2, 0xa1] => (false, 24),
        [0xa1, 0xb2, 0xcd, 0x34] => (true, 24),
        [0x0a, 0x0d, 0x0d, 0x0a] => return walk_pcapng(bytes, max_record),
        _ => return None,
    };
    if bytes.len() < 24 {
        return None;
    }
    let u32_at = |i: usize| {
        let b = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut recs = Vec::new();
    let mut at = 24usize;
    let mut stop = None;
    while at < bytes.len() {
        if bytes.len() - at < rec_hdr {
            stop = Some(at as u64);
            break;
        }
        let incl = u64::from(u32_at(at + 8));
        if incl > max_record || ((bytes.len() - at - rec_hdr) as u64) < incl {
            stop = Some(at as u64);
            break;
        }
        let end = at + rec_hdr + incl as usize;
        recs.push(Rec {
            start: at as u64,
            end: end as u64,
            kind: Kind::Packet,
        });
        at = end;
    }
    Some(Layout {
        pcapng: false,
        header_end: 24,
        recs,
        stop,
    })
}

fn walk_pcapng(bytes: &[u8], max_record: u64) -> Option<Layout> {
    let mut recs = Vec::new();
    let mut at = 0usize;
    let mut big = false;
    let mut stop = None;
    let mut header_end = None;
    while at < bytes.len() {
        let left = bytes.len() - at;
        if left < 12 {
            stop = Some(at as u64);
            break;
        }
        let ty_raw = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        let is_shb = ty_raw == [0x0a, 0x0d, 0x0d, 0x0a];
        if is_shb {
            match [bytes[at + 8], bytes[at + 9], bytes[at + 10], bytes[at + 11]] {
                [0x1a, 0x2b, 0x3c, 0x4d] => big = true,
                [0x4d, 0x3c, 0x2b, 0x1a] => big = false,
                _ => {
                    stop = Some(at as u64);
                    break;
                }
            }
        }
        let rd = |i: usize| {
            let b = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
            if big {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let ty = rd(at);
        let len = u64::from(rd(at + 4));
        if len < 12 || !len.is_multiple_of(4) || len > max_record || len > left as u64 {
            stop = Some(at as u64);
            break;
        }
        let kind = match ty {
            2 | 3 | 6 => Kind::Packet,
            0x0000_0bad | 0x4000_0bad => Kind::Custom,
            _ => Kind::Other,
        };
        let end = at + len as usize;
        if header_end.is_none() {
            if !is_shb {
                return None;
            }
            header_end = Some(end as u64);
        } else {
            recs.push(Rec {
                start: at as u64,
                end: end as u64,
                kind,
            });
        }
        at = end;
    }
    Some(Layout {
        pcapng: true,
        header_end: header_end?,
        recs,
        stop,
    })
}

/// A tiny pcapng writer (little-endian) for hand-made test captures.
pub mod ng {
    fn pad4(v: &mut Vec<u8>) {
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
    }

    /// A block of type `ty` with `body` (padded to 4 bytes).
    pub fn block(ty: u32, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        pad4(&mut b);
        let len = (12 + b.len()) as u32;
        let mut v = Vec::with_capacity(len as usize);
        v.extend_from_slice(&ty.to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.extend_from_slice(&b);
        v.extend_from_slice(&len.to_le_bytes());
        v
    }

    /// Section header block, version 1.0, unknown section length.
    pub fn shb() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0a0d_0d0a, &body)
    }

    /// Interface description block (microsecond timestamps).
    pub fn idb(link_type: u16, snaplen: u32) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&link_type.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        block(1, &body)
    }

    /// Interface description block with options (code, value), e.g. if_tsresol (9) and
    /// if_tsoffset (14); the end-of-options marker is added.
    pub fn idb_with_options(link_type: u16, snaplen: u32, options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&link_type.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        for (code, value) in options {
            body.extend_from_slice(&code.to_le_bytes());
            body.extend_from_slice(&(value.len() as u16).to_le_bytes());
            body.extend_from_slice(value);
            pad4(&mut body);
        }
        body.extend_from_slice(&[0, 0, 0, 0]);
        block(1, &body)
    }

    /// Enhanced packet block; `ts_us` in the interface's (microsecond) units.
    pub fn epb(iface: u32, ts_us: u64, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&iface.to_le_bytes());
        body.extend_from_slice(&((ts_us >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ts_us as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(6, &body)
    }
}

/// The frames of a pcap (records after the 24-byte header) as raw record byte ranges,
/// for tests that edit a fixture.
pub fn pcap_records(bytes: &[u8]) -> Vec<Rec> {
    walk(bytes, u64::MAX).map(|l| l.recs).unwrap_or_default()
}
