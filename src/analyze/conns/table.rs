//! The flow table: connections by direction-independent 5-tuple (FxHash over a table of
//! 4-byte slab indices: the key is compared in the connection itself, which the caller
//! reads next anyway; a table holding the keys cost about 100 bytes per connection at its
//! load factor), a slab of connection states (boxed, or packed when cold), and a lazy
//! min-heap of 12-byte deadline entries (idle timeout, or linger after a close) that finds
//! both the connections to finalize and the one to evict when the table is full.
//!
//! Heap invariant: every live connection has at least one *live* heap entry, one naming
//! its slot whose key is `Conn::heap_key`, which is never later than the connection's
//! real deadline (deadlines grow with every packet; when one shrinks, on a close, a new
//! live entry is pushed). Other entries are stale and dropped when popped. So the first
//! live entry popped whose key equals its connection's deadline is the connection with
//! the earliest deadline. (An entry left by an earlier connection in a reused slot can
//! look live only when its key equals the new connection's `heap_key`; it then says
//! exactly what the new connection's own entry says, so no generation count is kept.)
//! The heap is rebuilt from the live connections whenever it holds more than twice as
//! many entries as there are connections, so it stays O(tracked connections).
//!
//! Cold flows: a UDP flow with no packet for `cold_after` of capture time is packed into
//! a small record (see [`super::cold`]) by a sweep that runs once per `cold_after` of
//! capture time, and unpacked as soon as anything asks for it (`conn_mut`, `remove`), so
//! callers only ever see [`Conn`]s. The sweep is what keeps memory near 80 bytes (record,
//! slot, heap entry, table entry) per flow that merely waits out the 60-second UDP
//! timeout, where a boxed connection took about 330. The sweep visits only the slots
//! listed as hot UDP flows (listed when a flow is inserted or unpacked), so it can run
//! often: the default `cold_after` is 0.1 s, because the flows created in the last
//! `cold_after` are what stays boxed (at 1 s that was 6,500 of the 58,000 flows at the
//! 1 GB benchmark capture's peak), while a flow whose packets are further apart than
//! that costs one unpack and pack per gap (about 2,500 instructions). A packed flow's
//! deadline cannot move (a packet unpacks it first), and its heap key is either the entry
//! pushed when it was created or its deadline, one flag bit in the record: when the first
//! comes due, the entry is pushed again at the deadline and the bit cleared in place, with
//! no unpacking (that rearm was about 1,700 instructions, 51,000 times on the 1 GB
//! capture). The sweep used to push the deadline entry at packing time instead, which
//! left most flows with two entries: the heap's memory doubled for nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::cold;
use super::{Conn, Proto};

/// A 5-tuple with its two endpoints in canonical order, so both directions of a flow
/// map to the same key. IPv4 addresses are stored v4-mapped, as integers: building,
/// comparing and hashing the key is most of a lookup, and integers make each a few
/// instructions. (The key used to be byte arrays, 37 bytes at alignment 1, when the
/// flow table held a copy of every key; it now lives only in the connection and in the
/// last-key cache, and the 11 bytes more are not worth byte-wise work per packet.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: u128,
    hi: u128,
    lo_port: u16,
    hi_port: u16,
    proto: u8,
}

/// The address as an integer whose order is the order of its bytes.
#[inline(always)]
fn int(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => 0xffff_0000_0000 | u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether the source is the key's
    /// low endpoint. (Always inlined: on the per-packet path it is most of the lookup,
    /// and with the packed-flow callers the compiler stopped inlining it there.)
    #[inline(always)]
    pub fn new(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> (FlowKey, bool) {
        let a = int(src);
        let b = int(dst);
        let a_lo = (a, sport) <= (b, dport);
        let key = if a_lo {
            FlowKey {
                lo: a,
                hi: b,
                lo_port: sport,
                hi_port: dport,
                proto,
            }
        } else {
            FlowKey {
                lo: b,
                hi: a,
                lo_port: dport,
                hi_port: sport,
                proto,
            }
        };
        (key, a_lo)
    }
}

fn hash(key: &FlowKey) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// A slab slot: free, a connection, or a cold flow's packed record in the smallest of a
/// few fixed sizes (thin boxes keep a slot at 16 bytes where a `Box<[u8]>` would take 24;
/// the record is self-delimiting, so the zeros after it are never read).
enum Slot {
    Free,
    Hot(Box<Conn>),
    C32(Box<[u8; 32]>),
    C40(Box<[u8; 40]>),
    C48(Box<[u8; 48]>),
    C56(Box<[u8; 56]>),
    C64(Box<[u8; 64]>),
    C80(Box<[u8; 80]>),
    C96(Box<[u8; 96]>),
    C128(Box<[u8; 128]>),
    C256(Box<[u8; cold::MAX_LEN]>),
}

/// Boxes `rec` in the smallest slot that holds it (None if none does).
fn cold_slot(rec: &[u8]) -> Option<Slot> {
    fn boxed<const N: usize>(rec: &[u8]) -> Box<[u8; N]> {
        let mut b = Box::new([0u8; N]);
        b[..rec.len()].copy_from_slice(rec);
        b
    }
    Some(match rec.len() {
        0..=32 => Slot::C32(boxed(rec)),
        33..=40 => Slot::C40(boxed(rec)),
        41..=48 => Slot::C48(boxed(rec)),
        49..=56 => Slot::C56(boxed(rec)),
        57..=64 => Slot::C64(boxed(rec)),
        65..=80 => Slot::C80(boxed(rec)),
        81..=96 => Slot::C96(boxed(rec)),
        97..=128 => Slot::C128(boxed(rec)),
        129..=cold::MAX_LEN => Slot::C256(boxed(rec)),
        _ => return None,
    })
}

/// `Some(expr)` with `b` bound to the record box of a cold slot, `None` for the others:
/// one list of the size classes for [`Slot::record`] and [`Slot::record_mut`].
macro_rules! cold_record {
    ($slot:expr, $b:ident => $e:expr) => {
        match $slot {
            Slot::Free | Slot::Hot(_) => None,
            Slot::C32($b) => Some($e),
            Slot::C40($b) => Some($e),
            Slot::C48($b) => Some($e),
            Slot::C56($b) => Some($e),
            Slot::C64($b) => Some($e),
            Slot::C80($b) => Some($e),
            Slot::C96($b) => Some($e),
            Slot::C128($b) => Some($e),
            Slot::C256($b) => Some($e),
        }
    };
}

impl Slot {
    /// The packed record of a cold slot.
    fn record(&self) -> Option<&[u8]> {
        cold_record!(self, b => &b[..])
    }

    /// The same, to change in place (`cold::arm`).
    fn record_mut(&mut self) -> Option<&mut [u8]> {
        cold_record!(self, b => &mut b[..])
    }

    fn is_free(&self) -> bool {
        matches!(self, Slot::Free)
    }
}

/// Whether the connection at slab index `i` has key `key`.
#[inline]
fn has_key(slab: &[Slot], i: u32, key: &FlowKey) -> bool {
    match slab.get(i as usize) {
        Some(Slot::Hot(c)) => c.key == *key,
        Some(cold) => cold.record().is_some_and(|r| cold::key(r) == *key),
        None => false,
    }
}

/// The key of the connection at slab index `i`.
fn key_of(slab: &[Slot], i: u32) -> Option<FlowKey> {
    match slab.get(i as usize)? {
        Slot::Free => None,
        Slot::Hot(c) => Some(c.key),
        cold => cold.record().map(cold::key),
    }
}

/// When and how flows are packed (see the module docs).
struct Cooling {
    /// Capture time without a packet after which a UDP flow is packed (`i64::MAX`: never).
    after: i64,
    /// The UDP idle timeout (the packed form leaves out the usual deadline).
    udp_idle: i64,
    /// Capture time the packed records' times are relative to (the first `now` seen).
    base: Option<i64>,
    next_sweep: i64,
    /// Slots that may hold a hot UDP flow: the sweep visits these, not the whole slab,
    /// so running it often costs in proportion to the flows that are hot. A slot may be
    /// listed twice (freed and reused between sweeps); the sweep drops stale entries and,
    /// when the list outgrows the table, duplicates.
    hot_udp: Vec<u32>,
    /// Scratch space for packing.
    buf: Vec<u8>,
}

impl Default for Cooling {
    fn default() -> Self {
        Cooling {
            after: i64::MAX,
            udp_idle: 0,
            base: None,
            next_sweep: i64::MAX,
            hot_udp: Vec::new(),
            buf: Vec::new(),
        }
    }
}

/// A heap entry: a deadline and a slab index in 12 bytes (an `(i64, u32)` tuple pads
/// to 16; the heap holds one entry per live connection). The deadline is split so the
/// derived order, field by field, is the order of the `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    hi: i32,
    lo: u32,
    idx: u32,
}

impl Due {
    fn new(deadline: i64, idx: u32) -> Due {
        Due {
            hi: (deadline >> 32) as i32,
            lo: deadline as u32,
            idx,
        }
    }

    fn deadline(&self) -> i64 {
        (i64::from(self.hi) << 32) | i64::from(self.lo)
    }
}

/// The flow table.
#[derive(Default)]
pub struct Table {
    /// Slab index of the connection each key maps to (compared through the slab).
    map: HashTable<u32>,
    slab: Vec<Slot>,
    /// Generation of each slab slot, bumped when a slot is freed.
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<Due>>,
    len: usize,
    /// The last key looked up and its slot: bulk transfers send runs of packets on one
    /// flow, and comparing 37 bytes is cheaper than hashing them. Cleared whenever the map
    /// changes.
    last: Option<(FlowKey, u32)>,
    cooling: Cooling,
}

impl Table {
    /// A table that packs UDP flows idle for `cold_after` ns of capture time (`i64::MAX`:
    /// never); `udp_idle` = the UDP idle timeout in ns.
    pub fn with_cooling(cold_after: i64, udp_idle: i64) -> Table {
        Table {
            cooling: Cooling {
                after: cold_after.max(0),
                udp_idle,
                next_sweep: i64::MIN,
                ..Cooling::default()
            },
            ..Table::default()
        }
    }

    /// Call with the capture time of every packet (before looking flows up): packs the
    /// flows that went cold, once per `cold_after` of capture time.
    #[inline]
    pub fn cool(&mut self, now: i64) {
        if now >= self.cooling.next_sweep {
            self.sweep(now);
        }
    }

    #[inline(never)]
    fn sweep(&mut self, now: i64) {
        let cl = &mut self.cooling;
        if cl.after == i64::MAX {
            cl.next_sweep = i64::MAX;
            return;
        }
        cl.next_sweep = now.saturating_add(cl.after.max(1));
        let base = *cl.base.get_or_insert(now);
        let before = now.saturating_sub(cl.after);
        let slab = &mut self.slab;
        let heap = &mut self.heap;
        let buf = &mut cl.buf;
        // Keep the slots whose flow is still hot and recent; pack the idle ones. A flow
        // `pack` refuses stays hot and unlisted (it cannot be packed later either).
        cl.hot_udp.retain(|&i| {
            let Some(slot) = slab.get_mut(i as usize) else {
                return false;
            };
            let Slot::Hot(c) = slot else {
                return false;
            };
            if !matches!(c.proto, Proto::Udp(_)) {
                return false;
            }
            if c.last_ts >= before {
                return true;
            }
            // The record holds a heap key only as "the deadline" or "the entry pushed
            // when the flow was created" (a flag bit; `rearm` moves it from the second to
            // the first in place). Any other key is armed at the deadline here. Not arming
            // the usual flow keeps its one entry instead of adding a second (at the 1 GB
            // benchmark capture's peak the heap held 119,408 entries of 12 bytes for
            // 58,884 flows).
            if c.heap_key != c.deadline && c.heap_key != c.first_ts.saturating_add(cl.udp_idle) {
                c.heap_key = c.deadline;
                heap.push(Reverse(Due::new(c.deadline, i)));
            }
            if cold::pack(c, base, cl.udp_idle, buf) {
                if let Some(packed) = cold_slot(buf) {
                    *slot = packed;
                }
            }
            false
        });
        if cl.hot_udp.len() > self.len {
            cl.hot_udp.sort_unstable();
            cl.hot_udp.dedup();
        }
    }

    /// Lists slot `idx` for the sweep if it holds a UDP flow and packing is on.
    fn list_hot(&mut self, idx: u32) {
        let cl = &mut self.cooling;
        if cl.after != i64::MAX {
            if let Some(Slot::Hot(c)) = self.slab.get(idx as usize) {
                if matches!(c.proto, Proto::Udp(_)) {
                    cl.hot_udp.push(idx);
                }
            }
        }
    }

    /// Unpacks slot `idx` if it is cold.
    fn warm(&mut self, idx: u32) -> Option<&mut Conn> {
        let slot = self.slab.get_mut(idx as usize)?;
        if let Some(rec) = slot.record() {
            let cl = &self.cooling;
            let c = cold::unpack(rec, cl.base.unwrap_or(0), cl.udp_idle);
            *slot = Slot::Hot(Box::new(c));
            self.list_hot(idx);
        }
        let slot = self.slab.get_mut(idx as usize)?;
        match slot {
            Slot::Hot(c) => Some(c),
            _ => None,
        }
    }

    /// Sets the heap key of connection `idx` to its deadline, and returns both as they
    /// were (a cold flow's record changes in place: see `cold::arm`).
    fn rearm(&mut self, idx: u32) -> Option<(i64, i64)> {
        let cl = &self.cooling;
        let slot = self.slab.get_mut(idx as usize)?;
        match slot {
            Slot::Free => None,
            Slot::Hot(c) => {
                let was = (c.heap_key, c.deadline);
                c.heap_key = c.deadline;
                Some(was)
            }
            cold => {
                let rec = cold.record_mut()?;
                let was = cold::times(rec, cl.base.unwrap_or(0), cl.udp_idle);
                cold::arm(rec);
                Some(was)
            }
        }
    }

    /// (heap key, deadline) of connection `idx`.
    fn times(&self, idx: u32) -> Option<(i64, i64)> {
        match self.slab.get(idx as usize)? {
            Slot::Free => None,
            Slot::Hot(c) => Some((c.heap_key, c.deadline)),
            cold => {
                let cl = &self.cooling;
                Some(cold::times(
                    cold.record()?,
                    cl.base.unwrap_or(0),
                    cl.udp_idle,
                ))
            }
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Forgets the table's capture-time bookkeeping (deadline heap, cooling clock) so a
    /// clock that went back starts afresh. Only for an empty table: packed flows keep
    /// their times relative to the cooling base.
    pub fn restart_clock(&mut self) {
        debug_assert!(self.is_empty());
        if !self.is_empty() {
            return;
        }
        self.heap.clear();
        self.cooling.hot_udp.clear();
        self.cooling.base = None;
        if self.cooling.after != i64::MAX {
            self.cooling.next_sweep = i64::MIN;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&mut self, key: &FlowKey) -> Option<u32> {
        if let Some((k, idx)) = &self.last {
            if k == key {
                return Some(*idx);
            }
        }
        let slab = &self.slab;
        let idx = *self.map.find(hash(key), |&i| has_key(slab, i, key))?;
        self.last = Some((*key, idx));
        Some(idx)
    }

    /// The connection at `idx` (unpacked first if it was cold).
    #[inline]
    pub fn conn_mut(&mut self, idx: u32) -> Option<&mut Conn> {
        if !matches!(self.slab.get(idx as usize)?, Slot::Hot(_)) {
            return self.warm(idx);
        }
        match self.slab.get_mut(idx as usize)? {
            Slot::Hot(c) => Some(c),
            _ => None,
        }
    }

    /// Inserts a connection (its `deadline` set) and returns its index.
    pub fn insert(&mut self, key: FlowKey, mut conn: Box<Conn>) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(Slot::Free);
                (self.slab.len() - 1) as u32
            }
        };
        conn.heap_key = conn.deadline;
        self.heap.push(Reverse(Due::new(conn.deadline, idx)));
        self.slab[idx as usize] = Slot::Hot(conn);
        self.list_hot(idx);
        // A key already mapped (a new connection on a tuple whose old one still lingers)
        // now maps to the new connection.
        let h = hash(&key);
        let slab = &self.slab;
        let old = self
            .map
            .find_mut(h, |&i| i != idx && has_key(slab, i, &key));
        match old {
            Some(slot) => *slot = idx,
            None => {
                self.map
                    .insert_unique(h, idx, |&i| key_of(slab, i).map_or(0, |k| hash(&k)));
            }
        }
        self.last = None;
        self.len += 1;
        self.compact();
        idx
    }

    /// Stale heap entries of finished connections would otherwise stay until their
    /// (idle-timeout) key comes due: rebuild the heap from the live connections when it
    /// holds more than twice as many entries, so it stays O(tracked connections), and
    /// also when it is full and a fifth of it is stale, so that it doubles its memory
    /// only for live entries. The rebuild reuses the heap's own buffer (live entries are
    /// never more than the entries), so it allocates nothing.
    fn compact(&mut self) {
        let (n, live) = (self.heap.len(), self.len);
        let full = n == self.heap.capacity() && n >= live + live / 4 + 1024;
        if n <= 2 * live + 1024 && !full {
            return;
        }
        let mut v = std::mem::take(&mut self.heap).into_vec();
        v.clear();
        for i in 0..self.slab.len() as u32 {
            if let Some((_, deadline)) = self.rearm(i) {
                v.push(Reverse(Due::new(deadline, i)));
            }
        }
        self.heap = BinaryHeap::from(v);
    }

    /// Call after changing a connection's `deadline`.
    pub fn deadline_changed(&mut self, idx: u32) {
        if let Some(Slot::Hot(c)) = self.slab.get_mut(idx as usize) {
            if c.deadline < c.heap_key {
                c.heap_key = c.deadline;
                self.heap.push(Reverse(Due::new(c.deadline, idx)));
            }
        }
        self.compact();
    }

    /// Removes and returns a connection (a cold flow is unpacked onto the stack, not
    /// into a new allocation).
    pub fn remove(&mut self, idx: u32) -> Option<Conn> {
        let slot = self.slab.get_mut(idx as usize)?;
        let c = match std::mem::replace(slot, Slot::Free) {
            Slot::Free => return None,
            Slot::Hot(c) => *c,
            cold => {
                let cl = &self.cooling;
                let rec = cold.record()?;
                cold::unpack(rec, cl.base.unwrap_or(0), cl.udp_idle)
            }
        };
        self.last = None;
        if let Ok(entry) = self.map.find_entry(hash(&c.key), |&i| i == idx) {
            entry.remove();
        }
        self.free.push(idx);
        self.len -= 1;
        Some(c)
    }

    /// The connection with the earliest deadline, if that deadline is at or before
    /// `until` (pass `i64::MAX` for the earliest at all); re-arms stale entries on the
    /// way.
    #[inline]
    pub fn earliest(&mut self, until: i64) -> Option<u32> {
        // Called for every packet; nearly always nothing is due.
        match self.heap.peek() {
            Some(Reverse(due)) if due.deadline() <= until => self.earliest_due(until),
            _ => None,
        }
    }

    #[inline(never)]
    fn earliest_due(&mut self, until: i64) -> Option<u32> {
        loop {
            let &Reverse(due) = self.heap.peek()?;
            let (key, idx) = (due.deadline(), due.idx);
            if key > until {
                return None;
            }
            self.heap.pop();
            let Some((heap_key, deadline)) = self.times(idx) else {
                continue;
            };
            if heap_key != key {
                continue;
            }
            if deadline > key {
                self.rearm(idx);
                self.heap.push(Reverse(Due::new(deadline, idx)));
                continue;
            }
            // Live and exact: the earliest deadline. Put the entry back; the caller
            // removes the connection (which retires the entry) or keeps it.
            self.heap.push(Reverse(due));
            return Some(idx);
        }
    }

    #[cfg(test)]
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub fn heap_capacity(&self) -> usize {
        self.heap.capacity()
    }

    /// (slots listed for the sweep, connections held packed).
    #[cfg(test)]
    pub fn cooling_counts(&self) -> (usize, usize) {
        let packed = self.slab.iter().filter(|s| s.record().is_some()).count();
        (self.cooling.hot_udp.len(), packed)
    }

    /// Whether connection `idx` was closed (read without unpacking a cold flow).
    pub fn is_closed(&self, idx: u32) -> bool {
        match self.slab.get(idx as usize) {
            Some(Slot::Hot(c)) => c.closed_at.is_some(),
            Some(cold) => cold.record().is_some_and(cold::closed),
            None => false,
        }
    }

    /// The id of connection `idx`, read without unpacking a cold flow (finishing reads
    /// every id first: unpacking them all at once would be the run's peak memory).
    pub fn id_of(&self, idx: u32) -> Option<u64> {
        match self.slab.get(idx as usize)? {
            Slot::Free => None,
            Slot::Hot(c) => Some(c.id),
            cold => cold.record().map(cold::id),
        }
    }

    /// Indices of every connection, in slab order.
    pub fn indices(&self) -> Vec<u32> {
        (0..self.slab.len() as u32)
            .filter(|&i| !self.slab[i as usize].is_free())
            .collect()
    }
}
