//! The flow table: connections by direction-independent 5-tuple (FxHash over a table of
//! 4-byte slab indices: the key is compared in the connection itself, which the caller
//! reads next anyway; a table holding the keys cost about 100 bytes per connection at its
//! load factor), a slab of 4-byte slots naming each connection's state (a boxed `Conn`
//! in the hot list, or a cold flow's packed record in [`crate::analyze::records`]), and a lazy
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
//! callers only ever see [`Conn`]s. The sweep is what keeps memory near 60 bytes (a
//! record of about 34, the 4-byte slot, a 12-byte heap entry, a table entry) per flow
//! that merely waits out the 60-second UDP timeout, where a boxed connection took about
//! 330. (With a box per record and a 16-byte slot it was about 80: the 1 GB benchmark
//! capture's summary peaked 1.0 to 1.4 MiB higher.) The sweep visits only the slots
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
use crate::analyze::records::{self, Records, Ref};

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

/// What a slab slot holds, in 4 bytes (the slab has one per tracked flow): its kind in
/// the top bits (free, a hot connection, or a packed record of one of the record arenas)
/// and its index in the hot list or that arena below them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(u32);

/// Bits of a [`Slot`] that hold the index.
const INDEX_BITS: u32 = 26;
const _: () = assert!(records::INDEX_LIMIT == 1 << INDEX_BITS);
const _: () = assert!(records::CLASSES + 2 <= 1 << (32 - INDEX_BITS));

/// Most connections a table holds at once: hot indices stay below it, so they fit a
/// [`Slot`]. (About 67 million, far beyond what memory holds: a tracked TCP connection
/// takes 2 KiB.)
pub const MAX_TRACKED: usize = (1 << INDEX_BITS) - 2;

/// A [`Slot`] taken apart.
enum Held {
    Free,
    Hot(usize),
    Cold(Ref),
}

impl Slot {
    const FREE: Slot = Slot(0);

    fn hot(i: usize) -> Slot {
        debug_assert!(i < MAX_TRACKED + 2);
        Slot((1 << INDEX_BITS) | i as u32)
    }

    fn cold(r: Ref) -> Slot {
        Slot(((u32::from(r.class) + 2) << INDEX_BITS) | r.idx)
    }

    fn held(self) -> Held {
        let index = self.0 & ((1 << INDEX_BITS) - 1);
        match self.0 >> INDEX_BITS {
            0 => Held::Free,
            1 => Held::Hot(index as usize),
            kind => Held::Cold(Ref {
                class: (kind - 2) as u8,
                idx: index,
            }),
        }
    }
}

/// The connections of the slab's slots: hot ones boxed in a list of their own (whose
/// free entries are reused), cold ones in the record arenas.
#[derive(Default)]
struct Store {
    slab: Vec<Slot>,
    hot: Vec<Option<Box<Conn>>>,
    hot_free: Vec<u32>,
    records: Records,
}

impl Store {
    fn held(&self, idx: u32) -> Held {
        self.slab.get(idx as usize).map_or(Held::Free, |s| s.held())
    }

    fn hot(&self, idx: u32) -> Option<&Conn> {
        match self.held(idx) {
            Held::Hot(h) => self.hot_at(h),
            _ => None,
        }
    }

    /// The hot connection at index `h` of the hot list (a slot already read says which).
    fn hot_at(&self, h: usize) -> Option<&Conn> {
        self.hot.get(h)?.as_deref()
    }

    fn hot_mut(&mut self, idx: u32) -> Option<&mut Conn> {
        match self.held(idx) {
            Held::Hot(h) => self.hot_at_mut(h),
            _ => None,
        }
    }

    fn hot_at_mut(&mut self, h: usize) -> Option<&mut Conn> {
        self.hot.get_mut(h)?.as_deref_mut()
    }

    /// The packed record of a cold slot.
    fn record(&self, idx: u32) -> Option<&[u8]> {
        match self.held(idx) {
            Held::Cold(r) => Some(self.records.get(r)),
            _ => None,
        }
    }

    /// Whether the connection at slab index `idx` has key `key`.
    #[inline]
    fn has_key(&self, idx: u32, key: &FlowKey) -> bool {
        match self.held(idx) {
            Held::Free => false,
            Held::Hot(h) => self.hot_at(h).is_some_and(|c| c.key == *key),
            Held::Cold(r) => cold::key(self.records.get(r)) == *key,
        }
    }

    /// The key of the connection at slab index `idx`.
    fn key_of(&self, idx: u32) -> Option<FlowKey> {
        match self.held(idx) {
            Held::Free => None,
            Held::Hot(h) => self.hot_at(h).map(|c| c.key),
            Held::Cold(r) => Some(cold::key(self.records.get(r))),
        }
    }

    /// Makes slot `idx` (free) hold `c`, hot.
    fn put_hot(&mut self, idx: u32, c: Box<Conn>) {
        let h = match self.hot_free.pop() {
            Some(h) => h as usize,
            None => {
                self.hot.push(None);
                self.hot.len() - 1
            }
        };
        if let (Some(entry), Some(slot)) = (self.hot.get_mut(h), self.slab.get_mut(idx as usize)) {
            *entry = Some(c);
            *slot = Slot::hot(h);
        }
    }

    /// Empties slot `idx`, returning what it held: a hot connection, or a cold record's
    /// `Ref` (still stored: the caller reads it, then frees it).
    fn take(&mut self, idx: u32) -> Option<Result<Box<Conn>, Ref>> {
        let slot = self.slab.get_mut(idx as usize)?;
        let held = std::mem::replace(slot, Slot::FREE).held();
        match held {
            Held::Free => None,
            Held::Hot(h) => {
                let c = self.hot.get_mut(h)?.take()?;
                self.hot_free.push(h as u32);
                Some(Ok(c))
            }
            Held::Cold(r) => Some(Err(r)),
        }
    }

    /// Packs hot slot `idx` from `rec` (its connection is dropped); false, with nothing
    /// changed, if the arenas refuse the record.
    fn make_cold(&mut self, idx: u32, rec: &[u8]) -> bool {
        if !matches!(self.held(idx), Held::Hot(_)) {
            return false;
        }
        let Some(r) = self.records.put(rec) else {
            return false;
        };
        drop(self.take(idx));
        if let Some(slot) = self.slab.get_mut(idx as usize) {
            *slot = Slot::cold(r);
        }
        true
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
    store: Store,
    /// Free slab slots, to reuse before growing the slab.
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
        let store = &mut self.store;
        let heap = &mut self.heap;
        let buf = &mut cl.buf;
        // Keep the slots whose flow is still hot and recent; pack the idle ones. A flow
        // `pack` refuses stays hot and unlisted (it cannot be packed later either).
        cl.hot_udp.retain(|&i| {
            let Some(c) = store.hot_mut(i) else {
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
                store.make_cold(i, buf);
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
            if let Some(c) = self.store.hot(idx) {
                if matches!(c.proto, Proto::Udp(_)) {
                    cl.hot_udp.push(idx);
                }
            }
        }
    }

    /// Unpacks slot `idx` if it is cold.
    fn warm(&mut self, idx: u32) -> Option<&mut Conn> {
        if let Some(rec) = self.store.record(idx) {
            let cl = &self.cooling;
            let c = cold::unpack(rec, cl.base.unwrap_or(0), cl.udp_idle);
            if let Some(Err(r)) = self.store.take(idx) {
                self.store.records.free(r);
            }
            self.store.put_hot(idx, Box::new(c));
            self.list_hot(idx);
        }
        self.store.hot_mut(idx)
    }

    /// Sets the heap key of connection `idx` to its deadline, and returns both as they
    /// were (a cold flow's record changes in place: see `cold::arm`).
    fn rearm(&mut self, idx: u32) -> Option<(i64, i64)> {
        let cl = &self.cooling;
        match self.store.held(idx) {
            Held::Free => None,
            Held::Hot(h) => {
                let c = self.store.hot_at_mut(h)?;
                let was = (c.heap_key, c.deadline);
                c.heap_key = c.deadline;
                Some(was)
            }
            Held::Cold(r) => {
                let rec = self.store.records.get_mut(r);
                let was = cold::times(rec, cl.base.unwrap_or(0), cl.udp_idle);
                cold::arm(rec);
                Some(was)
            }
        }
    }

    /// (heap key, deadline) of connection `idx`.
    fn times(&self, idx: u32) -> Option<(i64, i64)> {
        match self.store.held(idx) {
            Held::Free => None,
            Held::Hot(h) => self.store.hot_at(h).map(|c| (c.heap_key, c.deadline)),
            Held::Cold(r) => {
                let cl = &self.cooling;
                Some(cold::times(
                    self.store.records.get(r),
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
        let store = &self.store;
        let idx = *self.map.find(hash(key), |&i| store.has_key(i, key))?;
        self.last = Some((*key, idx));
        Some(idx)
    }

    /// The connection at `idx` (unpacked first if it was cold).
    #[inline]
    pub fn conn_mut(&mut self, idx: u32) -> Option<&mut Conn> {
        match self.store.held(idx) {
            Held::Hot(h) => self.store.hot_at_mut(h),
            _ => self.warm(idx),
        }
    }

    /// Inserts a connection (its `deadline` set) and returns its index.
    pub fn insert(&mut self, key: FlowKey, mut conn: Box<Conn>) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.store.slab.push(Slot::FREE);
                (self.store.slab.len() - 1) as u32
            }
        };
        conn.heap_key = conn.deadline;
        self.heap.push(Reverse(Due::new(conn.deadline, idx)));
        self.store.put_hot(idx, conn);
        self.list_hot(idx);
        // A key already mapped (a new connection on a tuple whose old one still lingers)
        // now maps to the new connection.
        let h = hash(&key);
        let store = &self.store;
        let old = self
            .map
            .find_mut(h, |&i| i != idx && store.has_key(i, &key));
        match old {
            Some(slot) => *slot = idx,
            None => {
                self.map
                    .insert_unique(h, idx, |&i| store.key_of(i).map_or(0, |k| hash(&k)));
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
        for i in 0..self.store.slab.len() as u32 {
            if let Some((_, deadline)) = self.rearm(i) {
                v.push(Reverse(Due::new(deadline, i)));
            }
        }
        self.heap = BinaryHeap::from(v);
    }

    /// Call after changing a connection's `deadline`.
    pub fn deadline_changed(&mut self, idx: u32) {
        if let Some(c) = self.store.hot_mut(idx) {
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
        let c = match self.store.take(idx)? {
            Ok(c) => *c,
            Err(r) => {
                let cl = &self.cooling;
                let c = cold::unpack(self.store.records.get(r), cl.base.unwrap_or(0), cl.udp_idle);
                self.store.records.free(r);
                c
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
        let packed = self.store.records.live();
        (self.cooling.hot_udp.len(), packed)
    }

    /// Whether connection `idx` was closed (read without unpacking a cold flow).
    pub fn is_closed(&self, idx: u32) -> bool {
        match self.store.held(idx) {
            Held::Free => false,
            Held::Hot(h) => self.store.hot_at(h).is_some_and(|c| c.closed_at.is_some()),
            Held::Cold(r) => cold::closed(self.store.records.get(r)),
        }
    }

    /// The id of connection `idx`, read without unpacking a cold flow (finishing reads
    /// every id first: unpacking them all at once would be the run's peak memory).
    pub fn id_of(&self, idx: u32) -> Option<u64> {
        match self.store.held(idx) {
            Held::Free => None,
            Held::Hot(h) => self.store.hot_at(h).map(|c| c.id),
            Held::Cold(r) => Some(cold::id(self.store.records.get(r))),
        }
    }

    /// Indices of every connection, in slab order.
    pub fn indices(&self) -> Vec<u32> {
        (0..self.store.slab.len() as u32)
            .filter(|&i| !matches!(self.store.held(i), Held::Free))
            .collect()
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn a_slot_is_four_bytes_and_says_what_it_held() {
        assert_eq!(std::mem::size_of::<Slot>(), 4);
        assert!(matches!(Slot::FREE.held(), Held::Free));
        for i in [0, 1, MAX_TRACKED + 1] {
            assert!(matches!(Slot::hot(i).held(), Held::Hot(h) if h == i));
        }
        for class in [0, records::CLASSES as u8 - 1] {
            for idx in [0, records::INDEX_LIMIT - 1] {
                let r = Ref { class, idx };
                assert!(matches!(Slot::cold(r).held(), Held::Cold(got) if got == r));
            }
        }
    }
}
