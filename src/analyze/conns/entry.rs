//! Building the report entry (`ConnEntry`) of a finished connection: roles applied to
//! the per-slot facts the sub-analyses gathered, the handshake outcome and checks, the
//! teardown kind and steps, relative sequence numbers, anomaly totals.
//!
//! Pure functions of a [`Conn`]; called once per connection, when it is finalized.

use std::net::{IpAddr, SocketAddr};

use super::handshake::StepRec;
use super::teardown::StepKind;
use super::{seq, Conn, Finalized, Proto, TcpConn, NS};
use crate::dissect::TcpOptions;
use crate::report::conns::{
    AnomaliesEntry, ConnEntry, HandshakeEntry, MismatchEntry, RttEntry, StepEntry, TcpStateEntry,
    TeardownEntry,
};
use crate::report::TcpOptionsEntry;

pub(super) fn endpoint(a: (IpAddr, u16)) -> String {
    crate::report::endpoint_string(&SocketAddr::new(a.0, a.1))
}

fn dir_name(slot: usize, orig: usize) -> &'static str {
    if slot == orig {
        "orig"
    } else {
        "resp"
    }
}

fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

fn options(o: &TcpOptions) -> TcpOptionsEntry {
    TcpOptionsEntry {
        mss: o.mss,
        window_scale: o.window_scale,
        sack_permitted: o.sack_permitted,
        sack_blocks: o.sack_blocks,
        tsval: o.timestamps.map(|x| x.0),
        tsecr: o.timestamps.map(|x| x.1),
    }
}

/// Per slot: the number that relative sequence numbers count from (the ISN, or one
/// before the first sequence number of a side whose SYN was not seen).
fn bases(t: &TcpConn) -> [Option<u32>; 2] {
    let mut b = [None; 2];
    for (s, slot) in b.iter_mut().enumerate() {
        let side = &t.hs.side[s];
        *slot = side
            .syn
            .map(|x| x.seq)
            .or(side.synack.map(|x| x.seq))
            .or(t.first_seq[s].map(|x| x.wrapping_sub(1)));
    }
    b
}

fn step(r: &StepRec, what: &str, orig: usize, first_ts: i64, base: &[Option<u32>; 2]) -> StepEntry {
    let s = usize::from(r.slot);
    let rel =
        |v: u32, b: Option<u32>| b.map_or(i64::from(v), |b| i64::from(v.wrapping_sub(b) as i32));
    StepEntry {
        frame: r.frame,
        dir: dir_name(s, orig).into(),
        t_ms: ms(r.ts - first_ts),
        flags: r.flags.names(),
        seq: r.seq,
        ack: r.ack,
        rel_seq: rel(r.seq, base[s]),
        rel_ack: if r.flags.ack() {
            rel(r.ack, base[s ^ 1])
        } else {
            0
        },
        len: r.len,
        what: what.into(),
        expected_ack: None,
        ack_ok: None,
    }
}

pub(super) fn handshake_entry(c: &Conn, t: &TcpConn, orig: usize) -> HandshakeEntry {
    let (o, r) = (&t.hs.side[orig], &t.hs.side[orig ^ 1]);
    let outcome = t.hs.outcome(orig);
    let base = bases(t);
    let orig_isn = o.syn.map(|x| x.seq).or(o.synack.map(|x| x.seq));
    let resp_isn = r.synack.map(|x| x.seq).or(r.syn.map(|x| x.seq));
    let rst_frame = match outcome {
        "refused" => r.rst.map(|x| x.frame),
        "no-answer" | "synack-no-ack" => match (o.rst, r.rst) {
            (Some(a), Some(b)) => Some(a.frame.min(b.frame)),
            (a, b) => a.or(b).map(|x| x.frame),
        },
        _ => None,
    };
    let mut seen_syn = [false; 2];
    let mut seen_synack = [false; 2];
    let mut mismatches = Vec::new();
    let mut steps = Vec::with_capacity(t.hs.steps.len());
    for rec in &t.hs.steps {
        let s = usize::from(rec.slot);
        let f = rec.flags;
        let (what, expected) = if f.syn() && !f.ack() {
            let w = if seen_syn[s] {
                "syn-retransmission"
            } else {
                "syn"
            };
            seen_syn[s] = true;
            (w, None)
        } else if f.syn() {
            let w = if seen_synack[s] {
                "synack-retransmission"
            } else {
                "synack"
            };
            seen_synack[s] = true;
            // A SYN-ACK acknowledges the peer's SYN.
            let peer = &t.hs.side[s ^ 1];
            (w, peer.syn.map(|x| x.seq.wrapping_add(1)))
        } else if f.rst() {
            let peer = &t.hs.side[s ^ 1];
            let exp = if f.ack() && outcome == "refused" && s != orig {
                peer.syn.map(|x| x.seq.wrapping_add(1))
            } else {
                None
            };
            ("rst", exp)
        } else {
            // The ACK of the peer's SYN-ACK.
            let peer = &t.hs.side[s ^ 1];
            ("ack", peer.synack.map(|x| x.seq.wrapping_add(1)))
        };
        let mut e = step(rec, what, orig, c.first_ts, &base);
        if let Some(exp) = expected {
            // An ACK may also acknowledge data the peer sent after its SYN-ACK.
            let upto = t.hs.side[s ^ 1].max_end.unwrap_or(exp);
            let ok = rec.ack == exp
                || (what == "ack" && seq::gt(rec.ack, exp) && seq::le(rec.ack, upto));
            e.expected_ack = Some(exp);
            e.ack_ok = Some(ok);
            if !ok && mismatches.len() < 8 {
                mismatches.push(MismatchEntry {
                    frame: rec.frame,
                    field: format!("{what}.ack"),
                    expected: exp,
                    got: rec.ack,
                });
            }
        }
        steps.push(e);
    }
    let synack = r.synack;
    let ack = if synack.is_some() {
        o.synack_acked
    } else {
        None
    };
    let rtt = RttEntry {
        syn_to_synack: match (synack, r.synack_answers_ts) {
            (Some(sa), Some(syn_ts)) if sa.ts >= syn_ts => Some(ms(sa.ts - syn_ts)),
            _ => None,
        },
        synack_to_ack: match (synack, ack) {
            (Some(sa), Some(a)) if a.ts >= sa.ts => Some(ms(a.ts - sa.ts)),
            _ => None,
        },
    };
    HandshakeEntry {
        outcome: outcome.into(),
        syn_frames: o.syn_frames.clone(),
        synack_frame: synack.map(|x| x.frame),
        ack_frame: ack.map(|x| x.frame),
        rst_frame,
        orig_isn,
        resp_isn,
        syn_retransmissions: u64::from(o.syn_count.saturating_sub(1)),
        rtt_ms: rtt,
        synack_retransmissions: u64::from(r.synack_count.saturating_sub(1)),
        acks_verified: mismatches.is_empty(),
        mismatches,
        orig_options: o.options.as_ref().map(options),
        resp_options: r.options.as_ref().map(options),
        syn_data_bytes: o.syn_payload + r.syn_payload,
        steps,
        steps_dropped: t.hs.steps_dropped,
    }
}

/// The teardown kind and its initiator (0/1 = slot, 2 = both), given the handshake's
/// outcome: a handshake that failed has no teardown to speak of.
pub(super) fn teardown_kind(t: &TcpConn, outcome: &str) -> (&'static str, Option<u8>) {
    let failed = matches!(outcome, "refused" | "no-answer" | "synack-no-ack");
    t.td.kind(failed)
}

fn teardown_entry(c: &Conn, t: &TcpConn, orig: usize, outcome: &str) -> TeardownEntry {
    let (kind, init) = teardown_kind(t, outcome);
    let initiator = init.map(|s| {
        if s == 2 {
            "both".to_string()
        } else {
            dir_name(usize::from(s), orig).to_string()
        }
    });
    let base = bases(t);
    let mut steps = Vec::with_capacity(t.td.steps.len());
    // Rule 1: a failed handshake has no teardown; its RST is the handshake's rst_frame.
    let listed: &[(StepKind, StepRec)] = if kind == "none" { &[] } else { &t.td.steps };
    for (k, rec) in listed {
        let mut e = step(rec, k.name(), orig, c.first_ts, &base);
        if *k == StepKind::AckOfFin {
            let peer = &t.td.side[usize::from(rec.slot) ^ 1];
            e.expected_ack = Some(peer.fin_next);
            e.ack_ok = Some(rec.ack == peer.fin_next);
        }
        steps.push(e);
    }
    let mut notes = Vec::new();
    let sides = &t.td.side;
    if sides.iter().any(|s| s.data_after_fin > 0) {
        notes.push("data-after-fin".to_string());
    }
    if sides.iter().any(|s| s.fin_then_rst) {
        notes.push("fin-then-rst".to_string());
    }
    if sides.iter().any(|s| s.rst_after_peer_fin) {
        notes.push("rst-after-fin".to_string());
    }
    if sides.iter().any(|s| s.fin_retransmissions > 0) {
        notes.push("fin-retransmission".to_string());
    }
    TeardownEntry {
        kind: kind.into(),
        initiator,
        frames: steps.iter().map(|s| s.frame).collect(),
        steps,
        steps_dropped: t.td.steps_dropped,
        fin_to_last_ack_ms: t.td.fin_to_last_ack_ns().map(ms),
        half_close_bytes: t.td.half_close_bytes,
        notes,
    }
}

/// Builds the report entry of a connection (whether a cap cut its analysis is in
/// `tally::keys`).
pub(super) fn build_entry(c: &Conn, why: Finalized) -> ConnEntry {
    let orig = c.orig_slot();
    let resp = orig ^ 1;
    let (proto, conn_state, history, ob, rb, missed) = match &c.proto {
        Proto::Tcp(t) => (
            "tcp",
            t.zeek.conn_state(),
            t.zeek.history().to_string(),
            t.zeek.size(true),
            t.zeek.size(false),
            t.zeek.missed_bytes,
        ),
        Proto::Udp(u) => (
            "udp",
            u.conn_state(),
            u.history().to_string(),
            u.size(true),
            u.size(false),
            0,
        ),
    };
    let orig_by = match &c.proto {
        Proto::Tcp(t) => {
            if t.hs.side[orig].syn.is_some() {
                "syn"
            } else if t.zeek.flips > u32::from(c.start_flip) || t.hs.side[resp].synack.is_some() {
                "synack"
            } else if c.start_flip {
                "server-port"
            } else {
                "first-packet"
            }
        }
        Proto::Udp(_) => {
            if c.start_flip {
                "server-port"
            } else {
                "first-packet"
            }
        }
    };
    let (handshake, teardown, anomalies, tcp_state) = match &c.proto {
        Proto::Tcp(t) => {
            let h = handshake_entry(c, t, orig);
            let td = teardown_entry(c, t, orig, &h.outcome);
            let tot = t.an.total();
            let an = AnomaliesEntry {
                retransmissions: tot.retransmissions,
                out_of_order: tot.out_of_order,
                dup_acks: tot.dup_acks,
                zero_window: tot.zero_window,
                keep_alives: tot.keep_alives,
                lost_segments: tot.lost_segments,
                missed_bytes: t.an.missed_bytes(),
                retransmitted_bytes: tot.retransmitted_bytes,
            };
            let st = TcpStateEntry {
                orig: t.zeek.state(true).name().into(),
                resp: t.zeek.state(false).name().into(),
            };
            (Some(h), Some(td), Some(an), Some(st))
        }
        Proto::Udp(_) => (None, None, None, None),
    };
    ConnEntry {
        id: c.id,
        proto: proto.into(),
        orig: endpoint(c.addr[orig]),
        resp: endpoint(c.addr[resp]),
        first_frame: c.first_frame,
        last_frame: c.last_frame,
        start: crate::report::ts_secs(c.first_ts),
        start_ns: c.first_ts,
        duration_s: (c.last_ts - c.first_ts) as f64 / NS,
        conn_state: conn_state.into(),
        history,
        orig_pkts: c.pkts[orig],
        resp_pkts: c.pkts[resp],
        orig_bytes: ob,
        resp_bytes: rb,
        missed_bytes: missed,
        orig_ip_bytes: c.ip_bytes[orig],
        resp_ip_bytes: c.ip_bytes[resp],
        orig_payload_bytes: c.payload[orig],
        resp_payload_bytes: c.payload[resp],
        orig_by: orig_by.into(),
        orig_guessed: orig_by != "syn",
        finalized_by: why.name().into(),
        vlan: c.vlan,
        handshake,
        teardown,
        anomalies,
        tcp_state,
    }
}
