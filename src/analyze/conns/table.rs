//! The flow table: connections by direction-independent 5-tuple (FxHash over a table of
//! 4-byte slab indices: the key is compared in the connection itself, which the caller
//! reads next anyway; a table holding the 37-byte keys cost about 100 bytes per
//! connection at its load factor), a slab of boxed connection states, and a lazy min-heap of deadlines (idle timeout, or linger
//! after a close) that finds both the connections to finalize and the one to evict when
//! the table is full.
//!
//! Heap invariant: every live connection has exactly one *live* heap entry, whose key is
//! `Conn::heap_key` and is never later than the connection's real deadline (deadlines
//! grow with every packet; when one shrinks, on a close, a new live entry is pushed).
//! Other entries are stale and dropped when popped. So the first live entry popped whose
//! key equals its connection's deadline is the connection with the earliest deadline.
//! The heap is rebuilt from the live connections whenever it holds more than twice as
//! many entries as there are connections, so it stays O(tracked connections).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use std::hash::BuildHasher;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use super::Conn;

/// A 5-tuple with its two endpoints in canonical order, so both directions of a flow
/// map to the same key. IPv4 addresses are stored v4-mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    lo: ([u8; 16], u16),
    hi: ([u8; 16], u16),
    proto: u8,
}

/// Bytes rather than `u128` keep the key at 37 bytes (alignment 1) instead of 80: the
/// flow table holds one per live connection.
fn bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst`, and whether the source is the key's
    /// low endpoint.
    pub fn new(proto: u8, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> (FlowKey, bool) {
        let a = (bytes(src), sport);
        let b = (bytes(dst), dport);
        // Ordered as integers: one compare, where comparing the byte arrays was a sixth of
        // the tracker's per-packet cost. Big-endian keeps the order of the bytes.
        let a_lo = (u128::from_be_bytes(a.0), sport) <= (u128::from_be_bytes(b.0), dport);
        let (lo, hi) = if a_lo { (a, b) } else { (b, a) };
        (FlowKey { lo, hi, proto }, a_lo)
    }
}

fn hash(key: &FlowKey) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The key of the connection at slab index `i`.
fn key_of(slab: &[Option<Box<Conn>>], i: u32) -> Option<&FlowKey> {
    slab.get(i as usize)?.as_deref().map(|c| &c.key)
}

/// The flow table.
#[derive(Default)]
pub struct Table {
    /// Slab index of the connection each key maps to (compared through the slab).
    map: HashTable<u32>,
    slab: Vec<Option<Box<Conn>>>,
    /// Generation of each slab slot, bumped when a slot is freed.
    gens: Vec<u32>,
    free: Vec<u32>,
    heap: BinaryHeap<Reverse<(i64, u32, u32)>>,
    len: usize,
    /// The last key looked up and its slot: bulk transfers send runs of packets on one
    /// flow, and comparing 37 bytes is cheaper than hashing them. Cleared whenever the map
    /// changes.
    last: Option<(FlowKey, u32)>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.len
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
        let idx = *self
            .map
            .find(hash(key), |&i| key_of(slab, i) == Some(key))?;
        self.last = Some((*key, idx));
        Some(idx)
    }

    pub fn conn_mut(&mut self, idx: u32) -> Option<&mut Conn> {
        self.slab.get_mut(idx as usize)?.as_deref_mut()
    }

    /// Inserts a connection (its `deadline` set) and returns its index.
    pub fn insert(&mut self, key: FlowKey, mut conn: Box<Conn>) -> u32 {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(None);
                self.gens.push(0);
                (self.slab.len() - 1) as u32
            }
        };
        conn.heap_key = conn.deadline;
        let gen = self.gens[idx as usize];
        self.heap.push(Reverse((conn.deadline, idx, gen)));
        self.slab[idx as usize] = Some(conn);
        // A key already mapped (a new connection on a tuple whose old one still lingers)
        // now maps to the new connection.
        let h = hash(&key);
        let slab = &self.slab;
        let old = self
            .map
            .find_mut(h, |&i| i != idx && key_of(slab, i) == Some(&key));
        match old {
            Some(slot) => *slot = idx,
            None => {
                self.map
                    .insert_unique(h, idx, |&i| key_of(slab, i).map_or(0, hash));
            }
        }
        self.last = None;
        self.len += 1;
        self.compact();
        idx
    }

    /// Stale heap entries of finished connections would otherwise stay until their
    /// (idle-timeout) key comes due: rebuild the heap from the live connections when it
    /// holds more than twice as many entries, so it stays O(tracked connections).
    fn compact(&mut self) {
        if self.heap.len() <= 2 * self.len + 1024 {
            return;
        }
        let mut live = Vec::with_capacity(self.len);
        for (i, slot) in self.slab.iter_mut().enumerate() {
            if let Some(c) = slot.as_deref_mut() {
                c.heap_key = c.deadline;
                live.push(Reverse((c.deadline, i as u32, self.gens[i])));
            }
        }
        self.heap = BinaryHeap::from(live);
    }

    /// Call after changing a connection's `deadline`.
    pub fn deadline_changed(&mut self, idx: u32) {
        let gen = self.gens[idx as usize];
        if let Some(c) = self.slab[idx as usize].as_deref_mut() {
            if c.deadline < c.heap_key {
                c.heap_key = c.deadline;
                self.heap.push(Reverse((c.deadline, idx, gen)));
            }
        }
        self.compact();
    }

    /// Removes and returns a connection.
    pub fn remove(&mut self, idx: u32) -> Option<Box<Conn>> {
        let c = self.slab.get_mut(idx as usize)?.take()?;
        self.last = None;
        if let Ok(entry) = self.map.find_entry(hash(&c.key), |&i| i == idx) {
            entry.remove();
        }
        self.gens[idx as usize] = self.gens[idx as usize].wrapping_add(1);
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
            Some(&Reverse((key, _, _))) if key <= until => self.earliest_due(until),
            _ => None,
        }
    }

    #[inline(never)]
    fn earliest_due(&mut self, until: i64) -> Option<u32> {
        loop {
            let &Reverse((key, idx, gen)) = self.heap.peek()?;
            if key > until {
                return None;
            }
            self.heap.pop();
            if self.gens[idx as usize] != gen {
                continue;
            }
            let Some(c) = self.slab[idx as usize].as_deref_mut() else {
                continue;
            };
            if c.heap_key != key {
                continue;
            }
            if c.deadline > key {
                c.heap_key = c.deadline;
                self.heap.push(Reverse((c.deadline, idx, gen)));
                continue;
            }
            // Live and exact: the earliest deadline. Put the entry back; the caller
            // removes the connection (which retires the entry) or keeps it.
            self.heap.push(Reverse((key, idx, gen)));
            return Some(idx);
        }
    }

    #[cfg(test)]
    pub fn heap_len(&self) -> usize {
        self.heap.len()
    }

    /// Indices of every connection, in slab order.
    pub fn indices(&self) -> Vec<u32> {
        (0..self.slab.len() as u32)
            .filter(|&i| self.slab[i as usize].is_some())
            .collect()
    }
}
