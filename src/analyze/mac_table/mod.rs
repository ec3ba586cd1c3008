//! The MAC learning table an Ethernet switch would build from the same frames.
//!
//! Every Ethernet frame is replayed through a textbook learning switch whose ports are the
//! capture interfaces (`Packet::port`: each pcapng interface of each input file is its own
//! port; a plain pcap is one port). For each frame, in this order:
//!
//! 1. the source MAC is learned, or refreshed, on (ingress port, VLAN), unless it is a
//!    group or all-zero address (a switch never learns those: they get a report row with
//!    their frames, but no table entry);
//! 2. the destination is looked up: broadcast → flooded; other group address → flooded
//!    (`multicast_flooded`); a unicast address the table holds on that VLAN → forwarded
//!    (`unicast_forwarded`); otherwise → flooded (`unknown_unicast_flooded`).
//!
//! The table is keyed by (VLAN, MAC) as in 802.1Q independent VLAN learning, with the outer
//! tag as the VLAN (untagged = no VLAN). The report has one row per MAC; a MAC heard on
//! another port than its live entry has *moved* (kind "port"); a MAC heard on a VLAN where it
//! has no live entry while it has one on the VLAN it last used has moved between VLANs
//! (kind "vlan" or "port+vlan"), once per new VLAN.
//!
//! Time is capture time: the clock is the largest timestamp seen so far (merged captures may
//! step back). An entry expires when the clock is more than the aging time past its last
//! refresh (aging 0 = never, as on most switches); its expiry time is reported as last
//! refresh + aging, so it does not depend on when the analyzer noticed. Expired entries are
//! found when touched and by sweeps scheduled at the earliest expiry (at most one sweep per
//! eighth of the aging time, so a full table may hold an expired, untouched entry that long
//! before it frees the slot).
//!
//! Linux cooked captures (SLL/SLL2) carry the source address only: their source MAC is
//! learned, but no destination is ever invented, so they take no part in the flood/forward
//! totals (counted under `not_learned.cooked_frames`).
//!
//! Representation: table entries live in a slab (freed slots are reused), found by a map
//! from the (VLAN, MAC) pair packed into one integer; each MAC's row keeps the slot of the
//! entry it used last as a hint, checked against the slot's key, so the two lookups per
//! frame (source refresh, destination) rarely hash. Sweeps visit the slab in slot order.
//!
//! The table reads a [`Frame`] (record fields, link addresses, outer VLAN, sender IP), not
//! the packet, so the pipeline can hand it to the stream thread when there is one
//! (`streams::thread`); [`Analyzer::on_packet`] is `on_frame(&Frame::of(p))`.
//!
//! Memory is bounded: the table holds at most `mac_table_size` entries (a full table refuses
//! new learnings, counted), at most `max_macs` MAC rows and as many destination-only
//! addresses are tracked, and every per-MAC list is capped (`*_truncated`, `*_total`).

use rustc_hash::FxHashMap;

mod frame;
mod row;
pub use frame::{Frame, FrameLink};
use row::{Aged, Row};

use super::{oui, Analyzer, Ctx};
use crate::config::L2Options;
use crate::dissect::{Mac, Packet};
use crate::report::l2::{
    MacAged, MacDestination, MacEntry, MacMove, MacNotLearned, MacPort, MacTable, MacTotals,
};
use crate::report::{ts_secs, Report, Warning};

type Vlan = Option<u16>;

const MAX_MOVES: usize = 32;
/// Rows `row_index` finds without hashing (no MAC bits equal the initial `u64::MAX`).
const RECENT: usize = 8;
const NS: i64 = 1_000_000_000;

/// A (VLAN, MAC) pair as one integer: the MAC in the low 48 bits, the VLAN tag above
/// (0 = untagged, else 0x1000 | id). Hashing and comparing a `u64` is a few instructions
/// where the `(Option<u16>, [u8; 6])` tuple took five hasher rounds and a byte-wise
/// compare, and the table is looked up twice per frame. VLAN ids are 12 bits (802.1Q;
/// the dissector yields nothing larger), so the mask loses nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FdbKey(u64);

impl FdbKey {
    fn new(vlan: Vlan, mac: Mac) -> FdbKey {
        let tag = vlan.map_or(0, |v| 0x1000 | u64::from(v & 0x0fff));
        FdbKey(mac_bits(mac) | tag << 48)
    }

    /// Marks a free slab slot: no (VLAN, MAC) encodes to it (the tag is at most 0x1fff).
    const FREE: FdbKey = FdbKey(u64::MAX);

    fn vlan(self) -> Vlan {
        let tag = (self.0 >> 48) as u16;
        (tag & 0x1000 != 0).then_some(tag & 0x0fff)
    }
}

/// The 48 bits of a MAC address as an integer (a map key cheaper than the byte array).
fn mac_bits(mac: Mac) -> u64 {
    let [a, b, c, d, e, f] = mac.0;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f])
}

/// One live entry of the switch table.
#[derive(Debug, Clone, Copy)]
struct Fdb {
    port: u32,
    last_ts: i64,
    last_frame: u64,
    row: u32,
}

/// A slot of the table's slab: an entry and its key, or free ([`FdbKey::FREE`]).
#[derive(Debug, Clone, Copy)]
struct FdbSlot {
    key: FdbKey,
    e: Fdb,
}

/// An address seen only as a destination so far.
#[derive(Debug, Clone, Copy)]
struct DstStat {
    first_frame: u64,
    frames: u64,
    bytes: u64,
    floods: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct PortStat {
    frames: u64,
    learned: u64,
}

/// The `mac_table` analyzer.
pub struct MacTableAnalyzer {
    aging_ns: i64,
    aging_s: u64,
    table_size: usize,
    max_macs: usize,
    /// The clock: the largest capture timestamp seen.
    now: Option<i64>,
    next_sweep: i64,
    /// The switch table: slab slot by key. Entries live in `slab` so a row can keep the
    /// slot of its entry (`Row::fdb_hint`); freed slots are reused from `free`.
    fdb: FxHashMap<FdbKey, u32>,
    slab: Vec<FdbSlot>,
    free: Vec<u32>,
    rows: Vec<Row>,
    /// Row index by MAC (as [`mac_bits`]).
    row_of: FxHashMap<u64, u32>,
    /// Rows looked up lately, as (MAC bits, row), replaced round-robin (rows are never
    /// removed, so these never go stale): a capture on a switch port or a small LAN sees
    /// a handful of stations, a few compares of integers are cheaper than hashing one,
    /// and with two (the last frame's pair) a server talking with several clients hashed
    /// for most frames.
    recent: [(u64, u32); RECENT],
    /// The `recent` slot the next hashed lookup replaces.
    recent_next: usize,
    dsts: FxHashMap<Mac, DstStat>,
    /// Per-port counts, in order of first appearance, and the index of the port of the
    /// last frame: a capture has one or a few ports, and nearly every frame comes in on
    /// the port of the frame before it.
    ports: Vec<(u32, PortStat)>,
    port_of: FxHashMap<u32, usize>,
    last_port: Option<(u32, usize)>,
    totals: MacTotals,
    not_learned: MacNotLearned,
}

/// An entry last seen at `last_ts` has aged out at `now` (`aging` 0: never).
fn aged(aging: i64, last_ts: i64, now: i64) -> bool {
    aging > 0 && now.saturating_sub(last_ts) > aging
}

impl MacTableAnalyzer {
    pub fn new(opts: &L2Options) -> Self {
        MacTableAnalyzer {
            aging_ns: i64::try_from(opts.aging_s)
                .unwrap_or(i64::MAX)
                .saturating_mul(NS),
            aging_s: opts.aging_s,
            table_size: opts.mac_table_size,
            max_macs: opts.max_macs,
            now: None,
            next_sweep: i64::MAX,
            fdb: FxHashMap::default(),
            slab: Vec::new(),
            free: Vec::new(),
            rows: Vec::new(),
            row_of: FxHashMap::default(),
            recent: [(u64::MAX, u32::MAX); RECENT],
            recent_next: 0,
            dsts: FxHashMap::default(),
            ports: Vec::new(),
            port_of: FxHashMap::default(),
            last_port: None,
            totals: MacTotals::default(),
            not_learned: MacNotLearned::default(),
        }
    }

    fn expired(&self, last_ts: i64, now: i64) -> bool {
        aged(self.aging_ns, last_ts, now)
    }

    /// Removes every expired entry and schedules the next sweep at the earliest expiry
    /// (but not sooner than an eighth of the aging time, so a table whose entries expire
    /// one by one is not swept per frame; entries touched in between are checked exactly).
    fn sweep(&mut self, now: i64) {
        if self.aging_ns == 0 {
            return;
        }
        let aging = self.aging_ns;
        let mut next = i64::MAX;
        // Slab order: the order entries were first stored in their slots.
        for i in 0..self.slab.len() {
            let FdbSlot { key, e } = self.slab[i];
            if key == FdbKey::FREE {
                continue;
            }
            if now.saturating_sub(e.last_ts) > aging {
                self.expire(i as u32);
            } else {
                next = next.min(e.last_ts.saturating_add(aging));
            }
        }
        self.next_sweep = next.max(now.saturating_add((aging / 8).max(NS)));
    }

    /// Removes the entry in slab slot `i`, which has aged out, and records it.
    fn expire(&mut self, i: u32) {
        let Some(slot) = self.slab.get_mut(i as usize) else {
            return;
        };
        let FdbSlot { key, e } = *slot;
        slot.key = FdbKey::FREE;
        self.fdb.remove(&key);
        self.free.push(i);
        self.totals.aged_out += 1;
        if let Some(r) = self.rows.get_mut(e.row as usize) {
            r.record_aged(Aged {
                vlan: key.vlan(),
                port: e.port,
                last_frame: e.last_frame,
                expired_ns: e.last_ts.saturating_add(self.aging_ns),
                relearned_frame: None,
            });
        }
    }

    /// The slab slot holding `key`: `hint` if it does (no hashing), else the map's.
    fn find(&self, key: FdbKey, hint: u32) -> Option<u32> {
        match self.slab.get(hint as usize) {
            Some(s) if s.key == key => Some(hint),
            _ => self.fdb.get(&key).copied(),
        }
    }

    /// Stores a new entry and returns its slab slot.
    fn store(&mut self, key: FdbKey, e: Fdb) -> u32 {
        let slot = FdbSlot { key, e };
        // The slab grows only when no slot is free, so it never holds more slots than
        // the live entries `learn` allows (at most u32::MAX): its indices fit the u32 a
        // row keeps, and `free` holds only indices already in it.
        match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slab.get_mut(i as usize) {
                    *s = slot;
                }
                self.fdb.insert(key, i);
                i
            }
            None => {
                let i = self.slab.len() as u32;
                self.slab.push(slot);
                self.fdb.insert(key, i);
                i
            }
        }
    }

    /// The row of `mac` if it has one.
    fn row_index(&mut self, mac: Mac) -> Option<usize> {
        let bits = mac_bits(mac);
        for &(m, i) in &self.recent {
            if m == bits {
                return Some(i as usize);
            }
        }
        let i = *self.row_of.get(&bits)?;
        self.recent[self.recent_next % RECENT] = (bits, i);
        self.recent_next = (self.recent_next + 1) % RECENT;
        Some(i as usize)
    }

    /// The row of `mac`, created (taking over what it received as a destination) if new.
    fn row_for(&mut self, mac: Mac, p: &Frame) -> Option<usize> {
        if let Some(i) = self.row_index(mac) {
            return Some(i);
        }
        if self.rows.len() >= self.max_macs {
            return None;
        }
        // u32 indexes keep table entries small; more than 4 billion rows are refused here.
        let idx = u32::try_from(self.rows.len()).ok()?;
        let mut row = Row::new(mac, p);
        if let Some(d) = self.dsts.remove(&mac) {
            row.rx_frames = d.frames;
            row.rx_bytes = d.bytes;
            row.unknown_unicast_floods = d.floods;
        }
        self.rows.push(row);
        self.row_of.insert(mac_bits(mac), idx);
        Some(idx as usize)
    }

    /// Step 1: learn or refresh `src` on (port, vlan).
    fn learn(&mut self, src: Mac, vlan: Vlan, p: &Frame, now: i64, cooked: bool) {
        let Some(ri) = self.row_for(src, p) else {
            self.not_learned.macs_untracked += 1;
            return;
        };
        if src.is_group() || src.is_zero() {
            // Counted as its sender's frames (the row reports it, group bit and all), but a
            // switch never learns such a source.
            let r = &mut self.rows[ri];
            r.sent(p, vlan);
            if cooked {
                r.cooked_frames += 1;
            }
            self.not_learned.invalid_source += 1;
            return;
        }
        let (prev_vlan, had_frames) = {
            let r = &self.rows[ri];
            (r.last_vlan, r.frames > 0)
        };
        {
            let r = &mut self.rows[ri];
            r.sent(p, vlan);
            if cooked {
                r.cooked_frames += 1;
            }
            r.port = p.port;
            r.last_vlan = vlan;
        }
        let key = FdbKey::new(vlan, src);
        let aging = self.aging_ns;
        if let Some(i) = self.find(key, self.rows[ri].fdb_hint) {
            self.rows[ri].fdb_hint = i;
            let e = &mut self.slab[i as usize].e;
            if !aged(aging, e.last_ts, now) {
                // Live: refresh it (one lookup), then record a move between ports.
                let from = e.port;
                e.port = p.port;
                e.last_ts = e.last_ts.max(p.ts_ns);
                e.last_frame = p.frame;
                if from != p.port {
                    self.record_move(ri, p, "port", from, vlan, vlan);
                    self.port_stat(p.port).learned += 1;
                }
                return;
            }
            self.expire(i);
        }
        // Not in the table on this VLAN. A live entry on the VLAN it last used means the
        // MAC now also (or instead) appears on this VLAN: a move between VLANs.
        if had_frames && prev_vlan != vlan {
            let old = self.find(FdbKey::new(prev_vlan, src), u32::MAX);
            if let Some(old) = old.and_then(|i| self.slab.get(i as usize)).map(|s| s.e) {
                if !self.expired(old.last_ts, now) {
                    let kind = if old.port == p.port {
                        "vlan"
                    } else {
                        "port+vlan"
                    };
                    self.record_move(ri, p, kind, old.port, prev_vlan, vlan);
                }
            }
        }
        // Expired entries were swept before this packet when a sweep was due; sweeping
        // again per refused learning would make a full table cost O(table) per frame.
        // Slots are u32: a table size beyond that is held to it.
        if self.fdb.len() >= self.table_size.min(u32::MAX as usize) {
            self.not_learned.table_full += 1;
            return;
        }
        // ri < rows.len() <= u32::MAX (checked when the row was made).
        let row = ri as u32;
        let i = self.store(
            key,
            Fdb {
                port: p.port,
                last_ts: p.ts_ns,
                last_frame: p.frame,
                row,
            },
        );
        self.rows[ri].fdb_hint = i;
        if self.next_sweep == i64::MAX && self.aging_ns > 0 {
            self.next_sweep = p.ts_ns.saturating_add(self.aging_ns);
        }
        self.totals.learned += 1;
        self.port_stat(p.port).learned += 1;
        let r = &mut self.rows[ri];
        r.learned_frame.get_or_insert(p.frame);
        r.learned_at.get_or_insert((p.port, vlan));
        r.learned_count += 1;
        if let Some(a) = r
            .aged
            .iter_mut()
            .rev()
            .find(|a| a.vlan == vlan && a.relearned_frame.is_none())
        {
            a.relearned_frame = Some(p.frame);
        }
    }

    /// The counts of `port`, created on its first frame.
    fn port_stat(&mut self, port: u32) -> &mut PortStat {
        let k = match self.last_port {
            Some((p, k)) if p == port => k,
            _ => {
                let n = self.ports.len();
                let k = *self.port_of.entry(port).or_insert(n);
                if k == n {
                    self.ports.push((port, PortStat::default()));
                }
                self.last_port = Some((port, k));
                k
            }
        };
        &mut self.ports[k].1
    }

    fn record_move(
        &mut self,
        ri: usize,
        p: &Frame,
        kind: &str,
        from_port: u32,
        from_vlan: Vlan,
        to_vlan: Vlan,
    ) {
        self.totals.moves += 1;
        let r = &mut self.rows[ri];
        r.moves_total += 1;
        if r.moves.len() < MAX_MOVES {
            r.moves.push(MacMove {
                frame: p.frame,
                ts: ts_secs(p.ts_ns),
                kind: kind.into(),
                from_port,
                to_port: p.port,
                from_vlan,
                to_vlan,
            });
        }
    }

    /// Step 2: flood or forward towards `dst`.
    fn forward(&mut self, dst: Mac, vlan: Vlan, p: &Frame, now: i64) {
        let bytes = u64::from(p.wire_len);
        let row = self.row_index(dst);
        match row {
            Some(i) => {
                let r = &mut self.rows[i];
                r.rx_frames += 1;
                r.rx_bytes += bytes;
            }
            None => {
                let cap = self.max_macs;
                let n = self.dsts.len();
                match self.dsts.get_mut(&dst) {
                    Some(d) => {
                        d.frames += 1;
                        d.bytes += bytes;
                    }
                    None if n < cap => {
                        self.dsts.insert(
                            dst,
                            DstStat {
                                first_frame: p.frame,
                                frames: 1,
                                bytes,
                                floods: 0,
                            },
                        );
                    }
                    None => self.not_learned.destinations_untracked += 1,
                }
            }
        }
        if dst.is_broadcast() {
            self.totals.broadcast += 1;
            return;
        }
        if dst.is_group() {
            self.totals.multicast_flooded += 1;
            return;
        }
        let key = FdbKey::new(vlan, dst);
        let hint = row.map_or(u32::MAX, |i| self.rows[i].fdb_hint);
        let found = self.find(key, hint);
        let known = match found.map(|i| (i, self.slab[i as usize].e)) {
            Some((i, e)) if !self.expired(e.last_ts, now) => {
                if let Some(r) = row {
                    self.rows[r].fdb_hint = i;
                }
                Some(e)
            }
            Some((i, _)) => {
                self.expire(i);
                None
            }
            None => None,
        };
        match known {
            Some(e) => {
                self.totals.unicast_forwarded += 1;
                if e.port == p.port {
                    self.totals.forwarded_same_port += 1;
                }
                if let Some(i) = row {
                    self.rows[i].first_forwarded_frame.get_or_insert(p.frame);
                }
            }
            None => {
                self.totals.unknown_unicast_flooded += 1;
                match row {
                    Some(i) => self.rows[i].unknown_unicast_floods += 1,
                    None => {
                        if let Some(d) = self.dsts.get_mut(&dst) {
                            d.floods += 1;
                        }
                    }
                }
            }
        }
    }

    fn entry(&self, r: &Row, in_table: bool) -> MacEntry {
        MacEntry {
            mac: r.mac.to_string(),
            vendor: oui::vendor(r.mac),
            locally_administered: r.mac.is_local(),
            group: r.mac.is_group(),
            port: r.port,
            vlans: r.vlans.clone(),
            untagged: r.untagged,
            ips: r.ips.iter().map(|i| i.to_string()).collect(),
            ips_truncated: r.ips_truncated,
            ipv6: r.ipv6.iter().map(|i| i.to_string()).collect(),
            ipv6_truncated: r.ipv6_truncated,
            learned_frame: r.learned_frame,
            learned_port: r.learned_at.map(|(p, _)| p),
            learned_vlan: r.learned_at.and_then(|(_, v)| v),
            learned_count: r.learned_count,
            first_frame: r.first_frame,
            last_frame: r.last_frame,
            first_ts: ts_secs(r.first_ts),
            last_ts: ts_secs(r.last_ts),
            frames: r.frames,
            bytes: r.bytes,
            rx_frames: r.rx_frames,
            rx_bytes: r.rx_bytes,
            unknown_unicast_floods: r.unknown_unicast_floods,
            first_forwarded_frame: r.first_forwarded_frame,
            cooked_frames: r.cooked_frames,
            moves: r.moves.clone(),
            moves_total: r.moves_total,
            aged: r
                .aged
                .iter()
                .map(|a| MacAged {
                    vlan: a.vlan,
                    port: a.port,
                    last_frame: a.last_frame,
                    expired_ts: ts_secs(a.expired_ns),
                    relearned_frame: a.relearned_frame,
                })
                .collect(),
            aged_total: r.aged_total,
            in_table,
        }
    }
}

impl Analyzer for MacTableAnalyzer {
    fn on_packet(&mut self, p: &Packet<'_>, _ctx: &mut Ctx) {
        self.on_frame(&Frame::of(p));
    }

    fn finish(&mut self, report: &mut Report) {
        self.finish_section(report);
    }
}

impl MacTableAnalyzer {
    /// Replays one frame through the switch ([`Analyzer::on_packet`] of `Frame::of(p)`).
    pub fn on_frame(&mut self, p: &Frame) {
        let now = self.now.map_or(p.ts_ns, |n| n.max(p.ts_ns));
        self.now = Some(now);
        if now > self.next_sweep {
            self.sweep(now);
        }
        match p.link {
            FrameLink::Ethernet { src, dst } => {
                let vlan = p.vlan;
                self.totals.frames += 1;
                self.port_stat(p.port).frames += 1;
                // The source is learned before the destination is looked up, so a frame
                // to itself is forwarded, as on a switch.
                self.learn(src, vlan, p, now, false);
                self.forward(dst, vlan, p, now);
            }
            FrameLink::Cooked { src } => {
                self.not_learned.cooked_frames += 1;
                match src {
                    Some(m) if !m.is_zero() => self.learn(m, None, p, now, true),
                    _ => self.not_learned.cooked_without_source_mac += 1,
                }
            }
            FrameLink::None => self.not_learned.no_link_addresses += 1,
        }
    }

    fn finish_section(&mut self, report: &mut Report) {
        if let Some(now) = self.now {
            self.sweep(now);
        }
        let mut live = vec![false; self.rows.len()];
        for s in self.slab.iter().filter(|s| s.key != FdbKey::FREE) {
            if let Some(l) = live.get_mut(s.e.row as usize) {
                *l = true;
            }
        }
        self.totals.in_table = self.fdb.len() as u64;
        let entries: Vec<MacEntry> = self
            .rows
            .iter()
            .zip(live.iter())
            .map(|(r, &l)| self.entry(r, l))
            .collect();
        let mut destinations: Vec<MacDestination> = self
            .dsts
            .iter()
            .map(|(mac, d)| MacDestination {
                mac: mac.to_string(),
                vendor: if mac.is_group() {
                    None
                } else {
                    oui::vendor(*mac)
                },
                kind: if mac.is_broadcast() {
                    "broadcast"
                } else if mac.is_group() {
                    "multicast"
                } else {
                    "unicast"
                }
                .into(),
                first_frame: d.first_frame,
                frames: d.frames,
                bytes: d.bytes,
            })
            .collect();
        destinations.sort_by(|a, b| a.first_frame.cmp(&b.first_frame).then(a.mac.cmp(&b.mac)));
        let mut ports: Vec<MacPort> = report
            .source
            .interfaces
            .iter()
            .map(|i| {
                let s = self
                    .port_of
                    .get(&i.port)
                    .and_then(|&k| self.ports.get(k))
                    .map(|&(_, s)| s)
                    .unwrap_or_default();
                MacPort {
                    port: i.port,
                    name: i.name.clone(),
                    frames: s.frames,
                    learned: s.learned,
                }
            })
            .collect();
        for &(port, s) in &self.ports {
            if !ports.iter().any(|x| x.port == port) {
                ports.push(MacPort {
                    port,
                    name: None,
                    frames: s.frames,
                    learned: s.learned,
                });
            }
        }
        ports.sort_by_key(|x| x.port);
        let n = &self.not_learned;
        if n.macs_untracked > 0 || n.destinations_untracked > 0 {
            report.warnings.push(Warning {
                kind: "mac-rows-cap".into(),
                message: format!(
                    "more than {} MAC addresses were seen (--max-macs): {} frame(s) from untracked sources and {} to untracked destinations were counted but not listed",
                    self.max_macs, n.macs_untracked, n.destinations_untracked
                ),
                path: None,
                offset: None,
                frame: None,
            });
        }
        report.mac_table = Some(MacTable {
            aging_s: self.aging_s,
            table_size: self.table_size as u64,
            entries,
            destinations,
            ports,
            totals: self.totals.clone(),
            not_learned: self.not_learned.clone(),
        });
    }
}
