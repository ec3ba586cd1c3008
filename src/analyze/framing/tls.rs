//! TLS record framing (`tls`): one message per record.
//!
//! Only the 5-byte record header is buffered; it is checked (content type, version 3.x,
//! length within the TLS maximum) before the record counts as a message.

use super::{Feed, Framer};
use crate::report::streams::MessageInfo;

/// TLS records: content type (20..=24), version 3.x, 16-bit length (at most 2^14 + 2048).
#[derive(Default)]
pub(super) struct TlsFramer {
    pos: usize,
    hdr: [u8; 5],
    body: Option<u64>,
    info: Option<MessageInfo>,
}

fn tls_type(t: u8) -> Option<&'static str> {
    Some(match t {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        24 => "heartbeat",
        _ => return None,
    })
}

/// True when `b` starts like a TLS record header (used by `auto`).
pub fn looks_like_tls(b: &[u8]) -> bool {
    b.len() >= 3 && (20..=23).contains(&b[0]) && b[1] == 3 && b[2] <= 4
}

impl Framer for TlsFramer {
    fn feed(&mut self, data: &[u8]) -> Feed {
        if let Some(rem) = self.body {
            let n = rem.min(data.len() as u64);
            self.body = (rem > n).then_some(rem - n);
            return Feed {
                taken: n,
                ended: rem == n,
                ..Feed::default()
            };
        }
        let n = (5 - self.pos).min(data.len());
        self.hdr[self.pos..self.pos + n].copy_from_slice(&data[..n]);
        self.pos += n;
        if self.pos < 5 {
            return Feed::take(n as u64);
        }
        self.pos = 0;
        let h = self.hdr;
        let len = u16::from_be_bytes([h[3], h[4]]);
        let Some(kind) = tls_type(h[0]) else {
            return Feed::fail(n as u64, format!("{} is not a TLS content type", h[0]));
        };
        if h[1] != 3 || h[2] > 4 {
            return Feed::fail(
                n as u64,
                format!("version {}.{} is not TLS/SSL 3.x", h[1], h[2]),
            );
        }
        if len > 16384 + 2048 {
            return Feed::fail(
                n as u64,
                format!("record length {len} is over the TLS maximum of 18432"),
            );
        }
        self.info = Some(MessageInfo {
            summary: Some(format!("{kind} (TLS record version 3.{})", h[2])),
            body_len: Some(u64::from(len)),
            ..MessageInfo::default()
        });
        self.body = (len > 0).then_some(u64::from(len));
        Feed {
            taken: n as u64,
            confirmed: true,
            ended: len == 0,
            error: None,
        }
    }

    fn skip(&mut self, len: u64) -> Feed {
        match self.body {
            Some(rem) => {
                let n = rem.min(len);
                self.body = (rem > n).then_some(rem - n);
                Feed {
                    taken: n,
                    ended: rem == n,
                    ..Feed::default()
                }
            }
            None => Feed::take(0),
        }
    }

    fn take_info(&mut self) -> Option<MessageInfo> {
        self.info.take()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::frame;

    #[test]
    fn tls_records() {
        let mut d = vec![22, 3, 1, 0, 2, 0xaa, 0xbb, 23, 3, 3, 0, 1, 0];
        assert_eq!(frame("tls", &d, 1).unwrap(), vec![7, 6]);
        d[7] = 99;
        assert!(frame("tls", &d, 1).is_err());
    }
}
