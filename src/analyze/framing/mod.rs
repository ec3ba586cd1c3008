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
//!
//! This module holds the kinds, the rules, the [`Framer`] protocol and [`framer`], which
//! builds one; each framer family lives in its own module (`len`, `delim`, `json_header`,
//! `http`, `tls`), and `auto` picks a kind from a stream's first bytes ([`detect`]).

mod auto;
mod delim;
mod http;
mod json_header;
mod len;
mod tls;

use std::fmt;
use std::str::FromStr;

use crate::report::streams::MessageInfo;

pub use auto::detect;
pub use http::looks_like_http;
pub use tls::looks_like_tls;

use delim::DelimFramer;
use http::HttpFramer;
use json_header::JsonHeaderFramer;
use len::LenFramer;
use tls::TlsFramer;

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

/// Bytes as quoted text where printable, `\xNN` otherwise.
pub fn show_bytes(b: &[u8]) -> String {
    // Called for the first bytes of many messages (`MessageInfo`): the hex digits are
    // written directly, as a `format!` per byte cost ~450 instructions a call.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                s.push_str("\\x");
                s.push(char::from(HEX[usize::from(c >> 4)]));
                s.push(char::from(HEX[usize::from(c & 0xf)]));
            }
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value shows as it did through `format!` (the reference below).
    #[test]
    fn show_bytes_escapes_every_byte_value() {
        let all: Vec<u8> = (0..=255u8).collect();
        let mut want = String::from("\"");
        for &c in &all {
            match c {
                b'\r' => want.push_str("\\r"),
                b'\n' => want.push_str("\\n"),
                b'"' => want.push_str("\\\""),
                b'\\' => want.push_str("\\\\"),
                0x20..=0x7e => want.push(c as char),
                _ => want.push_str(&format!("\\x{c:02x}")),
            }
        }
        want.push('"');
        assert_eq!(show_bytes(&all), want);
        assert_eq!(show_bytes(b"a\x00\xff"), "\"a\\x00\\xff\"");
    }

    /// Feeds `data` in pieces of `piece` bytes; returns the message lengths, or the error
    /// with its offset.
    pub(super) fn frame(kind: &str, data: &[u8], piece: usize) -> Result<Vec<u64>, (u64, String)> {
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
}
