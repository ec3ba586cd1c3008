//! Message framers: where one application message ends and the next begins in a
//! reassembled byte stream (`--framing`).
//!
//! A capture shows segments, not the application's `send()` calls; message boundaries come
//! from the protocol's framing. Each framer here is an incremental state machine over the
//! bytes the reassembler delivers, in stream order, in pieces of any size: it never needs a
//! whole message in memory. What it buffers is bounded by [`MAX_HEADER`] (a header block,
//! a JSON header, a chunk-size line); bodies are counted, never stored (the json-header
//! body's MD5 is computed as it streams past).
//!
//! Protocol with the caller ([`Framer::feed`]): the caller hands the bytes that follow the
//! previous call; the framer says how many of them belong to the current message, whether
//! the message's header is now known to be valid (`confirmed`: until then its bytes may
//! still turn out not to be a message), whether the message ends after them, or that
//! framing failed (the caller then falls back to segments for the rest of the direction).
//! Every call makes progress: it takes at least one byte, ends a message or fails.
//!
//! Kinds and their spelling are a contract (DESIGN.md "Framing"); [`FramingKind`]'s
//! `FromStr` is the one parser of `--framing` values.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use md5::{Digest, Md5};

use crate::report::streams::MessageInfo;

/// Largest header a framer buffers: an HTTP header block, a JSON header, a chunk-size
/// line, a length field's leading bytes. Beyond it framing fails (bounded memory).
pub const MAX_HEADER: usize = 64 * 1024;

/// Default cap on one message's declared length; larger lengths are taken as garbage.
pub const DEFAULT_MAX_MESSAGE: u64 = 256 * 1024 * 1024;

/// A declarative length field: WIDTH bytes at OFF, the message is OFF+WIDTH+value+ADJ bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LenSpec {
    pub off: u32,
    pub width: u8,
    pub big_endian: bool,
    pub adj: i64,
}

/// A framing kind as given to `--framing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingKind {
    Len(LenSpec),
    Len32Le,
    Len32Be,
    Len16Be,
    Delim(Vec<u8>),
    JsonHeader,
    Line,
    Http,
    Tls,
    Dns,
    Auto,
    None,
}

impl FramingKind {
    /// The length spec behind the length-prefix kinds.
    fn len_spec(&self) -> Option<LenSpec> {
        let s = |width, big_endian| LenSpec {
            off: 0,
            width,
            big_endian,
            adj: 0,
        };
        match self {
            FramingKind::Len(l) => Some(*l),
            FramingKind::Len32Le => Some(s(4, false)),
            FramingKind::Len32Be => Some(s(4, true)),
            FramingKind::Len16Be | FramingKind::Dns => Some(s(2, true)),
            _ => None,
        }
    }
}

impl fmt::Display for FramingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FramingKind::Len(l) => {
                write!(
                    f,
                    "len:{}:{}:{}",
                    l.off,
                    l.width,
                    if l.big_endian { "be" } else { "le" }
                )?;
                if l.adj != 0 {
                    write!(f, ":{}", l.adj)?;
                }
                Ok(())
            }
            FramingKind::Len32Le => f.write_str("len32le"),
            FramingKind::Len32Be => f.write_str("len32be"),
            FramingKind::Len16Be => f.write_str("len16be"),
            FramingKind::Delim(d) => {
                f.write_str("delim:")?;
                for b in d {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            FramingKind::JsonHeader => f.write_str("json-header"),
            FramingKind::Line => f.write_str("line"),
            FramingKind::Http => f.write_str("http"),
            FramingKind::Tls => f.write_str("tls"),
            FramingKind::Dns => f.write_str("dns"),
            FramingKind::Auto => f.write_str("auto"),
            FramingKind::None => f.write_str("none"),
        }
    }
}

const KINDS_HELP: &str = "len:OFF:WIDTH:ENDIAN[:ADJ], len32le, len32be, len16be, delim:HEX, \
                          json-header, line, http, tls, dns, auto, none";

impl FromStr for FramingKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let k = match s {
            "len32le" => FramingKind::Len32Le,
            "len32be" => FramingKind::Len32Be,
            "len16be" => FramingKind::Len16Be,
            "json-header" => FramingKind::JsonHeader,
            "line" => FramingKind::Line,
            "http" => FramingKind::Http,
            "tls" => FramingKind::Tls,
            "dns" => FramingKind::Dns,
            "auto" => FramingKind::Auto,
            "none" => FramingKind::None,
            _ => {
                if let Some(rest) = s.strip_prefix("len:") {
                    return parse_len(rest).map(FramingKind::Len);
                }
                if let Some(hex) = s.strip_prefix("delim:") {
                    return parse_hex(hex).map(FramingKind::Delim);
                }
                return Err(format!(
                    "unknown framing kind '{s}'; expected one of {KINDS_HELP}, or PORT=KIND"
                ));
            }
        };
        Ok(k)
    }
}

fn parse_len(rest: &str) -> Result<LenSpec, String> {
    let parts: Vec<&str> = rest.split(':').collect();
    if !(3..=4).contains(&parts.len()) {
        return Err(format!(
            "framing 'len:{rest}' needs OFF:WIDTH:ENDIAN[:ADJ], e.g. len:0:4:le or len:2:2:be:-4"
        ));
    }
    let off: u32 = parts[0]
        .parse()
        .ok()
        .filter(|&o: &u32| (o as usize) < MAX_HEADER - 8)
        .ok_or_else(|| {
            format!(
                "framing 'len:{rest}': OFF '{}' must be a byte offset below {}",
                parts[0],
                MAX_HEADER - 8
            )
        })?;
    let width: u8 = match parts[1] {
        "1" => 1,
        "2" => 2,
        "4" => 4,
        "8" => 8,
        w => return Err(format!("WIDTH '{w}' must be 1, 2, 4 or 8")),
    };
    let big_endian = match parts[2] {
        "le" => false,
        "be" => true,
        e => {
            return Err(format!(
                "framing 'len:{rest}': ENDIAN '{e}' must be le or be"
            ))
        }
    };
    let adj = match parts.get(3) {
        None => 0,
        Some(a) => a
            .parse::<i64>()
            .ok()
            .filter(|a| a.unsigned_abs() <= 1 << 32)
            .ok_or_else(|| {
                format!("framing 'len:{rest}': ADJ '{a}' must be an integer (e.g. -4 or 2)")
            })?,
    };
    Ok(LenSpec {
        off,
        width,
        big_endian,
        adj,
    })
}

fn parse_hex(hex: &str) -> Result<Vec<u8>, String> {
    let bad = || {
        format!(
            "framing 'delim:{hex}': the delimiter must be 1 to 16 bytes of hex, e.g. delim:0d0a"
        )
    };
    if hex.is_empty() || !hex.len().is_multiple_of(2) || hex.len() > 32 {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// One `--framing` value: `KIND` (every stream) or `PORT=KIND`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingRule {
    pub port: Option<u16>,
    pub kind: FramingKind,
}

impl FromStr for FramingRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((port, kind)) => {
                let port = port.parse::<u16>().map_err(|_| {
                    format!("'{port}' is not a port number (PORT=KIND, e.g. 9000=len32le)")
                })?;
                Ok(FramingRule {
                    port: Some(port),
                    kind: kind.parse()?,
                })
            }
            None => Ok(FramingRule {
                port: None,
                kind: s.parse()?,
            }),
        }
    }
}

/// All `--framing` rules of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FramingConfig {
    pub rules: Vec<FramingRule>,
}

impl FramingConfig {
    /// Parses every `--framing` value; the error is a usage message.
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, String> {
        let rules = specs
            .iter()
            .map(|s| {
                let s = s.as_ref();
                s.parse()
                    .map_err(|e| format!("invalid --framing '{s}': {e}"))
            })
            .collect::<Result<Vec<FramingRule>, String>>()?;
        Ok(FramingConfig { rules })
    }

    /// The kind for a connection between `orig_port` and `resp_port`, and why.
    ///
    /// A port rule applies to both directions of every connection with that port at either
    /// end; when both ends have one, the responder's port (usually the service) wins. The
    /// last matching rule given wins, as with most command-line tools.
    pub fn choose(&self, orig_port: u16, resp_port: u16) -> (FramingKind, String) {
        for port in [resp_port, orig_port] {
            if let Some(r) = self.rules.iter().rev().find(|r| r.port == Some(port)) {
                return (r.kind.clone(), format!("--framing {}={}", port, r.kind));
            }
        }
        if let Some(r) = self.rules.iter().rev().find(|r| r.port.is_none()) {
            return (r.kind.clone(), format!("--framing {}", r.kind));
        }
        (FramingKind::Auto, "default".into())
    }
}

/// What a framer says about the bytes it was fed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Feed {
    /// How many of the bytes belong to the current message.
    pub taken: u64,
    /// The current message's header is now known valid: it is a message.
    pub confirmed: bool,
    /// The current message ends after the `taken` bytes.
    pub ended: bool,
    /// Framing failed just after the `taken` bytes (the reason says why).
    pub error: Option<String>,
}

impl Feed {
    fn take(taken: u64) -> Feed {
        Feed {
            taken,
            ..Feed::default()
        }
    }
    fn fail(taken: u64, reason: String) -> Feed {
        Feed {
            taken,
            error: Some(reason),
            ..Feed::default()
        }
    }
}

/// An incremental message framer over one direction's delivered bytes.
pub trait Framer: Send {
    /// Bytes of the stream following those fed before (never empty).
    fn feed(&mut self, data: &[u8]) -> Feed;
    /// `len` bytes are missing (a gap). Takes those that fall inside a body of known length
    /// (a message with a hole); takes 0 where the framer cannot know what was lost.
    fn skip(&mut self, len: u64) -> Feed;
    /// The stream ended: true when the current, started message is complete at the end of
    /// the stream (an HTTP body delimited by the connection close).
    fn complete_at_eof(&self) -> bool {
        false
    }
    /// Details of the message that just ended or is in progress (taken once).
    fn take_info(&mut self) -> Option<MessageInfo> {
        None
    }
}

/// Builds the framer of `kind` (`Auto` and `None` have none: the caller resolves them).
pub fn framer(kind: &FramingKind, max_message: u64) -> Option<Box<dyn Framer>> {
    if let Some(spec) = kind.len_spec() {
        let min_value = if *kind == FramingKind::Dns { 12 } else { 0 };
        return Some(Box::new(LenFramer::new(spec, max_message, min_value)));
    }
    match kind {
        FramingKind::Delim(d) => Some(Box::new(DelimFramer::new(d.clone(), max_message))),
        FramingKind::Line => Some(Box::new(DelimFramer::new(vec![b'\n'], max_message))),
        FramingKind::JsonHeader => Some(Box::new(JsonHeaderFramer::new(max_message))),
        FramingKind::Http => Some(Box::new(HttpFramer::new(max_message))),
        FramingKind::Tls => Some(Box::new(TlsFramer::default())),
        _ => None,
    }
}

// ---------------------------------------------------------------------- length prefix

/// `len:OFF:WIDTH:ENDIAN[:ADJ]` and its aliases (and `dns`, which also wants at least a
/// 12-byte DNS header after the length).
struct LenFramer {
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
    fn new(spec: LenSpec, max: u64, min_value: u64) -> Self {
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

// ---------------------------------------------------------------------- delimiter / line

/// Bytes up to and including a delimiter (`delim:HEX`, `line`). A message is confirmed by
/// its first byte: there is no header to check, only a length cap.
struct DelimFramer {
    delim: Vec<u8>,
    /// KMP failure function of `delim`, so a delimiter split across pieces is found.
    fail: Vec<usize>,
    matched: usize,
    len: u64,
    max: u64,
}

impl DelimFramer {
    fn new(delim: Vec<u8>, max: u64) -> Self {
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

// ---------------------------------------------------------------------- json-header

enum JsonState {
    Len { pos: usize, buf: [u8; 4] },
    Header { need: usize, buf: Vec<u8> },
    Body { rem: u64 },
}

/// `json-header`: 4-byte LE header length H, H bytes of JSON object, then a body of the
/// header's `file_size` bytes (0 if absent); the body's MD5 is checked against `MD5`.
struct JsonHeaderFramer {
    state: JsonState,
    max: u64,
    md5: Md5,
    info: Option<MessageInfo>,
    expected_md5: Option<String>,
}

impl JsonHeaderFramer {
    fn new(max: u64) -> Self {
        JsonHeaderFramer {
            state: JsonState::Len {
                pos: 0,
                buf: [0; 4],
            },
            max,
            md5: Md5::new(),
            info: None,
            expected_md5: None,
        }
    }

    /// Parses a complete header; on success returns the body size.
    fn header(&mut self, buf: &[u8]) -> Result<u64, String> {
        let v: serde_json::Value =
            serde_json::from_slice(buf).map_err(|e| format!("header is not JSON ({e})"))?;
        let serde_json::Value::Object(map) = v else {
            return Err("header is JSON but not an object".into());
        };
        let size = match map.get("file_size") {
            None => 0,
            Some(s) => s
                .as_u64()
                .ok_or_else(|| format!("file_size {s} is not a non-negative integer"))?,
        };
        if size > self.max {
            return Err(format!(
                "file_size {size} is over the {}-byte cap (--max-message)",
                self.max
            ));
        }
        let mut fields = BTreeMap::new();
        for (k, v) in &map {
            let text = match v {
                serde_json::Value::String(s) => escape_text(s),
                other => escape_text(&other.to_string()),
            };
            fields.insert(escape_text(k), text);
        }
        self.expected_md5 = map
            .get("MD5")
            .and_then(|m| m.as_str())
            .map(|s| s.to_ascii_lowercase());
        self.md5 = Md5::new();
        self.info = Some(MessageInfo {
            header: Some(fields),
            header_len: Some(buf.len() as u64),
            body_len: Some(size),
            ..MessageInfo::default()
        });
        Ok(size)
    }

    fn finish_body(&mut self) {
        let digest = std::mem::take(&mut self.md5).finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(info) = self.info.as_mut() {
            info.md5_ok = self.expected_md5.as_ref().map(|e| *e == hex);
            info.md5 = Some(hex);
        }
    }
}

impl Framer for JsonHeaderFramer {
    fn feed(&mut self, data: &[u8]) -> Feed {
        match &mut self.state {
            JsonState::Len { pos, buf } => {
                let n = (4 - *pos).min(data.len());
                buf[*pos..*pos + n].copy_from_slice(&data[..n]);
                *pos += n;
                if *pos < 4 {
                    return Feed::take(n as u64);
                }
                let h = u32::from_le_bytes(*buf) as usize;
                if h == 0 || h > MAX_HEADER {
                    return Feed::fail(
                        n as u64,
                        format!("JSON header length {h} is not within 1..={MAX_HEADER}"),
                    );
                }
                self.state = JsonState::Header {
                    need: h,
                    buf: Vec::with_capacity(h.min(4096)),
                };
                Feed::take(n as u64)
            }
            JsonState::Header { need, buf } => {
                let n = (*need - buf.len()).min(data.len());
                buf.extend_from_slice(&data[..n]);
                if buf.len() < *need {
                    return Feed::take(n as u64);
                }
                let header = std::mem::take(buf);
                match self.header(&header) {
                    Err(e) => Feed::fail(n as u64, e),
                    Ok(size) => {
                        let ended = size == 0;
                        if ended {
                            self.finish_body();
                            self.state = JsonState::Len {
                                pos: 0,
                                buf: [0; 4],
                            };
                        } else {
                            self.state = JsonState::Body { rem: size };
                        }
                        Feed {
                            taken: n as u64,
                            confirmed: true,
                            ended,
                            error: None,
                        }
                    }
                }
            }
            JsonState::Body { rem } => {
                let n = (*rem).min(data.len() as u64);
                // n <= data.len(), so the cast back is exact.
                self.md5.update(&data[..n as usize]);
                *rem -= n;
                let ended = *rem == 0;
                if ended {
                    self.finish_body();
                    self.state = JsonState::Len {
                        pos: 0,
                        buf: [0; 4],
                    };
                }
                Feed {
                    taken: n,
                    ended,
                    ..Feed::default()
                }
            }
        }
    }

    fn skip(&mut self, len: u64) -> Feed {
        let JsonState::Body { rem } = &mut self.state else {
            return Feed::take(0);
        };
        let n = (*rem).min(len);
        *rem -= n;
        // Bytes of the body are missing: the digest cannot be checked.
        self.expected_md5 = None;
        if let Some(i) = self.info.as_mut() {
            i.md5_unverifiable = true;
        }
        let ended = *rem == 0;
        if ended {
            self.finish_body();
            self.state = JsonState::Len {
                pos: 0,
                buf: [0; 4],
            };
        }
        Feed {
            taken: n,
            ended,
            ..Feed::default()
        }
    }

    fn take_info(&mut self) -> Option<MessageInfo> {
        self.info.take()
    }
}

/// Shows text as text: printable characters as they are, everything else escaped
/// (`\n`, `\u{1b}`), so a hostile header cannot drive the terminal.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------- http

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
struct HttpFramer {
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
    fn new(max: u64) -> Self {
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

// ---------------------------------------------------------------------- tls

/// TLS records: content type (20..=24), version 3.x, 16-bit length (at most 2^14 + 2048).
#[derive(Default)]
struct TlsFramer {
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

// ---------------------------------------------------------------------- auto

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

/// Bytes as quoted text where printable, `\xNN` otherwise.
pub fn show_bytes(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` in pieces of `piece` bytes; returns the message lengths, or the error
    /// with its offset.
    fn frame(kind: &str, data: &[u8], piece: usize) -> Result<Vec<u64>, (u64, String)> {
        let kind: FramingKind = kind.parse().unwrap();
        let mut f = framer(&kind, DEFAULT_MAX_MESSAGE).unwrap();
        let mut out = Vec::new();
        let (mut start, mut at) = (0u64, 0u64);
        for chunk in data.chunks(piece) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let r = f.feed(rest);
                at += r.taken;
                if let Some(e) = r.error {
                    return Err((at, e));
                }
                if r.ended {
                    out.push(at - start);
                    start = at;
                }
                assert!(r.taken > 0 || r.ended, "no progress");
                rest = &rest[r.taken as usize..];
            }
        }
        if at > start && f.complete_at_eof() {
            out.push(at - start);
        }
        Ok(out)
    }

    #[test]
    fn parses_kinds() {
        for (s, ok) in [
            ("len32le", true),
            ("len:0:4:le", true),
            ("len:2:2:be:-4", true),
            ("len:0:3:le", false),
            ("len:0:4:middle", false),
            ("len:x:4:le", false),
            ("delim:0d0a", true),
            ("delim:0d0", false),
            ("delim:zz", false),
            ("json-header", true),
            ("bogus", false),
        ] {
            assert_eq!(s.parse::<FramingKind>().is_ok(), ok, "{s}");
        }
        assert_eq!(
            "len:2:2:be:-4".parse::<FramingKind>().unwrap().to_string(),
            "len:2:2:be:-4"
        );
        let r: FramingRule = "9000=len32le".parse().unwrap();
        assert_eq!(r.port, Some(9000));
        assert!("99999=line".parse::<FramingRule>().is_err());
        assert!("9000=nope".parse::<FramingRule>().is_err());
        let c = FramingConfig::parse(&["line", "9000=len32le", "80=http"]).unwrap();
        assert_eq!(c.choose(50000, 9000).0, FramingKind::Len32Le);
        assert_eq!(c.choose(9000, 80).0, FramingKind::Http);
        assert_eq!(c.choose(1, 2).0, FramingKind::Line);
        assert_eq!(FramingConfig::default().choose(1, 2).0, FramingKind::Auto);
    }

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

    #[test]
    fn delimiters_across_pieces() {
        let data = b"ab\r\ncd\r\r\n\r\nx";
        for piece in [1, 2, 3, 100] {
            assert_eq!(frame("delim:0d0a", data, piece).unwrap(), vec![4, 5, 2]);
        }
        assert_eq!(frame("line", b"a\nbb\n\n", 1).unwrap(), vec![2, 3, 1]);
    }

    #[test]
    fn json_header_checks_md5() {
        let body = b"hello world";
        let md5: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hdr = format!(r#"{{"file_name":"a\nb.txt","file_size":11,"MD5":"{md5}"}}"#);
        let mut data = (hdr.len() as u32).to_le_bytes().to_vec();
        data.extend_from_slice(hdr.as_bytes());
        data.extend_from_slice(body);
        let hdr2 = r#"{"status":"ok"}"#;
        data.extend_from_slice(&(hdr2.len() as u32).to_le_bytes());
        data.extend_from_slice(hdr2.as_bytes());
        let want = vec![4 + hdr.len() as u64 + 11, 4 + hdr2.len() as u64];
        assert_eq!(frame("json-header", &data, 3).unwrap(), want);

        let mut f = JsonHeaderFramer::new(DEFAULT_MAX_MESSAGE);
        let mut rest = &data[..];
        let mut infos = Vec::new();
        while !rest.is_empty() {
            let r = f.feed(rest);
            if r.ended {
                infos.push(f.take_info().unwrap());
            }
            rest = &rest[r.taken as usize..];
        }
        assert_eq!(infos[0].md5_ok, Some(true));
        let h = infos[0].header.as_ref().unwrap();
        assert_eq!(h["file_name"], "a\\nb.txt");
        assert_eq!(infos[1].md5_ok, None);

        // A corrupted body fails the check but not the framing.
        let mut bad = data.clone();
        let at = 4 + hdr.len() + 3;
        bad[at] ^= 1;
        let mut f = JsonHeaderFramer::new(DEFAULT_MAX_MESSAGE);
        let mut rest = &bad[..];
        loop {
            let r = f.feed(rest);
            rest = &rest[r.taken as usize..];
            if r.ended {
                break;
            }
        }
        assert_eq!(f.take_info().unwrap().md5_ok, Some(false));
        // Not JSON.
        let mut g = 5u32.to_le_bytes().to_vec();
        g.extend_from_slice(b"hello");
        assert!(frame("json-header", &g, 9)
            .unwrap_err()
            .1
            .contains("not JSON"));
    }

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

    #[test]
    fn tls_records() {
        let mut d = vec![22, 3, 1, 0, 2, 0xaa, 0xbb, 23, 3, 3, 0, 1, 0];
        assert_eq!(frame("tls", &d, 1).unwrap(), vec![7, 6]);
        d[7] = 99;
        assert!(frame("tls", &d, 1).is_err());
    }

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
