//! An open UDP flow of the stream analysis, and its packed form.
//!
//! Why packed: a UDP flow stays open for the whole UDP idle timeout (60 s) after its
//! last datagram, so a capture of many short exchanges (DNS, say) holds tens of
//! thousands at once (58,000 at the 1 GB benchmark capture's peak). Open, a flow is a
//! 160-byte box, its datagram list's allocation and a map entry; packed, an IPv4 DNS
//! exchange takes about 40 bytes in the record arenas ([`crate::analyze::records`]).
//! The analysis packs a flow that had no datagram for a while (see `StreamAnalyzer`)
//! and unpacks it when one comes or when the flow is finalized, so nothing else sees
//! the packed form.
//!
//! Format: a flags byte (bit 0: both endpoints are IPv6); the originator's and the
//! responder's endpoint (4 or 16 address bytes, then the port, little-endian); per
//! direction, as varints, the list cap, the largest payload, and the datagram, byte
//! and fragmented counts; then the datagram list ([`DgramList::put`]).
//!
//! Invariant: `unpack(pack(f))` equals `f` field for field (unit tests here; the
//! `packed_udp_flows_change_no_stream_result` test compares whole reports of every
//! fixture and corpus capture with every idle flow packed after each datagram against
//! packing off).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::dgrams::DgramList;
use crate::analyze::records::MAX_LEN;
use crate::analyze::varint::{get_uv, put_uv};

/// One direction of a UDP flow: its counters (its listed datagrams are in the flow's
/// [`DgramList`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct UdpDir {
    pub total: u64,
    pub bytes: u64,
    pub fragmented: u64,
}

/// A UDP flow while it is open: 160 bytes (a size class of the allocator) plus its
/// encoded datagram list.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct UdpFlow {
    pub orig: SocketAddr,
    pub resp: SocketAddr,
    /// Per direction: datagrams its list keeps (see `StreamAnalyzer::list_cap`; a list
    /// longer than `u32::MAX` entries would not fit in memory as JSON anyway).
    pub list_cap: [u32; 2],
    /// Per direction: the largest payload (`DgramHead::payload_len` is a `u32`).
    pub max_len: [u32; 2],
    pub dirs: [UdpDir; 2],
    pub list: DgramList,
}

const F_V6: u8 = 1;

fn put_endpoint(out: &mut Vec<u8>, a: &SocketAddr) {
    match a.ip() {
        IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
        IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
    }
    out.extend_from_slice(&a.port().to_le_bytes());
}

/// `N` bytes from the front of `rest` (zeros past its end: records are written by
/// [`UdpFlow::pack`] only, so that cannot happen).
fn take<const N: usize>(rest: &mut &[u8]) -> [u8; N] {
    let mut a = [0; N];
    let n = N.min(rest.len());
    a[..n].copy_from_slice(&rest[..n]);
    *rest = &rest[n..];
    a
}

fn get_endpoint(rest: &mut &[u8], v6: bool) -> SocketAddr {
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::from(take::<16>(rest)))
    } else {
        IpAddr::V4(Ipv4Addr::from(take::<4>(rest)))
    };
    SocketAddr::new(ip, u16::from_le_bytes(take::<2>(rest)))
}

impl UdpFlow {
    /// Packs the flow into `out` (cleared first); false, with `out` unspecified, when
    /// the record would be longer than the arenas keep ([`MAX_LEN`]: a long datagram
    /// list) or the flow is not one this format holds (endpoints of two families, or an
    /// IPv6 endpoint with a flow label or scope, which `endpoint` never makes).
    pub fn pack(&self, out: &mut Vec<u8>) -> bool {
        if self.list.packed_len() > MAX_LEN {
            return false;
        }
        let v6 = self.orig.is_ipv6();
        let plain = |a: &SocketAddr| match a {
            SocketAddr::V4(_) => !v6,
            SocketAddr::V6(a) => v6 && a.flowinfo() == 0 && a.scope_id() == 0,
        };
        if !plain(&self.orig) || !plain(&self.resp) {
            return false;
        }
        out.clear();
        out.push(if v6 { F_V6 } else { 0 });
        put_endpoint(out, &self.orig);
        put_endpoint(out, &self.resp);
        for i in 0..2 {
            let d = &self.dirs[i];
            for v in [
                u64::from(self.list_cap[i]),
                u64::from(self.max_len[i]),
                d.total,
                d.bytes,
                d.fragmented,
            ] {
                put_uv(out, v);
            }
        }
        self.list.put(out);
        out.len() <= MAX_LEN
    }

    /// The flow [`pack`](Self::pack) packed into `rec` (which may have zeros after it).
    pub fn unpack(rec: &[u8]) -> UdpFlow {
        let mut rest = rec;
        let v6 = take::<1>(&mut rest)[0] & F_V6 != 0;
        let orig = get_endpoint(&mut rest, v6);
        let resp = get_endpoint(&mut rest, v6);
        let mut list_cap = [0u32; 2];
        let mut max_len = [0u32; 2];
        let mut dirs: [UdpDir; 2] = Default::default();
        for i in 0..2 {
            // Written from `u32`s, so they fit; saturate rather than wrap all the same.
            list_cap[i] = u32::try_from(get_uv(&mut rest)).unwrap_or(u32::MAX);
            max_len[i] = u32::try_from(get_uv(&mut rest)).unwrap_or(u32::MAX);
            dirs[i] = UdpDir {
                total: get_uv(&mut rest),
                bytes: get_uv(&mut rest),
                fragmented: get_uv(&mut rest),
            };
        }
        let list = DgramList::get(&mut rest);
        UdpFlow {
            orig,
            resp,
            list_cap,
            max_len,
            dirs,
            list,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Dir;

    fn flow(orig: &str, resp: &str) -> UdpFlow {
        let mut list = DgramList::default();
        list.push(Dir::Orig, 1_000_003, 31, &[]);
        list.push(Dir::Resp, 1_000_010, 1_400, &[1_000_008, 1_000_009]);
        UdpFlow {
            orig: orig.parse().unwrap(),
            resp: resp.parse().unwrap(),
            list_cap: [10_000, 0],
            max_len: [31, 65_507],
            dirs: [
                UdpDir {
                    total: 1,
                    bytes: 31,
                    fragmented: 0,
                },
                UdpDir {
                    total: 7,
                    bytes: 9_000,
                    fragmented: 1,
                },
            ],
            list,
        }
    }

    #[test]
    fn a_packed_flow_unpacks_to_itself() {
        for (a, b, most) in [
            ("10.0.0.1:53000", "10.0.0.2:53", 60),
            ("[2001:db8::1]:5353", "[ff02::fb]:5353", 84),
        ] {
            let f = flow(a, b);
            let mut out = Vec::new();
            assert!(f.pack(&mut out));
            assert!(out.len() <= most, "{}", out.len());
            assert_eq!(UdpFlow::unpack(&out), f);
            // The arenas may hand back the record with zeros after it.
            out.extend_from_slice(&[0; 16]);
            assert_eq!(UdpFlow::unpack(&out), f);
        }
    }

    #[test]
    fn a_long_list_or_mixed_families_stay_unpacked() {
        let mut f = flow("10.0.0.1:53000", "10.0.0.2:53");
        for i in 0..100 {
            f.list.push(Dir::Orig, 2_000_000 + i * 1_000, 512, &[]);
        }
        assert!(!f.pack(&mut Vec::new()));
        let f = flow("10.0.0.1:53000", "[2001:db8::2]:53");
        assert!(!f.pack(&mut Vec::new()));
    }
}
