//! Delimiter framing: `delim:HEX` and `line` (a `\n` delimiter).
//!
//! Nothing is buffered: a KMP matcher carries a delimiter split across pieces from one
//! call to the next. A message ends just after its delimiter; its length is capped by
//! `--max-message`.

use super::{Feed, Framer};

/// Bytes up to and including a delimiter (`delim:HEX`, `line`). A message is confirmed by
/// its first byte: there is no header to check, only a length cap.
pub(super) struct DelimFramer {
    delim: Vec<u8>,
    /// KMP failure function of `delim`, so a delimiter split across pieces is found.
    fail: Vec<usize>,
    matched: usize,
    len: u64,
    max: u64,
}

impl DelimFramer {
    pub(super) fn new(delim: Vec<u8>, max: u64) -> Self {
        let mut fail = vec![0; delim.len()];
        let mut k = 0;
        for i in 1..delim.len() {
            while k > 0 && delim[i] != delim[k] {
                k = fail[k - 1];
            }
            if delim[i] == delim[k] {
                k += 1;
            }
            fail[i] = k;
        }
        DelimFramer {
            delim,
            fail,
            matched: 0,
            len: 0,
            max,
        }
    }
}

impl Framer for DelimFramer {
    fn feed(&mut self, data: &[u8]) -> Feed {
        let confirmed = self.len == 0;
        let found = if self.delim.len() == 1 {
            data.iter().position(|&b| b == self.delim[0]).map(|i| i + 1)
        } else {
            let mut end = None;
            for (i, &b) in data.iter().enumerate() {
                while self.matched > 0 && b != self.delim[self.matched] {
                    self.matched = self.fail[self.matched - 1];
                }
                if b == self.delim[self.matched] {
                    self.matched += 1;
                }
                if self.matched == self.delim.len() {
                    self.matched = 0;
                    end = Some(i + 1);
                    break;
                }
            }
            end
        };
        let taken = found.unwrap_or(data.len()) as u64;
        if self.len + taken > self.max {
            return Feed {
                confirmed,
                ..Feed::fail(
                    0,
                    format!("no delimiter within {} bytes (--max-message)", self.max),
                )
            };
        }
        self.len = if found.is_some() { 0 } else { self.len + taken };
        Feed {
            taken,
            confirmed,
            ended: found.is_some(),
            error: None,
        }
    }

    fn skip(&mut self, _len: u64) -> Feed {
        // A lost piece may have held the delimiter: the message end is unknowable.
        Feed::take(0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::frame;

    #[test]
    fn delimiters_across_pieces() {
        let data = b"ab\r\ncd\r\r\n\r\nx";
        for piece in [1, 2, 3, 100] {
            assert_eq!(frame("delim:0d0a", data, piece).unwrap(), vec![4, 5, 2]);
        }
        assert_eq!(frame("line", b"a\nbb\n\n", 1).unwrap(), vec![2, 3, 1]);
    }
}
