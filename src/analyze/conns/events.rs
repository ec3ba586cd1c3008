//! The tracker's events (`connection`, `handshake`), built only when an output consumes
//! them (`Ctx::want_events`).
//!
//! A handshake *resolves* when the handshake analysis settles (the ACK of the SYN-ACK, or
//! data flowing) or an RST ends the attempt; one that never resolves is reported when its
//! connection is finalized (no-answer, synack-no-ack). Each connection yields at most one
//! handshake event, always before its connection event.

use super::entry::{endpoint, handshake_entry};
use super::{Conn, Proto, TcpConn};
use crate::report::ndjson::{Event, HandshakeEvent};

/// True once the handshake's outcome is known without waiting for the connection to end.
pub fn resolved(t: &TcpConn) -> bool {
    t.hs.settled || t.hs.side.iter().any(|s| s.rst.is_some())
}

/// The handshake event of a TCP connection (None for UDP).
pub fn handshake(c: &Conn) -> Option<Event> {
    let Proto::Tcp(t) = &c.proto else {
        return None;
    };
    let orig = c.orig_slot();
    Some(Event::Handshake(Box::new(HandshakeEvent {
        conn: c.id,
        proto: "tcp".into(),
        orig: endpoint(c.addr[orig]),
        resp: endpoint(c.addr[orig ^ 1]),
        first_frame: c.first_frame,
        start: crate::report::ts_secs(c.first_ts),
        start_ns: c.first_ts,
        vlan: c.vlan,
        handshake: handshake_entry(c, t, orig),
    })))
}

/// Pushes the handshake event of `c` if it resolved now (or `at_end`) and was not sent yet.
pub fn maybe_handshake(c: &mut Conn, at_end: bool, out: &mut Vec<Event>) {
    let due = match &c.proto {
        Proto::Tcp(t) => !t.hs_emitted && (at_end || resolved(t)),
        Proto::Udp(_) => false,
    };
    if !due {
        return;
    }
    if let Some(ev) = handshake(c) {
        out.push(ev);
    }
    if let Proto::Tcp(t) = &mut c.proto {
        t.hs_emitted = true;
    }
}
