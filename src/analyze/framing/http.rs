//! HTTP/1.x framing (`http`): a header block, then a body by Content-Length, chunked
//! coding, or the connection close.
//!
//! The header block and each chunk-size or trailer line are buffered, up to
//! [`MAX_HEADER`] bytes; bodies and chunk data are counted, never stored. A stream that does
//! not start like an HTTP request or status line fails on its first bytes.

use super::{escape_text, show_bytes, Feed, Framer, MAX_HEADER};
use crate::report::streams::MessageInfo;

enum HttpState {
    Header,
    Body { rem: u64 },
    ChunkSize,
    ChunkData { rem: u64 },
    ChunkEnd,
    Trailer,
    UntilClose,
}

/// HTTP/1.x: a header block, then a body by Content-Length, chunked coding, or (a response
/// with neither) the connection close. Requests without a length have no body; 1xx, 204
/// and 304 responses never have one. Limitation: a response to HEAD carries a
/// Content-Length but no body; the framer does not see the request, so such a response
/// breaks framing (reported where it happens).
pub(super) struct HttpFramer {
    state: HttpState,
    /// The header block or the current chunk-size / trailer line.
    buf: Vec<u8>,
    max: u64,
    info: Option<MessageInfo>,
}

const HTTP_METHODS: [&str; 9] = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// True when `b` starts like an HTTP/1.x request or status line (used by `auto` too).
pub fn looks_like_http(b: &[u8]) -> bool {
    if b.starts_with(b"HTTP/1.") {
        return true;
    }
    HTTP_METHODS
        .iter()
        .any(|m| b.len() > m.len() && b.starts_with(m.as_bytes()) && b[m.len()] == b' ')
}

impl HttpFramer {
    pub(super) fn new(max: u64) -> Self {
        HttpFramer {
            state: HttpState::Header,
            buf: Vec::new(),
            max,
            info: None,
        }
    }

    /// Checks the start of a header block as soon as its first bytes are in, so a stream
    /// that is not HTTP fails at once rather than after 64 KiB.
    fn start_ok(&self) -> Result<(), String> {
        let b = &self.buf;
        let probe = &b[..b.len().min(8)];
        let prefix_ok = b"HTTP/1.".starts_with(&probe[..probe.len().min(7)])
            || HTTP_METHODS.iter().any(|m| {
                let m = m.as_bytes();
                let k = probe.len().min(m.len() + 1);
                let mut want = m.to_vec();
                want.push(b' ');
                want[..k] == probe[..k]
            });
        if prefix_ok {
            Ok(())
        } else {
            Err(format!(
                "not an HTTP/1.x request or status line (starts {})",
                show_bytes(probe)
            ))
        }
    }

    /// Parses the complete header block; returns the state for the body.
    fn parse_header(&mut self) -> Result<HttpState, String> {
        let text = String::from_utf8_lossy(&self.buf);
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        let start = lines.next().unwrap_or("");
        let (is_response, status) = if let Some(rest) = start.strip_prefix("HTTP/1.") {
            let code = rest
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("bad status line '{}'", escape_text(start)))?;
            (true, code)
        } else {
            let mut parts = start.split(' ');
            let method = parts.next().unwrap_or("");
            let version = parts.nth(1).unwrap_or("");
            if method.is_empty()
                || !method.bytes().all(|c| c.is_ascii_uppercase())
                || !version.starts_with("HTTP/1.")
            {
                return Err(format!("bad request line '{}'", escape_text(start)));
            }
            (false, 0)
        };
        let mut length: Option<u64> = None;
        let mut chunked = false;
        for l in lines {
            let Some((name, value)) = l.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let v = value
                    .parse::<u64>()
                    .map_err(|_| format!("bad Content-Length '{}'", escape_text(value)))?;
                if length.is_some_and(|l| l != v) {
                    return Err("conflicting Content-Length headers".into());
                }
                length = Some(v);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value
                    .rsplit(',')
                    .next()
                    .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
            }
        }
        let mut summary = escape_text(start);
        summary.truncate(200);
        let no_body =
            is_response && ((100..200).contains(&status) || status == 204 || status == 304);
        let (state, body) = if no_body {
            (HttpState::Header, "none".to_string())
        } else if chunked {
            (HttpState::ChunkSize, "chunked".to_string())
        } else if let Some(n) = length {
            if n > self.max {
                return Err(format!(
                    "Content-Length {n} is over the {}-byte cap (--max-message)",
                    self.max
                ));
            }
            (HttpState::Body { rem: n }, format!("content-length {n}"))
        } else if is_response {
            (HttpState::UntilClose, "until close".to_string())
        } else {
            (HttpState::Header, "none".to_string())
        };
        self.info = Some(MessageInfo {
            summary: Some(summary),
            header_len: Some(self.buf.len() as u64),
            body: Some(body),
            ..MessageInfo::default()
        });
        Ok(state)
    }

    /// Appends bytes of a line-oriented part up to and including `\n`; returns how many
    /// were taken and whether the line is complete.
    fn line(&mut self, data: &[u8], cap: usize) -> Result<(usize, bool), String> {
        let end = data.iter().position(|&b| b == b'\n');
        let n = end.map_or(data.len(), |i| i + 1);
        if self.buf.len() + n > cap {
            return Err(format!("line longer than {cap} bytes"));
        }
        self.buf.extend_from_slice(&data[..n]);
        Ok((n, end.is_some()))
    }
}

impl Framer for HttpFramer {
    fn feed(&mut self, data: &[u8]) -> Feed {
        match self.state {
            HttpState::Header => {
                // Take up to the end of the header block (an empty line), one line at a time.
                let mut taken = 0;
                while taken < data.len() {
                    let (n, done) = match self.line(&data[taken..], MAX_HEADER) {
                        Ok(x) => x,
                        Err(_) => {
                            return Feed::fail(
                                taken as u64,
                                format!("HTTP header block longer than {MAX_HEADER} bytes"),
                            )
                        }
                    };
                    taken += n;
                    if let Err(e) = self.start_ok() {
                        return Feed::fail(taken as u64, e);
                    }
                    if !done {
                        break;
                    }
                    let b = &self.buf;
                    let blank = b.ends_with(b"\r\n\r\n") || b.ends_with(b"\n\n") || b == b"\r\n";
                    if blank {
                        let r = self.parse_header();
                        self.buf.clear();
                        return match r {
                            Err(e) => Feed::fail(taken as u64, e),
                            Ok(state) => {
                                let ended = matches!(state, HttpState::Header)
                                    || matches!(state, HttpState::Body { rem: 0 });
                                self.state = if ended { HttpState::Header } else { state };
                                Feed {
                                    taken: taken as u64,
                                    confirmed: true,
                                    ended,
                                    error: None,
                                }
                            }
                        };
                    }
                }
                Feed::take(taken as u64)
            }
            HttpState::Body { rem } | HttpState::ChunkData { rem } => {
                let n = rem.min(data.len() as u64);
                let left = rem - n;
                let ended = match self.state {
                    HttpState::Body { .. } => {
                        self.state = if left == 0 {
                            HttpState::Header
                        } else {
                            HttpState::Body { rem: left }
                        };
                        left == 0
                    }
                    _ => {
                        self.state = if left == 0 {
                            HttpState::ChunkEnd
                        } else {
                            HttpState::ChunkData { rem: left }
                        };
                        false
                    }
                };
                Feed {
                    taken: n,
                    ended,
                    ..Feed::default()
                }
            }
            HttpState::ChunkSize => match self.line(data, 1024) {
                Err(e) => Feed::fail(0, format!("chunk-size {e}")),
                Ok((n, false)) => Feed::take(n as u64),
                Ok((n, true)) => {
                    let line = String::from_utf8_lossy(&self.buf).into_owned();
                    self.buf.clear();
                    let hex = line.trim().split(';').next().unwrap_or("").trim();
                    match u64::from_str_radix(hex, 16) {
                        Ok(0) => {
                            self.state = HttpState::Trailer;
                            Feed::take(n as u64)
                        }
                        Ok(size) if size <= self.max => {
                            self.state = HttpState::ChunkData { rem: size };
                            Feed::take(n as u64)
                        }
                        _ => Feed::fail(
                            n as u64,
                            format!("bad chunk-size line '{}'", escape_text(line.trim_end())),
                        ),
                    }
                }
            },
            HttpState::ChunkEnd => match self.line(data, 2) {
                Err(_) => Feed::fail(0, "chunk data not followed by CRLF".into()),
                Ok((n, done)) => {
                    if done {
                        let ok = self.buf == b"\r\n" || self.buf == b"\n";
                        self.buf.clear();
                        if !ok {
                            return Feed::fail(n as u64, "chunk data not followed by CRLF".into());
                        }
                        self.state = HttpState::ChunkSize;
                    }
                    Feed::take(n as u64)
                }
            },
            HttpState::Trailer => match self.line(data, MAX_HEADER) {
                Err(e) => Feed::fail(0, format!("chunked trailer {e}")),
                Ok((n, false)) => Feed::take(n as u64),
                Ok((n, true)) => {
                    let blank = self.buf == b"\r\n" || self.buf == b"\n";
                    self.buf.clear();
                    if blank {
                        self.state = HttpState::Header;
                    }
                    Feed {
                        taken: n as u64,
                        ended: blank,
                        ..Feed::default()
                    }
                }
            },
            HttpState::UntilClose => Feed::take(data.len() as u64),
        }
    }

    fn skip(&mut self, len: u64) -> Feed {
        match self.state {
            HttpState::UntilClose => Feed::take(len),
            HttpState::Body { rem } => {
                let n = rem.min(len);
                self.state = if rem == n {
                    HttpState::Header
                } else {
                    HttpState::Body { rem: rem - n }
                };
                Feed {
                    taken: n,
                    ended: rem == n,
                    ..Feed::default()
                }
            }
            HttpState::ChunkData { rem } => {
                let n = rem.min(len);
                self.state = if rem == n {
                    HttpState::ChunkEnd
                } else {
                    HttpState::ChunkData { rem: rem - n }
                };
                Feed::take(n)
            }
            _ => Feed::take(0),
        }
    }

    fn complete_at_eof(&self) -> bool {
        matches!(self.state, HttpState::UntilClose)
    }

    fn take_info(&mut self) -> Option<MessageInfo> {
        self.info.take()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::frame;

    #[test]
    fn http_messages() {
        let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        let resp1 = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let resp2 = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\n\r\n";
        let resp3 = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n";
        let resp4 = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
        let mut all = Vec::new();
        for p in [&req[..], resp1, resp2, resp3, resp4] {
            all.extend_from_slice(p);
        }
        let want: Vec<u64> = [&req[..], resp1, resp2, resp3, resp4]
            .iter()
            .map(|p| p.len() as u64)
            .collect();
        for piece in [1, 5, 4096] {
            assert_eq!(frame("http", &all, piece).unwrap(), want, "piece {piece}");
        }
        let (at, e) = frame("http", b"SSH-2.0-OpenSSH\r\n", 3).unwrap_err();
        assert!(e.contains("not an HTTP"), "{e}");
        assert!(at <= 3);
        assert!(frame("http", b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 100).is_err());
    }
}
