//! Zeek's `likely_server_ports`: the ports its default scripts register as server ports
//! (each protocol's `Analyzer::register_for_ports` server set, plus the UDP tunnel ports
//! of the packet analyzers). Zeek uses them to guess the responder of a connection whose
//! first packet is not a SYN, and of every UDP flow; netlens does the same so that its
//! `orig`/`resp` (and hence `history`) agree with Zeek's `conn.log`.
//!
//! Taken from zeek/zeek scripts/base/protocols/*/main.zeek and
//! scripts/base/packet-protocols/*/main.zeek (the sets `ports`, `server_ports`,
//! `tcp_ports`, `udp_ports`, `ssl_ports`, `dtls_ports`, `quic_ports`, ...). Client-only
//! sets (DHCP's 68/udp, DNS-over-QUIC) are not server ports there and not here.

/// TCP ports of Zeek's default `likely_server_ports`, sorted.
const TCP: &[u16] = &[
    21, 22, 25, 53, 79, 80, 81, 88, 135, 139, 143, 389, 443, 445, 465, 502, 514, 563, 585, 587,
    614, 631, 636, 989, 990, 992, 993, 995, 1080, 1434, 1883, 2811, 3128, 3268, 3306, 3389, 5222,
    5223, 5269, 5432, 6379, 6666, 6667, 6668, 6669, 8000, 8080, 8888, 20000,
];

/// UDP ports of Zeek's default `likely_server_ports`, sorted.
const UDP: &[u16] = &[
    53, 67, 88, 123, 137, 161, 162, 389, 443, 514, 1812, 2123, 2152, 3389, 3544, 4011, 4754, 4789,
    5060, 5072, 5353, 5355, 6081, 20000,
];

/// True when Zeek's default scripts consider `port` a likely TCP server port.
pub fn likely_tcp(port: u16) -> bool {
    TCP.binary_search(&port).is_ok()
}

/// True when Zeek's default scripts consider `port` a likely UDP server port.
pub fn likely_udp(port: u16) -> bool {
    UDP.binary_search(&port).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(TCP.windows(2).all(|w| w[0] < w[1]));
        assert!(UDP.windows(2).all(|w| w[0] < w[1]));
        assert!(likely_tcp(80) && likely_tcp(443) && !likely_tcp(5001));
        assert!(likely_udp(53) && !likely_udp(68));
    }
}
