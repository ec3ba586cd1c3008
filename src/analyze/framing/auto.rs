//! `auto`: picks a framing kind for a direction from its first delivered bytes and the
//! connection's ports.
//!
//! Only protocols that identify themselves are guessed (DNS by port, HTTP, TLS, text
//! lines); length framings never are, since any bytes parse as a length.

use super::{looks_like_http, looks_like_tls, show_bytes, FramingKind};

/// `auto`: picks a framing from a direction's first delivered bytes (and the ports), only
/// among protocols that identify themselves. Any 4 bytes parse as a length, so length
/// framings are never guessed. Returns the kind and a sentence saying why.
pub fn detect(first: &[u8], orig_port: u16, resp_port: u16) -> (FramingKind, String) {
    if orig_port == 53 || resp_port == 53 {
        return (
            FramingKind::Dns,
            "auto: port 53 (DNS over TCP: 2-byte length prefix)".into(),
        );
    }
    let head = &first[..first.len().min(16)];
    if looks_like_http(first) {
        return (
            FramingKind::Http,
            format!(
                "auto: first bytes {} are an HTTP/1.x start line",
                show_bytes(head)
            ),
        );
    }
    if looks_like_tls(first) {
        return (
            FramingKind::Tls,
            format!(
                "auto: first bytes {} are a TLS record header (type {}, version 3.{})",
                show_bytes(&first[..first.len().min(5)]),
                first[0],
                first[2]
            ),
        );
    }
    let probe = &first[..first.len().min(512)];
    let printable = probe
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\r' || b == b'\t');
    if printable && probe.contains(&b'\n') {
        return (
            FramingKind::Line,
            "auto: the first bytes are printable text with a line end".into(),
        );
    }
    (
        FramingKind::None,
        format!(
            "auto: first bytes {} are not HTTP, TLS or text lines (length framings are never guessed: use --framing)",
            show_bytes(head)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_detection() {
        assert_eq!(detect(b"GET / HTTP/1.1\r\n", 5000, 80).0, FramingKind::Http);
        assert_eq!(
            detect(b"HTTP/1.1 200 OK\r\n", 80, 5000).0,
            FramingKind::Http
        );
        assert_eq!(detect(&[22, 3, 1, 0, 200], 5000, 443).0, FramingKind::Tls);
        assert_eq!(detect(b"\x00\x10abc", 5000, 53).0, FramingKind::Dns);
        assert_eq!(detect(b"hello there\n", 5000, 7000).0, FramingKind::Line);
        assert_eq!(
            detect(b"\x05\x00\x00\x00hello", 5000, 7000).0,
            FramingKind::None
        );
        assert_eq!(detect(b"no line end", 5000, 7000).0, FramingKind::None);
    }
}
