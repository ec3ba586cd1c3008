//! The ARP table (IPv4 → MAC) and ARP exchanges, from the ARP packets of the capture.
//!
//! For every Ethernet/IPv4 ARP packet (RFC 826), in frame order:
//!
//! - its sender (IP, MAC) is a *claim*: it goes into the table as a (VLAN, IP, MAC) binding,
//!   requests included, except when the sender IP is 0.0.0.0 (an RFC 5227 probe claims
//!   nothing). A claim by another MAC than the last claimant of that IP on that VLAN is a
//!   *conflict* (two hosts with one address, or the MAC for an IP changing: possibly ARP
//!   spoofing), listed with the frames where the claimant changed;
//! - a request with sender IP = target IP is gratuitous (RFC 5227 calls it an announcement);
//!   a request with sender IP 0.0.0.0 is a probe; any other request opens an exchange that
//!   waits for a reply;
//! - a reply with sender IP = target IP is gratuitous; a reply whose (target IP, sender IP)
//!   matches a waiting request's (sender IP, target IP) on the same VLAN, within the reply
//!   timeout and not more than a second before it (time can go back where captures are
//!   merged), answers it (and every earlier retransmission of it still waiting); a reply to
//!   0.0.0.0 answers a probe (the address is in use); any other reply is unsolicited.
//!
//! The VLAN is the outer tag (untagged = none): the same IP on two VLANs is two hosts, not a
//! conflict. Memory is bounded: bindings, waiting requests and every list are capped by
//! [`L2Options`]; what a cap left out is counted in `limits`.
//!
//! Events (only when `Ctx::want_events`): an `arp` event per exchange, when a reply
//! answers it, or when its reply timeout has passed unanswered (seen at the next packet
//! after the timeout), or at the end of input; exchanges beyond the list cap have none.

use std::net::Ipv4Addr;

use rustc_hash::FxHashMap;

use super::{oui, Analyzer, Ctx};
use crate::config::L2Options;
use crate::dissect::{Arp, Link, Mac, Packet};
use crate::report::l2::{
    ArpBinding, ArpConflict, ArpExchange, ArpGratuitous, ArpLimits, ArpProbe, ArpSection,
    ArpTotals, ArpUnsolicited,
};
use crate::report::ndjson::Event;
use crate::report::{ts_secs, Report, Warning};

type Vlan = Option<u16>;

/// Most MACs and frames kept per conflict.
const MAX_CONFLICT_ITEMS: usize = 64;
/// A reply stamped more than this before a waiting request cannot be its answer: time went
/// back (merged captures, or one file given twice) and the request is from later. A
/// smaller step back is clock skew between interfaces and still answers.
const REPLY_BEFORE_REQUEST_NS: i64 = 1_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Binding {
    first_frame: u64,
    last_frame: u64,
    first_ts: i64,
    last_ts: i64,
    packets: u64,
}

#[derive(Debug, Clone, Copy)]
struct Claimant {
    mac: Mac,
    last_frame: u64,
}

#[derive(Debug)]
struct Exchange {
    entry: ArpExchange,
    request_ts: i64,
}

#[derive(Debug)]
struct Probe {
    entry: ArpProbe,
    ts: i64,
}

/// The `arp` analyzer.
pub struct ArpAnalyzer {
    timeout_ns: i64,
    opts: L2Options,
    bindings: FxHashMap<(Vlan, Ipv4Addr, Mac), Binding>,
    claimants: FxHashMap<(Vlan, Ipv4Addr), Claimant>,
    conflicts: Vec<ArpConflict>,
    conflict_of: FxHashMap<(Vlan, Ipv4Addr), usize>,
    exchanges: Vec<Exchange>,
    /// Waiting requests by (VLAN, requester IP, asked IP): indexes into `exchanges`.
    pending: FxHashMap<(Vlan, Ipv4Addr, Ipv4Addr), Vec<usize>>,
    pending_len: usize,
    next_pending_sweep: i64,
    probes: Vec<Probe>,
    /// Waiting probes by (VLAN, probed IP): indexes into `probes`.
    pending_probes: FxHashMap<(Vlan, Ipv4Addr), Vec<usize>>,
    gratuitous: Vec<ArpGratuitous>,
    unsolicited: Vec<ArpUnsolicited>,
    totals: ArpTotals,
    limits: ArpLimits,
    /// Build events (from `Ctx::want_events`).
    emit: bool,
    events: Vec<Event>,
    /// Exchanges before this index have had their event (answered ones get it at the
    /// reply; the cursor stops at the first unanswered one still within its timeout).
    event_cursor: usize,
}

impl ArpAnalyzer {
    pub fn new(opts: &L2Options) -> Self {
        let timeout_ns = if opts.arp_reply_timeout_s.is_finite() && opts.arp_reply_timeout_s > 0.0 {
            // Saturating float → int cast: a huge timeout means "no timeout".
            (opts.arp_reply_timeout_s * 1e9) as i64
        } else {
            0
        };
        ArpAnalyzer {
            timeout_ns,
            opts: opts.clone(),
            bindings: FxHashMap::default(),
            claimants: FxHashMap::default(),
            conflicts: Vec::new(),
            conflict_of: FxHashMap::default(),
            exchanges: Vec::new(),
            pending: FxHashMap::default(),
            pending_len: 0,
            next_pending_sweep: i64::MIN,
            probes: Vec::new(),
            pending_probes: FxHashMap::default(),
            gratuitous: Vec::new(),
            unsolicited: Vec::new(),
            totals: ArpTotals::default(),
            limits: ArpLimits {
                reply_timeout_s: opts.arp_reply_timeout_s,
                max_bindings: opts.arp_max_bindings as u64,
                max_pending: opts.arp_max_pending as u64,
                max_list: opts.arp_max_list as u64,
                ..ArpLimits::default()
            },
            emit: false,
            events: Vec::new(),
            event_cursor: 0,
        }
    }

    /// Emits the unanswered exchanges whose timeout passed by `now` (all at the end of
    /// input, `now` = None), at most `max`; returns true if the cursor is not at the end.
    fn unanswered_events(&mut self, now: Option<i64>, max: usize) -> bool {
        let mut n = 0;
        while let Some(x) = self.exchanges.get(self.event_cursor) {
            if x.entry.reply_frame.is_none() {
                if now.is_some_and(|t| t.saturating_sub(x.request_ts) <= self.timeout_ns) {
                    return true;
                }
                if n == max {
                    return true;
                }
                n += 1;
                self.events.push(Event::Arp(Box::new(x.entry.clone())));
            }
            self.event_cursor += 1;
        }
        false
    }

    fn list_has_room(&mut self, len: usize) -> bool {
        if len < self.opts.arp_max_list {
            true
        } else {
            self.limits.list_dropped += 1;
            false
        }
    }

    /// Records the sender's claim on its IP: binding, and conflict if the MAC changed.
    fn claim(&mut self, vlan: Vlan, ip: Ipv4Addr, mac: Mac, p: &Packet<'_>) {
        let room = self.bindings.len() < self.opts.arp_max_bindings;
        match self.bindings.get_mut(&(vlan, ip, mac)) {
            Some(b) => {
                b.last_frame = p.frame;
                b.last_ts = b.last_ts.max(p.ts_ns);
                b.packets += 1;
            }
            None if room => {
                self.bindings.insert(
                    (vlan, ip, mac),
                    Binding {
                        first_frame: p.frame,
                        last_frame: p.frame,
                        first_ts: p.ts_ns,
                        last_ts: p.ts_ns,
                        packets: 1,
                    },
                );
            }
            None => self.limits.bindings_dropped += 1,
        }
        let key = (vlan, ip);
        let prev = match self.claimants.get_mut(&key) {
            Some(c) if c.mac == mac => {
                c.last_frame = p.frame;
                return;
            }
            Some(c) => {
                let prev = *c;
                *c = Claimant {
                    mac,
                    last_frame: p.frame,
                };
                prev
            }
            None => {
                // Same cap as the bindings: one claimant per bound IP at most.
                if self.claimants.len() < self.opts.arp_max_bindings {
                    self.claimants.insert(
                        key,
                        Claimant {
                            mac,
                            last_frame: p.frame,
                        },
                    );
                }
                return;
            }
        };
        let idx = match self.conflict_of.get(&key) {
            Some(&i) => i,
            None => {
                if !self.list_has_room(self.conflicts.len()) {
                    return;
                }
                self.conflicts.push(ArpConflict {
                    ip: ip.to_string(),
                    vlan,
                    macs: vec![prev.mac.to_string()],
                    frames: vec![prev.last_frame],
                    changes: 0,
                });
                self.conflict_of.insert(key, self.conflicts.len() - 1);
                self.conflicts.len() - 1
            }
        };
        let c = &mut self.conflicts[idx];
        c.changes += 1;
        let m = mac.to_string();
        if !c.macs.contains(&m) && c.macs.len() < MAX_CONFLICT_ITEMS {
            c.macs.push(m);
        }
        if c.frames.len() < MAX_CONFLICT_ITEMS {
            c.frames.push(p.frame);
        }
    }

    /// Drops waiting requests older than the reply timeout (they stay unanswered).
    fn sweep_pending(&mut self, now: i64) {
        let (ex, timeout) = (&self.exchanges, self.timeout_ns);
        let mut left = 0;
        self.pending.retain(|_, v| {
            v.retain(|&i| {
                ex.get(i)
                    .is_some_and(|e| now.saturating_sub(e.request_ts) <= timeout)
            });
            left += v.len();
            !v.is_empty()
        });
        self.pending_len = left;
    }

    fn request(&mut self, a: &Arp, vlan: Vlan, p: &Packet<'_>) {
        let key = (vlan, a.sender_ip, a.target_ip);
        if !self.list_has_room(self.exchanges.len()) {
            return;
        }
        let retransmission = self.pending.get(&key).is_some_and(|v| !v.is_empty());
        let unicast = p.eth().is_some_and(|(_, dst)| !dst.is_group());
        self.exchanges.push(Exchange {
            entry: ArpExchange {
                request_frame: p.frame,
                reply_frame: None,
                sender_ip: a.sender_ip.to_string(),
                sender_mac: a.sender_mac.to_string(),
                target_ip: a.target_ip.to_string(),
                answer_mac: None,
                latency_ms: None,
                request_ts: ts_secs(p.ts_ns),
                vlan,
                unicast,
                retransmission,
            },
            request_ts: p.ts_ns,
        });
        let idx = self.exchanges.len() - 1;
        if self.pending_len >= self.opts.arp_max_pending {
            // At most one sweep per eighth of the timeout (1 s at least): a cap full of live
            // requests must not cost a scan of every waiting request per new one.
            if p.ts_ns > self.next_pending_sweep {
                self.sweep_pending(p.ts_ns);
                self.next_pending_sweep = p
                    .ts_ns
                    .saturating_add((self.timeout_ns / 8).max(1_000_000_000));
            }
            if self.pending_len >= self.opts.arp_max_pending {
                self.limits.pending_dropped += 1;
                return;
            }
        }
        self.pending.entry(key).or_default().push(idx);
        self.pending_len += 1;
    }

    /// A non-gratuitous reply: answers waiting requests or probes, else it is unsolicited.
    fn reply(&mut self, a: &Arp, vlan: Vlan, p: &Packet<'_>) {
        let key = (vlan, a.target_ip, a.sender_ip);
        let mut answered = false;
        if let Some(waiting) = self.pending.remove(&key) {
            self.pending_len = self.pending_len.saturating_sub(waiting.len());
            for i in waiting {
                let Some(x) = self.exchanges.get_mut(i) else {
                    continue;
                };
                let dt = p.ts_ns.saturating_sub(x.request_ts);
                if dt > self.timeout_ns || dt < -REPLY_BEFORE_REQUEST_NS {
                    continue;
                }
                x.entry.reply_frame = Some(p.frame);
                x.entry.answer_mac = Some(a.sender_mac.to_string());
                x.entry.latency_ms = Some(dt as f64 / 1e6);
                answered = true;
                if self.emit {
                    self.events.push(Event::Arp(Box::new(x.entry.clone())));
                }
            }
        }
        if !answered && a.target_ip.is_unspecified() {
            if let Some(waiting) = self.pending_probes.remove(&(vlan, a.sender_ip)) {
                for i in waiting {
                    let Some(x) = self.probes.get_mut(i) else {
                        continue;
                    };
                    if p.ts_ns.saturating_sub(x.ts) > self.timeout_ns {
                        continue;
                    }
                    x.entry.reply_frame = Some(p.frame);
                    x.entry.defender_mac = Some(a.sender_mac.to_string());
                    answered = true;
                }
            }
        }
        if !answered {
            self.totals.unsolicited_replies += 1;
            if self.list_has_room(self.unsolicited.len()) {
                self.unsolicited.push(ArpUnsolicited {
                    frame: p.frame,
                    sender_ip: a.sender_ip.to_string(),
                    sender_mac: a.sender_mac.to_string(),
                    target_ip: a.target_ip.to_string(),
                    target_mac: a.target_mac.to_string(),
                    vlan,
                });
            }
        }
    }

    fn probe(&mut self, a: &Arp, vlan: Vlan, p: &Packet<'_>) {
        self.totals.probes += 1;
        if !self.list_has_room(self.probes.len()) {
            return;
        }
        self.probes.push(Probe {
            entry: ArpProbe {
                frame: p.frame,
                ts: ts_secs(p.ts_ns),
                ip: a.target_ip.to_string(),
                mac: a.sender_mac.to_string(),
                vlan,
                reply_frame: None,
                defender_mac: None,
            },
            ts: p.ts_ns,
        });
        let idx = self.probes.len() - 1;
        // Probes come in threes (RFC 5227: PROBE_NUM); the waiting list per address is
        // kept short so a prober that never stops cannot grow it.
        let key = (vlan, a.target_ip);
        if !self.pending_probes.contains_key(&key)
            && self.pending_probes.len() >= self.opts.arp_max_pending
        {
            self.limits.pending_dropped += 1;
            return;
        }
        let w = self.pending_probes.entry(key).or_default();
        if w.len() >= 16 {
            w.remove(0);
        }
        w.push(idx);
    }

    fn gratuitous(&mut self, a: &Arp, vlan: Vlan, p: &Packet<'_>) {
        self.totals.gratuitous += 1;
        let kind = if a.op == Arp::REQUEST {
            self.totals.announcements += 1;
            "announcement"
        } else {
            "reply"
        };
        if self.list_has_room(self.gratuitous.len()) {
            self.gratuitous.push(ArpGratuitous {
                frame: p.frame,
                ts: ts_secs(p.ts_ns),
                ip: a.sender_ip.to_string(),
                mac: a.sender_mac.to_string(),
                vlan,
                kind: kind.into(),
            });
        }
    }
}

impl Analyzer for ArpAnalyzer {
    fn on_packet(&mut self, p: &Packet<'_>, ctx: &mut Ctx) {
        self.emit = ctx.want_events;
        if self.emit && self.event_cursor < self.exchanges.len() {
            self.unanswered_events(Some(p.ts_ns), usize::MAX);
        }
        self.handle(p);
        if !self.events.is_empty() {
            ctx.events.append(&mut self.events);
        }
    }

    fn end_events(&mut self, ctx: &mut Ctx) -> bool {
        let more = self.unanswered_events(None, 1024);
        ctx.events.append(&mut self.events);
        more
    }

    fn finish(&mut self, report: &mut Report) {
        self.finish_section(report);
    }
}

impl ArpAnalyzer {
    fn handle(&mut self, p: &Packet<'_>) {
        let Some(a) = p.arp() else {
            return;
        };
        let a = *a;
        self.totals.packets += 1;
        if !a.is_eth_ipv4 || a.proto_type != 0x0800 {
            self.totals.not_ethernet_ipv4 += 1;
            return;
        }
        let link_src = match p.link {
            Link::Ethernet { src, .. } => Some(src),
            Link::Sll { src, .. } => src,
            _ => None,
        };
        if link_src.is_some_and(|s| s != a.sender_mac) {
            self.totals.sender_mac_mismatch += 1;
        }
        if a.op != Arp::REQUEST && a.op != Arp::REPLY {
            self.totals.other_ops += 1;
            return;
        }
        let vlan = p.vlans.outer();
        if !a.sender_ip.is_unspecified() {
            self.claim(vlan, a.sender_ip, a.sender_mac, p);
        }
        let gratuitous = a.sender_ip == a.target_ip && !a.sender_ip.is_unspecified();
        if a.op == Arp::REQUEST {
            self.totals.requests += 1;
            if gratuitous {
                self.gratuitous(&a, vlan, p);
            } else if a.sender_ip.is_unspecified() {
                self.probe(&a, vlan, p);
            } else {
                self.request(&a, vlan, p);
            }
        } else {
            self.totals.replies += 1;
            if gratuitous {
                self.gratuitous(&a, vlan, p);
            } else {
                self.reply(&a, vlan, p);
            }
        }
    }

    fn finish_section(&mut self, report: &mut Report) {
        let mut table: Vec<ArpBinding> = self
            .bindings
            .iter()
            .map(|(&(vlan, ip, mac), b)| ArpBinding {
                ip: ip.to_string(),
                mac: mac.to_string(),
                vendor: oui::vendor(mac),
                vlan,
                first_frame: b.first_frame,
                last_frame: b.last_frame,
                first_ts: ts_secs(b.first_ts),
                last_ts: ts_secs(b.last_ts),
                packets: b.packets,
            })
            .collect();
        table.sort_by(|a, b| a.first_frame.cmp(&b.first_frame).then(a.mac.cmp(&b.mac)));
        let exchanges: Vec<ArpExchange> = self.exchanges.drain(..).map(|x| x.entry).collect();
        let unanswered: Vec<u64> = exchanges
            .iter()
            .filter(|x| x.reply_frame.is_none())
            .map(|x| x.request_frame)
            .collect();
        let mut totals = self.totals.clone();
        totals.unanswered = unanswered.len() as u64;
        totals.answered = exchanges.len() as u64 - totals.unanswered;
        totals.conflicts = self.conflicts.len() as u64;
        let l = &self.limits;
        let mut hit = Vec::new();
        if l.bindings_dropped > 0 {
            hit.push(format!(
                "{} binding(s) not recorded because the table holds {} (--arp-table-size)",
                l.bindings_dropped, l.max_bindings
            ));
        }
        if l.pending_dropped > 0 {
            hit.push(format!(
                "{} request(s) not kept waiting for a reply because {} already were",
                l.pending_dropped, l.max_pending
            ));
        }
        if l.list_dropped > 0 {
            hit.push(format!(
                "{} entr(ies) left out of lists capped at {} (--arp-max-list; the totals count them)",
                l.list_dropped, l.max_list
            ));
        }
        if !hit.is_empty() {
            report.warnings.push(Warning {
                kind: "arp-caps".into(),
                message: format!("ARP caps reached: {}", hit.join("; ")),
                path: None,
                offset: None,
                frame: None,
            });
        }
        report.arp = Some(ArpSection {
            table,
            exchanges,
            unanswered,
            gratuitous: std::mem::take(&mut self.gratuitous),
            probes: self.probes.drain(..).map(|x| x.entry).collect(),
            conflicts: std::mem::take(&mut self.conflicts),
            unsolicited_replies: std::mem::take(&mut self.unsolicited),
            totals,
            limits: self.limits.clone(),
        });
    }
}
