//! One MAC's report row as the learning switch builds it (frames sent and received, the
//! VLANs and IP addresses it used, its moves and aged-out entries), every list capped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{Frame, Vlan};
use crate::dissect::Mac;
use crate::report::l2::MacMove;

const MAX_IPS: usize = 16;
const MAX_VLANS: usize = 64;
const MAX_AGED: usize = 32;

/// A table entry of this MAC that aged out, and when it was learned again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Aged {
    pub(super) vlan: Vlan,
    pub(super) port: u32,
    pub(super) last_frame: u64,
    pub(super) expired_ns: i64,
    pub(super) relearned_frame: Option<u64>,
}

/// Everything known about one source MAC.
#[derive(Debug)]
pub(super) struct Row {
    pub(super) mac: Mac,
    pub(super) first_frame: u64,
    pub(super) first_ts: i64,
    pub(super) last_frame: u64,
    pub(super) last_ts: i64,
    pub(super) frames: u64,
    pub(super) bytes: u64,
    pub(super) rx_frames: u64,
    pub(super) rx_bytes: u64,
    pub(super) port: u32,
    pub(super) last_vlan: Vlan,
    pub(super) vlans: Vec<u16>,
    pub(super) untagged: bool,
    pub(super) ips: Vec<Ipv4Addr>,
    pub(super) ips_truncated: bool,
    pub(super) ipv6: Vec<Ipv6Addr>,
    pub(super) ipv6_truncated: bool,
    pub(super) learned_frame: Option<u64>,
    pub(super) learned_at: Option<(u32, Vlan)>,
    pub(super) learned_count: u64,
    pub(super) unknown_unicast_floods: u64,
    pub(super) first_forwarded_frame: Option<u64>,
    pub(super) cooked_frames: u64,
    pub(super) moves: Vec<MacMove>,
    pub(super) moves_total: u64,
    pub(super) aged: Vec<Aged>,
    pub(super) aged_total: u64,
    /// Slab slot of this MAC's table entry last used (a hint, checked against the slot's
    /// key before use; `u32::MAX`: none): a frame's source and destination are then
    /// found without hashing.
    pub(super) fdb_hint: u32,
}

impl Row {
    pub(super) fn new(mac: Mac, p: &Frame) -> Self {
        Row {
            mac,
            first_frame: p.frame,
            first_ts: p.ts_ns,
            last_frame: p.frame,
            last_ts: p.ts_ns,
            frames: 0,
            bytes: 0,
            rx_frames: 0,
            rx_bytes: 0,
            port: p.port,
            last_vlan: None,
            vlans: Vec::new(),
            untagged: false,
            ips: Vec::new(),
            ips_truncated: false,
            ipv6: Vec::new(),
            ipv6_truncated: false,
            learned_frame: None,
            learned_at: None,
            learned_count: 0,
            unknown_unicast_floods: 0,
            first_forwarded_frame: None,
            cooked_frames: 0,
            moves: Vec::new(),
            moves_total: 0,
            aged: Vec::new(),
            aged_total: 0,
            fdb_hint: u32::MAX,
        }
    }

    /// Counts a frame this MAC sent.
    pub(super) fn sent(&mut self, p: &Frame, vlan: Vlan) {
        self.frames += 1;
        self.bytes += u64::from(p.wire_len);
        self.last_frame = p.frame;
        self.last_ts = self.last_ts.max(p.ts_ns);
        match vlan {
            None => self.untagged = true,
            Some(v) => {
                if !self.vlans.contains(&v) && self.vlans.len() < MAX_VLANS {
                    self.vlans.push(v);
                }
            }
        }
        match p.sender {
            Some(IpAddr::V4(ip)) => add_capped(&mut self.ips, &mut self.ips_truncated, ip),
            Some(IpAddr::V6(ip)) => add_capped(&mut self.ipv6, &mut self.ipv6_truncated, ip),
            None => {}
        }
    }

    pub(super) fn record_aged(&mut self, a: Aged) {
        self.aged_total += 1;
        if self.aged.len() < MAX_AGED {
            self.aged.push(a);
        }
    }
}

/// Adds an address (never the unspecified one: it names no host) to a capped list.
fn add_capped<T: PartialEq + Copy + Unspecified>(list: &mut Vec<T>, cut: &mut bool, ip: T) {
    if ip.unspecified() || list.contains(&ip) {
        return;
    }
    if list.len() < MAX_IPS {
        list.push(ip);
    } else {
        *cut = true;
    }
}

trait Unspecified {
    fn unspecified(&self) -> bool;
}
impl Unspecified for Ipv4Addr {
    fn unspecified(&self) -> bool {
        self.is_unspecified()
    }
}
impl Unspecified for Ipv6Addr {
    fn unspecified(&self) -> bool {
        self.is_unspecified()
    }
}
