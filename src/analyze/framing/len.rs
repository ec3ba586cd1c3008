//! Length-prefix framing: `len:OFF:WIDTH:ENDIAN[:ADJ]`, its aliases (`len32le`,
//! `len32be`, `len16be`) and `dns`.
//!
//! A message is OFF leading bytes, a WIDTH-byte length field, then value + ADJ more bytes.
//! Only the header (at most OFF + 8 bytes, below [`MAX_HEADER`](super::MAX_HEADER)) is
//! buffered; the body is counted down. A message is confirmed once its length field is
//! read and the total is sane (not shorter than the header, not over the cap).

use super::{Feed, Framer, LenSpec};

/// `len:OFF:WIDTH:ENDIAN[:ADJ]` and its aliases (and `dns`, which also wants at least a
/// 12-byte DNS header after the length).
pub(super) struct LenFramer {
    spec: LenSpec,
    max: u64,
    min_value: u64,
    /// Header bytes seen of the current message.
    pos: u32,
    field: [u8; 8],
    /// Body bytes still to come; `None` while in the header.
    body: Option<u64>,
}

impl LenFramer {
    pub(super) fn new(spec: LenSpec, max: u64, min_value: u64) -> Self {
        LenFramer {
            spec,
            max,
            min_value,
            pos: 0,
            field: [0; 8],
            body: None,
        }
    }

    fn header_len(&self) -> u32 {
        self.spec.off + u32::from(self.spec.width)
    }

    fn value(&self) -> u64 {
        let w = usize::from(self.spec.width);
        let b = &self.field[..w];
        if self.spec.big_endian {
            b.iter().fold(0u64, |v, &x| (v << 8) | u64::from(x))
        } else {
            b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x))
        }
    }
}

impl Framer for LenFramer {
    fn feed(&mut self, data: &[u8]) -> Feed {
        if let Some(rem) = self.body {
            let n = rem.min(data.len() as u64);
            let left = rem - n;
            self.body = if left == 0 { None } else { Some(left) };
            return Feed {
                taken: n,
                ended: left == 0,
                ..Feed::default()
            };
        }
        let hlen = self.header_len();
        let n = ((hlen - self.pos) as usize).min(data.len());
        for (i, &b) in data[..n].iter().enumerate() {
            let at = self.pos + i as u32;
            if at >= self.spec.off {
                self.field[(at - self.spec.off) as usize] = b;
            }
        }
        self.pos += n as u32;
        if self.pos < hlen {
            return Feed::take(n as u64);
        }
        self.pos = 0;
        let value = self.value();
        if value < self.min_value {
            return Feed::fail(
                n as u64,
                format!(
                    "length {value} is shorter than the {}-byte DNS header",
                    self.min_value
                ),
            );
        }
        let total = i128::from(hlen) + i128::from(value) + i128::from(self.spec.adj);
        if total < i128::from(hlen) {
            return Feed::fail(
                n as u64,
                format!(
                    "length field {value} with adjustment {} gives {total} bytes, less than the {hlen}-byte header",
                    self.spec.adj
                ),
            );
        }
        if total > i128::from(self.max) {
            return Feed::fail(
                n as u64,
                format!(
                    "length field {value} gives a {total}-byte message, over the {}-byte cap (--max-message)",
                    self.max
                ),
            );
        }
        // total >= hlen and total <= max (a u64) were checked just above.
        let body = (total - i128::from(hlen)) as u64;
        self.body = (body > 0).then_some(body);
        Feed {
            taken: n as u64,
            confirmed: true,
            ended: body == 0,
            error: None,
        }
    }

    fn skip(&mut self, len: u64) -> Feed {
        match self.body {
            Some(rem) => {
                let n = rem.min(len);
                self.body = (rem - n > 0).then_some(rem - n);
                Feed {
                    taken: n,
                    ended: rem == n,
                    ..Feed::default()
                }
            }
            None => Feed::take(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::frame;

    #[test]
    fn length_prefix_in_any_pieces() {
        let mut data = Vec::new();
        for n in [0u32, 5, 300, 1] {
            data.extend_from_slice(&n.to_le_bytes());
            data.extend(std::iter::repeat_n(b'x', n as usize));
        }
        for piece in [1, 2, 3, 7, 1000] {
            assert_eq!(frame("len32le", &data, piece).unwrap(), vec![4, 9, 304, 5]);
        }
        // A length that counts its own 2-byte header: len:0:2:be:-2.
        let d = [0u8, 4, b'a', b'b', 0, 2];
        assert_eq!(frame("len:0:2:be:-2", &d, 1).unwrap(), vec![4, 2]);
        // A length smaller than its own header is garbage.
        assert!(frame("len:0:2:be:-2", &[0, 1], 1).is_err());
        // Field at an offset: 1 byte type, 2-byte BE length.
        let d = [7u8, 0, 3, 1, 2, 3, 9, 0, 0];
        assert_eq!(frame("len:1:2:be", &d, 2).unwrap(), vec![6, 3]);
        // Over the cap.
        let (at, e) = frame("len32be", &[0xff, 0xff, 0xff, 0xff], 4).unwrap_err();
        assert_eq!(at, 4);
        assert!(e.contains("cap"), "{e}");
        // DNS needs a 12-byte header.
        assert!(frame("dns", &[0, 3, 1, 2, 3], 5).is_err());
    }
}
