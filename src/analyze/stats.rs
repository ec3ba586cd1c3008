//! Whole-input totals: packets, bytes, time span, frames per protocol and link type,
//! dissect issues and checksum verdicts (the `stats` section and the default summary).
//!
//! Counting is into fixed arrays indexed by protocol, so the per-packet cost is a few adds;
//! names are attached only when the report is written.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Analyzer;
use crate::capture::linktype;
use crate::dissect::{Issue, Link, Net, Packet, Transport};
use crate::report::{ts_secs, Report};

#[derive(Clone, Copy)]
enum Proto {
    Ethernet,
    Vlan,
    Sll,
    Loopback,
    RawIp,
    OtherLink,
    Arp,
    Ipv4,
    Ipv6,
    OtherNet,
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
    Ipv4Fragment,
    Ipv6Fragment,
    OtherTransport,
}

const PROTO_NAMES: [&str; 17] = [
    "ethernet",
    "vlan",
    "sll",
    "loopback",
    "raw_ip",
    "other_link",
    "arp",
    "ipv4",
    "ipv6",
    "other_network",
    "tcp",
    "udp",
    "icmp",
    "icmpv6",
    "ip_fragment",
    "ipv6_fragment",
    "other_transport",
];

/// The `stats` analyzer.
#[derive(Default)]
pub struct StatsAnalyzer {
    packets: u64,
    bytes: u64,
    captured: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
    counts: [u64; 17],
    link_types: FxHashMap<u32, u64>,
    /// Packets of the current run of one link type, not yet added to `link_types`: a
    /// capture is nearly always one link type, so the map is touched once per run
    /// instead of once per packet.
    link_run: Option<(u32, u64)>,
    issues: FxHashMap<(crate::dissect::Layer, &'static str), u64>,
    snaplen_cut: u64,
    ipv4_bad: u64,
    tcp_bad: u64,
    udp_bad: u64,
    /// First frame of each issue kind, for the summary table.
    first_issue_frame: FxHashMap<(crate::dissect::Layer, &'static str), u64>,
}

impl StatsAnalyzer {
    fn count(&mut self, p: Proto) {
        self.counts[p as usize] += 1;
    }

    /// Adds the current link-type run to `link_types`.
    fn flush_link_run(&mut self) {
        if let Some((t, n)) = self.link_run.take() {
            *self.link_types.entry(t).or_insert(0) += n;
        }
    }

    fn note_issue(&mut self, i: Issue, frame: u64) {
        let key = (i.layer, i.reason);
        *self.issues.entry(key).or_insert(0) += 1;
        self.first_issue_frame.entry(key).or_insert(frame);
    }
}

impl Analyzer for StatsAnalyzer {
    fn on_packet(&mut self, p: &Packet<'_>, _ctx: &mut super::Ctx) {
        self.packets += 1;
        self.bytes += u64::from(p.wire_len);
        self.captured += u64::from(p.cap_len);
        if p.cap_len < p.wire_len {
            self.snaplen_cut += 1;
        }
        // Capture order is not always time order (merged files, clock steps): keep the
        // extremes, not the first and last seen.
        self.first_ts = Some(self.first_ts.map_or(p.ts_ns, |t| t.min(p.ts_ns)));
        self.last_ts = Some(self.last_ts.map_or(p.ts_ns, |t| t.max(p.ts_ns)));
        match &mut self.link_run {
            Some((t, n)) if *t == p.link_type => *n += 1,
            _ => {
                self.flush_link_run();
                self.link_run = Some((p.link_type, 1));
            }
        }
        match p.link {
            Link::Ethernet { .. } => {
                self.count(Proto::Ethernet);
                if !p.vlans.is_empty() {
                    self.count(Proto::Vlan);
                }
            }
            Link::Sll { .. } => self.count(Proto::Sll),
            Link::Null { .. } => self.count(Proto::Loopback),
            Link::Raw => self.count(Proto::RawIp),
            Link::Unsupported { .. } => self.count(Proto::OtherLink),
        }
        match p.net {
            Net::None => {}
            Net::Arp(_) => self.count(Proto::Arp),
            Net::Ipv4(h) => {
                self.count(Proto::Ipv4);
                if !h.checksum_ok {
                    self.ipv4_bad += 1;
                }
            }
            Net::Ipv6(_) => self.count(Proto::Ipv6),
            Net::Other { .. } => self.count(Proto::OtherNet),
        }
        match p.transport {
            Transport::None => {}
            Transport::Tcp(t) => {
                self.count(Proto::Tcp);
                if t.checksum_ok == Some(false) {
                    self.tcp_bad += 1;
                }
            }
            Transport::Udp(u) => {
                self.count(Proto::Udp);
                if u.checksum_ok == Some(false) {
                    self.udp_bad += 1;
                }
            }
            Transport::Icmp(i) => self.count(if i.v6 { Proto::Icmpv6 } else { Proto::Icmp }),
            Transport::Fragment => self.count(if matches!(p.net, Net::Ipv6(_)) {
                Proto::Ipv6Fragment
            } else {
                Proto::Ipv4Fragment
            }),
            Transport::Other { .. } => self.count(Proto::OtherTransport),
        }
        if let Some(i) = p.issue {
            self.note_issue(i, p.frame);
        }
    }

    fn finish(&mut self, report: &mut Report) {
        self.flush_link_run();
        let s = &mut report.stats;
        s.packets = self.packets;
        s.bytes = self.bytes;
        s.captured_bytes = self.captured;
        s.first_ts_ns = self.first_ts;
        s.last_ts_ns = self.last_ts;
        s.first_ts = self.first_ts.map(ts_secs);
        s.last_ts = self.last_ts.map(ts_secs);
        s.duration_s = match (self.first_ts, self.last_ts) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e9,
            _ => 0.0,
        };
        s.by_protocol = PROTO_NAMES
            .iter()
            .zip(self.counts.iter())
            .filter(|(_, &n)| n > 0)
            .map(|(k, &n)| (k.to_string(), n))
            .collect();
        let mut lt = BTreeMap::new();
        for (&k, &n) in &self.link_types {
            *lt.entry(linktype::name(k)).or_insert(0) += n;
        }
        s.by_link_type = lt;
        s.dissect_issues = self
            .issues
            .iter()
            .map(|(&(layer, reason), &n)| (format!("{}: {}", layer.name(), reason), n))
            .collect();
        s.snaplen_cut = self.snaplen_cut;
        s.checksums.ipv4_bad = self.ipv4_bad;
        s.checksums.tcp_bad = self.tcp_bad;
        s.checksums.udp_bad = self.udp_bad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::{Link, Net, Transport, Vlans};

    fn raw(frame: u64, link_type: u32) -> Packet<'static> {
        Packet {
            frame,
            ts_ns: frame as i64,
            wire_len: 60,
            cap_len: 60,
            link_type,
            port: 0,
            file_index: 0,
            link: Link::Raw,
            vlans: Vlans::default(),
            net: Net::None,
            transport: Transport::None,
            reassembled_from: &[],
            issue: None,
        }
    }

    /// Link types counted per run still add up per type when runs alternate.
    #[test]
    fn link_types_are_counted_across_alternating_runs() {
        let mut a = StatsAnalyzer::default();
        let mut ctx = crate::analyze::Ctx::default();
        for (i, t) in [1u32, 1, 113, 1, 113, 113, 101].into_iter().enumerate() {
            a.on_packet(&raw(i as u64 + 1, t), &mut ctx);
        }
        let mut r = Report::default();
        a.finish(&mut r);
        let got: Vec<(String, u64)> = r.stats.by_link_type.into_iter().collect();
        let want = [(1u32, 3u64), (101, 1), (113, 3)].map(|(t, n)| (linktype::name(t), n));
        let mut want = want.to_vec();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(r.stats.packets, 7);
    }
}
