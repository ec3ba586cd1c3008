//! IPv4 fragment reassembly with hard limits.
//!
//! Fragments are keyed by (src, dst, protocol, id) as RFC 791 says. A datagram completes
//! when its bytes from 0 to the end announced by the last fragment (MF = 0) are all present;
//! the completing frame then carries the transport layer and the list of fragment frames.
//! Overlaps keep the first copy (as most stacks and Wireshark's default do) and conflicting
//! overlaps are counted.
//!
//! Limits, all counted when hit: datagrams pending at once, fragments per datagram, bytes
//! pending in total, and a timeout in capture time after which a datagram is dropped. So a
//! teardrop of 100,000 fragments costs at most `max_bytes` of memory.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::packet::Ipv4;

/// Caps of the reassembler.
#[derive(Debug, Clone)]
pub struct DefragLimits {
    pub max_datagrams: usize,
    pub max_fragments: usize,
    pub max_bytes: usize,
    pub timeout_ns: i64,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            max_datagrams: 4096,
            max_fragments: 128,
            max_bytes: 32 << 20,
            timeout_ns: 30_000_000_000,
        }
    }
}

/// Counters for the report.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DefragStats {
    pub fragments: u64,
    pub reassembled: u64,
    pub timed_out: u64,
    pub dropped_over_limit: u64,
    pub conflicting_overlaps: u64,
    pub pending: u64,
}

type Key = ([u8; 4], [u8; 4], u8, u16);

struct Pending {
    first_ts: i64,
    /// Bytes placed so far; `have` marks which are present.
    data: Vec<u8>,
    have: Vec<bool>,
    /// End of the datagram, known once the last fragment arrived.
    end: Option<usize>,
    frames: Vec<u64>,
}

/// What adding a fragment did.
pub enum Outcome {
    Pending,
    Complete,
    Dropped(&'static str),
}

pub struct Defragmenter {
    limits: DefragLimits,
    pending: FxHashMap<Key, Pending>,
    bytes: usize,
    stats: DefragStats,
    /// The last completed datagram, lent to the packet that completed it.
    done_data: Vec<u8>,
    done_frames: Vec<u64>,
    last_sweep: i64,
}

impl Defragmenter {
    pub fn new(limits: DefragLimits) -> Self {
        Defragmenter {
            limits,
            pending: FxHashMap::default(),
            bytes: 0,
            stats: DefragStats::default(),
            done_data: Vec::new(),
            done_frames: Vec::new(),
            last_sweep: i64::MIN,
        }
    }

    pub fn stats(&self) -> DefragStats {
        DefragStats {
            pending: self.pending.len() as u64,
            ..self.stats
        }
    }

    /// The datagram completed by the last `add` that returned `Complete`.
    pub fn completed(&self) -> (&[u8], &[u64]) {
        (&self.done_data, &self.done_frames)
    }

    fn sweep(&mut self, now: i64) {
        // Sweeping costs a pass over the table; once per capture second is plenty.
        if now.saturating_sub(self.last_sweep) < 1_000_000_000 {
            return;
        }
        self.last_sweep = now;
        let timeout = self.limits.timeout_ns;
        let mut freed = 0;
        let mut expired = 0;
        self.pending.retain(|_, p| {
            let keep = now.saturating_sub(p.first_ts) <= timeout;
            if !keep {
                freed += p.data.len();
                expired += 1;
            }
            keep
        });
        self.bytes -= freed;
        self.stats.timed_out += expired;
    }

    /// Adds one fragment. `whole` is false when the capture cut the fragment's bytes.
    pub fn add(&mut self, h: &Ipv4, frame: u64, ts: i64, payload: &[u8], whole: bool) -> Outcome {
        self.stats.fragments += 1;
        self.sweep(ts);
        if !whole {
            return Outcome::Dropped("fragment cut by the snap length; datagram not reassembled");
        }
        let key: Key = (h.src.octets(), h.dst.octets(), h.protocol, h.id);
        let start = usize::from(h.frag_offset);
        let end = start + payload.len();
        if end > 65535 {
            self.stats.dropped_over_limit += 1;
            return Outcome::Dropped("fragment ends beyond 65535 bytes");
        }
        if !self.pending.contains_key(&key) {
            if self.pending.len() >= self.limits.max_datagrams {
                self.stats.dropped_over_limit += 1;
                return Outcome::Dropped("too many IPv4 datagrams pending reassembly");
            }
            self.pending.insert(
                key,
                Pending {
                    first_ts: ts,
                    data: Vec::new(),
                    have: Vec::new(),
                    end: None,
                    frames: Vec::new(),
                },
            );
        }
        let Some(p) = self.pending.get_mut(&key) else {
            return Outcome::Pending;
        };
        if p.frames.len() >= self.limits.max_fragments {
            let freed = p.data.len();
            self.pending.remove(&key);
            self.bytes -= freed;
            self.stats.dropped_over_limit += 1;
            return Outcome::Dropped("too many fragments for one IPv4 datagram");
        }
        if end > p.data.len() {
            let grow = end - p.data.len();
            if self.bytes + grow > self.limits.max_bytes {
                self.stats.dropped_over_limit += 1;
                return Outcome::Dropped("IPv4 reassembly memory limit reached");
            }
            self.bytes += grow;
            p.data.resize(end, 0);
            p.have.resize(end, false);
        }
        let mut conflict = false;
        for (i, &b) in payload.iter().enumerate() {
            let at = start + i;
            if p.have[at] {
                conflict |= p.data[at] != b;
            } else {
                p.data[at] = b;
                p.have[at] = true;
            }
        }
        if conflict {
            self.stats.conflicting_overlaps += 1;
        }
        p.frames.push(frame);
        if !h.mf {
            p.end = Some(end);
        }
        let complete = match p.end {
            Some(e) => e <= p.data.len() && p.have[..e].iter().all(|&x| x),
            None => false,
        };
        if !complete {
            return Outcome::Pending;
        }
        let Some(mut p) = self.pending.remove(&key) else {
            return Outcome::Pending;
        };
        self.bytes -= p.data.len();
        p.data.truncate(p.end.unwrap_or(0));
        self.done_data = p.data;
        self.done_frames = p.frames;
        self.stats.reassembled += 1;
        Outcome::Complete
    }
}
