//! Cold UDP flows: the packed form of a UDP flow that has seen no packet for a while.
//!
//! Why: a UDP flow stays tracked for the whole idle timeout (Zeek's 60 s) after its last
//! datagram, so a capture of many short exchanges (DNS, say) holds tens of thousands of
//! flows that will never see another packet. As a boxed [`Conn`] each costs a 256-byte
//! allocation; packed, 32 to 48 bytes for IPv4. The flow table packs such flows (see
//! [`super::table`]) and unpacks one when a packet arrives for it or when it is
//! finalized, so nothing else sees the packed form.
//!
//! Format (self-delimiting; integers as LEB128 varints, signed ones zigzagged): a flags
//! byte; the times (first packet relative to `base`, the table's first timestamp, then
//! last packet, close and deadline each relative to an earlier one, the last two only
//! when the flags say they are not the usual value), so the heap can read them without
//! the rest; both endpoints (4 or 16 address bytes and a little-endian port); id and
//! frame numbers; packet, payload and IP byte counts; the Zeek UDP state; the VLAN id if
//! any. The heap key is not stored either: it is the deadline or, until the flow's
//! first heap entry comes due, `first_ts + udp_idle`, and a flag says which. The flow
//! key and `slot0_lo` are not stored: they follow from the endpoints. [`pack`] refuses a
//! connection where any of these would not hold (as it refuses TCP), which then simply
//! stays unpacked.
//!
//! Invariant: `unpack(pack(c))` equals `c` field for field (unit tests here; the
//! `packed_udp_flows_change_no_result` test compares whole reports of every fixture and
//! corpus capture with every UDP flow packed at every packet against packing off).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::table::FlowKey;
use super::zeek::ZeekUdp;
use super::{Conn, Proto};
use crate::analyze::records::MAX_LEN;
use crate::analyze::varint::{get_iv, get_uv, put_iv, put_uv};

const F_FLIP: u8 = 1;
const F_ORIG: u8 = 1 << 1;
const F_VLAN: u8 = 1 << 2;
const F_CLOSED: u8 = 1 << 3;
/// `deadline` is `last_ts + udp_idle`, so it is not stored.
const F_STD_DEADLINE: u8 = 1 << 4;
/// Both endpoints are IPv6 (a packet's two addresses are always of one family).
const F_V6: u8 = 1 << 5;
/// Both stored times are whole microseconds (pcap's resolution) and stored as such.
const F_MICROS: u8 = 1 << 6;
/// `heap_key` is `first_ts + udp_idle` (the entry pushed when the flow was created);
/// without it, `heap_key` is `deadline`. Neither is stored, so [`arm`] turns one into
/// the other by clearing this bit, in place.
const F_FIRST_HEAP_KEY: u8 = 1 << 7;

/// Reads a packed record. Records are written by [`pack`] only, so reading past the end
/// cannot happen; it yields zeros rather than panicking all the same.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(rec: &'a [u8]) -> Self {
        Reader { rest: rec }
    }

    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0; N];
        for b in &mut a {
            *b = self.byte();
        }
        a
    }

    pub fn uv(&mut self) -> u64 {
        get_uv(&mut self.rest)
    }

    fn iv(&mut self) -> i64 {
        get_iv(&mut self.rest)
    }

    fn endpoint(&mut self, v6: bool) -> (IpAddr, u16) {
        let ip = if v6 {
            IpAddr::V6(Ipv6Addr::from(self.array::<16>()))
        } else {
            IpAddr::V4(Ipv4Addr::from(self.array::<4>()))
        };
        (ip, u16::from_le_bytes(self.array::<2>()))
    }
}

fn put_endpoint(out: &mut Vec<u8>, (ip, port): (IpAddr, u16)) {
    match ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
    out.extend_from_slice(&port.to_le_bytes());
}

/// Packs a UDP flow into `out` (cleared first); false, with `out` unspecified, when `c`
/// is not one this format holds (TCP, a key that does not follow from its endpoints, or
/// a heap key that is neither `deadline` nor `first_ts + udp_idle`).
/// `base` is any fixed timestamp near the flows' (times are stored relative to it);
/// `udp_idle` the UDP idle timeout, the usual distance from `last_ts` to `deadline`.
pub fn pack(c: &Conn, base: i64, udp_idle: i64, out: &mut Vec<u8>) -> bool {
    let Proto::Udp(u) = &c.proto else {
        return false;
    };
    let v6 = c.addr[0].0.is_ipv6();
    if c.ctx_orig > 1
        || c.addr[1].0.is_ipv6() != v6
        || FlowKey::new(17, c.addr[0].0, c.addr[0].1, c.addr[1].0, c.addr[1].1)
            != (c.key, c.slot0_lo)
    {
        return false;
    }
    out.clear();
    let std_deadline = c.closed_at.is_none() && c.deadline == c.last_ts.saturating_add(udp_idle);
    let flags = if c.start_flip { F_FLIP } else { 0 }
        | if c.ctx_orig == 1 { F_ORIG } else { 0 }
        | if c.vlan.is_some() { F_VLAN } else { 0 }
        | if c.closed_at.is_some() { F_CLOSED } else { 0 }
        | if std_deadline { F_STD_DEADLINE } else { 0 }
        | if v6 { F_V6 } else { 0 };
    let since_base = c.first_ts.wrapping_sub(base);
    let span = c.last_ts.wrapping_sub(c.first_ts);
    let micros = since_base % 1000 == 0 && span % 1000 == 0;
    let first_heap_key = c.heap_key != c.deadline;
    if first_heap_key && c.heap_key != c.first_ts.saturating_add(udp_idle) {
        return false;
    }
    out.push(
        flags
            | if micros { F_MICROS } else { 0 }
            | if first_heap_key { F_FIRST_HEAP_KEY } else { 0 },
    );
    // The times first: the heap reads them (`times`) without the rest.
    let unit = if micros { 1000 } else { 1 };
    put_iv(out, since_base / unit);
    put_iv(out, span / unit);
    if let Some(at) = c.closed_at {
        put_iv(out, at.wrapping_sub(c.last_ts));
    }
    if !std_deadline {
        put_iv(out, c.deadline.wrapping_sub(c.last_ts));
    }
    put_endpoint(out, c.addr[0]);
    put_endpoint(out, c.addr[1]);
    put_uv(out, c.id);
    put_uv(out, c.first_frame);
    put_uv(out, c.last_frame.wrapping_sub(c.first_frame));
    put_uv(out, c.pkts[0]);
    put_uv(out, c.pkts[1]);
    put_uv(out, c.payload[0]);
    put_uv(out, c.payload[1]);
    // IP bytes as the excess over payload plus 28 bytes of IPv4 and UDP header per
    // datagram: 0, one byte, for IPv4 without options.
    for s in 0..2 {
        let usual = c.payload[s].wrapping_add(c.pkts[s].wrapping_mul(28));
        put_iv(out, c.ip_bytes[s].wrapping_sub(usual) as i64);
    }
    if !u.pack(&c.payload, out) {
        return false;
    }
    if let Some(v) = c.vlan {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.len() <= MAX_LEN
}

/// The record's leading part: flags and times.
struct Head {
    flags: u8,
    first_ts: i64,
    last_ts: i64,
    closed_at: Option<i64>,
    deadline: i64,
    heap_key: i64,
}

fn head(r: &mut Reader<'_>, base: i64, udp_idle: i64) -> Head {
    let flags = r.byte();
    let unit = if flags & F_MICROS != 0 { 1000 } else { 1 };
    let first_ts = base.wrapping_add(r.iv().wrapping_mul(unit));
    let last_ts = first_ts.wrapping_add(r.iv().wrapping_mul(unit));
    let closed_at = (flags & F_CLOSED != 0).then(|| last_ts.wrapping_add(r.iv()));
    let deadline = if flags & F_STD_DEADLINE != 0 {
        last_ts.saturating_add(udp_idle)
    } else {
        last_ts.wrapping_add(r.iv())
    };
    let heap_key = if flags & F_FIRST_HEAP_KEY != 0 {
        first_ts.saturating_add(udp_idle)
    } else {
        deadline
    };
    Head {
        flags,
        first_ts,
        last_ts,
        closed_at,
        deadline,
        heap_key,
    }
}

/// `(heap_key, deadline)` of a packed record, read without the rest.
pub fn times(rec: &[u8], base: i64, udp_idle: i64) -> (i64, i64) {
    let h = head(&mut Reader::new(rec), base, udp_idle);
    (h.heap_key, h.deadline)
}

/// Sets the packed flow's `heap_key` to its `deadline` (the heap then holds an entry at
/// the deadline): one bit of the flags, so the record keeps its length.
pub fn arm(rec: &mut [u8]) {
    if let Some(f) = rec.first_mut() {
        *f &= !F_FIRST_HEAP_KEY;
    }
}

/// Whether the packed flow was closed (`closed_at` set).
pub fn closed(rec: &[u8]) -> bool {
    rec.first().is_some_and(|f| f & F_CLOSED != 0)
}

/// The endpoints of a packed record, and the reader after them.
fn endpoints(rec: &[u8]) -> (Reader<'_>, [(IpAddr, u16); 2]) {
    let mut r = Reader::new(rec);
    // The times' values do not matter here, only the bytes they take.
    let flags = head(&mut r, 0, 0).flags;
    let a = r.endpoint(flags & F_V6 != 0);
    let b = r.endpoint(flags & F_V6 != 0);
    (r, [a, b])
}

/// The flow key stored in a packed record, without unpacking the rest.
pub fn key(rec: &[u8]) -> FlowKey {
    let (_, [a, b]) = endpoints(rec);
    FlowKey::new(17, a.0, a.1, b.0, b.1).0
}

/// The connection id stored in a packed record.
pub fn id(rec: &[u8]) -> u64 {
    endpoints(rec).0.uv()
}

/// The connection [`pack`] packed into `rec`, with the same `base` and `udp_idle`.
pub fn unpack(rec: &[u8], base: i64, udp_idle: i64) -> Conn {
    let mut r = Reader::new(rec);
    let h = head(&mut r, base, udp_idle);
    let a = r.endpoint(h.flags & F_V6 != 0);
    let b = r.endpoint(h.flags & F_V6 != 0);
    let (key, slot0_lo) = FlowKey::new(17, a.0, a.1, b.0, b.1);
    let id = r.uv();
    let first_frame = r.uv();
    let last_frame = first_frame.wrapping_add(r.uv());
    let pkts = [r.uv(), r.uv()];
    let payload = [r.uv(), r.uv()];
    let mut ip_bytes = [0u64; 2];
    for s in 0..2 {
        let usual = payload[s].wrapping_add(pkts[s].wrapping_mul(28));
        ip_bytes[s] = usual.wrapping_add(r.iv() as u64);
    }
    let udp = ZeekUdp::unpack(&mut r, &payload);
    let vlan = (h.flags & F_VLAN != 0).then(|| u16::from_le_bytes(r.array::<2>()));
    Conn {
        id,
        key,
        addr: [a, b],
        slot0_lo,
        first_frame,
        last_frame,
        first_ts: h.first_ts,
        last_ts: h.last_ts,
        pkts,
        ip_bytes,
        payload,
        vlan,
        start_flip: h.flags & F_FLIP != 0,
        ctx_orig: usize::from(h.flags & F_ORIG != 0),
        proto: Proto::Udp(udp),
        closed_at: h.closed_at,
        deadline: h.deadline,
        heap_key: h.heap_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(v6: bool) -> Conn {
        let (a, b): (IpAddr, IpAddr) = if v6 {
            (
                "2001:db8::1".parse().unwrap(),
                "::ffff:10.0.0.1".parse().unwrap(),
            )
        } else {
            ("10.99.0.12".parse().unwrap(), "10.99.0.1".parse().unwrap())
        };
        let (key, slot0_lo) = FlowKey::new(17, a, 40000, b, 53);
        let mut u = ZeekUdp::new(false);
        u.process(0, 40);
        u.process(1, 120);
        Conn {
            id: 70_001,
            key,
            addr: [(a, 40000), (b, 53)],
            slot0_lo,
            first_frame: 2_900_000,
            last_frame: 2_900_017,
            first_ts: 1_764_000_000_123_456_789,
            last_ts: 1_764_000_000_124_000_000,
            pkts: [1, 1],
            ip_bytes: [60, 140],
            payload: [32, 112],
            vlan: None,
            start_flip: false,
            ctx_orig: 0,
            proto: Proto::Udp(u),
            closed_at: None,
            deadline: 1_764_000_000_124_000_000 + 60_000_000_000,
            heap_key: 1_764_000_000_123_456_789 + 60_000_000_000,
        }
    }

    fn round_trip(c: &Conn) -> (usize, Conn) {
        let mut rec = Vec::new();
        assert!(pack(c, 1_764_000_000_000_000_000, 60_000_000_000, &mut rec));
        assert_eq!((key(&rec), id(&rec)), (c.key, c.id));
        assert_eq!(closed(&rec), c.closed_at.is_some());
        let base = 1_764_000_000_000_000_000;
        assert_eq!(times(&rec, base, 60_000_000_000), (c.heap_key, c.deadline));
        (
            rec.len(),
            unpack(&rec, 1_764_000_000_000_000_000, 60_000_000_000),
        )
    }

    #[test]
    fn packed_flows_unpack_to_the_same_connection() {
        let c = flow(false);
        let (len, back) = round_trip(&c);
        assert_eq!(format!("{c:?}"), format!("{back:?}"));
        // The point of packing: a DNS-like IPv4 flow fits a 40-byte allocation.
        assert!(len <= 40, "{len}");

        let mut d = flow(true);
        d.vlan = Some(4094);
        d.start_flip = true;
        d.ctx_orig = 1;
        d.closed_at = Some(d.last_ts - 5);
        d.deadline = i64::MAX;
        d.heap_key = i64::MAX;
        d.pkts = [u64::MAX, 0];
        d.first_ts = i64::MIN;
        d.last_ts = i64::MAX;
        if let Proto::Udp(u) = &mut d.proto {
            u.process(0, 100);
        }
        let (_, back) = round_trip(&d);
        assert_eq!(format!("{d:?}"), format!("{back:?}"));
    }

    #[test]
    fn arming_a_record_moves_its_heap_key_to_the_deadline() {
        let mut c = flow(false);
        c.heap_key = c.first_ts + 60_000_000_000;
        assert!(c.deadline > c.heap_key);
        let mut rec = Vec::new();
        assert!(pack(&c, c.first_ts, 60_000_000_000, &mut rec));
        let len = rec.len();
        arm(&mut rec);
        assert_eq!(rec.len(), len);
        c.heap_key = c.deadline;
        let back = unpack(&rec, c.first_ts, 60_000_000_000);
        assert_eq!(format!("{c:?}"), format!("{back:?}"));
        assert_eq!(
            times(&rec, c.first_ts, 60_000_000_000),
            (c.deadline, c.deadline)
        );
        // Any other heap key is refused: the record has no room for it.
        c.heap_key -= 1;
        assert!(!pack(&c, c.first_ts, 60_000_000_000, &mut rec));
    }

    #[test]
    fn flows_whose_key_does_not_follow_are_not_packed() {
        let mut c = flow(false);
        c.slot0_lo = !c.slot0_lo;
        assert!(!pack(&c, 0, 0, &mut Vec::new()));
        let mut mixed = flow(false);
        mixed.addr[1].0 = "::1".parse().unwrap();
        mixed.key = FlowKey::new(17, mixed.addr[0].0, 40000, mixed.addr[1].0, 53).0;
        assert!(!pack(&mixed, 0, 0, &mut Vec::new()));
    }
}
