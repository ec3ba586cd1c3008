//! Zeek-format logs (`--zeek-logs DIR`): `conn.log` with Zeek's own columns, and the
//! netlens-specific `handshakes.log` and `streams.log`, in Zeek's ASCII/TSV format (the `#separator`,
//! `#set_separator`, `#empty_field`, `#unset_field`, `#path`, `#open`, `#fields`, `#types`
//! header, one row per record, `#close`), so zeek-cut, RITA and Zeek scripts read them.
//!
//! Rows are written as their events complete (a connection when finalized, a handshake
//! when it resolves, a stream direction after its connection), as Zeek writes conn.log:
//! in finalization order, not sorted. A streams.log row carries its connection's uid and
//! ts, remembered from the connection's row: a connection's stream events follow its
//! connection event in the same batch (the same frame), so the memory is cleared after
//! every frame, except at the end of input, where the tracker's batches come first and
//! the streams' after (then it holds one entry per connection still open at the end).
//!
//! Zeek's conventions are kept (base/protocols/conn/main.zeek): `duration`, `orig_bytes`
//! and `resp_bytes` are unset (`-`) unless the duration is above zero; an empty `history`
//! is unset; `missed_bytes` defaults to 0; `service`, `local_orig`, `local_resp` and
//! `tunnel_parents` are unset (netlens does no protocol detection by content, knows no
//! local networks and decapsulates no tunnels); times and intervals are seconds with six
//! decimals. Two runs over the same input write the same bytes: `uid` is a hash of the
//! connection ("C" + base62, see [`uid`]) and `#open`/`#close` are capture times (the first
//! and last frame read), not the wall clock.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::conns::{ConnEntry, HandshakeEntry};
use super::ndjson::HandshakeEvent;
use super::streams::StreamEntry;
use crate::error::{Error, Result};

/// conn.log columns and types, as Zeek 6/7 log them (base/protocols/conn/main.zeek).
pub const CONN_FIELDS: &[(&str, &str)] = &[
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("resp_bytes", "count"),
    ("conn_state", "string"),
    ("local_orig", "bool"),
    ("local_resp", "bool"),
    ("missed_bytes", "count"),
    ("history", "string"),
    ("orig_pkts", "count"),
    ("orig_ip_bytes", "count"),
    ("resp_pkts", "count"),
    ("resp_ip_bytes", "count"),
    ("tunnel_parents", "set[string]"),
    ("ip_proto", "count"),
];

/// handshakes.log columns (netlens-specific; docs/report.md, "zeek logs").
pub const HANDSHAKE_FIELDS: &[(&str, &str)] = &[
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("conn", "count"),
    ("outcome", "string"),
    ("syn_frames", "vector[count]"),
    ("synack_frame", "count"),
    ("ack_frame", "count"),
    ("rst_frame", "count"),
    ("orig_isn", "count"),
    ("resp_isn", "count"),
    ("syn_retransmissions", "count"),
    ("synack_retransmissions", "count"),
    ("syn_to_synack", "interval"),
    ("synack_to_ack", "interval"),
    ("acks_verified", "bool"),
    ("orig_mss", "count"),
    ("resp_mss", "count"),
    ("orig_wscale", "count"),
    ("resp_wscale", "count"),
    ("orig_sack_ok", "bool"),
    ("resp_sack_ok", "bool"),
    ("syn_data_bytes", "count"),
];

/// streams.log columns (netlens-specific; docs/report.md, "zeek logs").
pub const STREAM_FIELDS: &[(&str, &str)] = &[
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("conn", "count"),
    ("dir", "string"),
    ("bytes", "count"),
    ("stream_len", "count"),
    ("first_frame", "count"),
    ("last_frame", "count"),
    ("midstream", "bool"),
    ("framing", "string"),
    ("framing_reason", "string"),
    ("framing_error", "string"),
    ("unframed_bytes", "count"),
    ("mss", "count"),
    ("segments", "count"),
    ("messages", "count"),
    ("split_messages", "count"),
    ("coalesced_messages", "count"),
    ("coalescing_segments", "count"),
    ("max_messages_per_segment", "count"),
    ("max_segments_per_message", "count"),
    ("incomplete_messages", "count"),
    ("gaps", "count"),
    ("gap_bytes", "count"),
    ("retransmissions", "count"),
    ("retransmitted_bytes", "count"),
    ("out_of_order", "count"),
    ("oversized_segments", "count"),
];

const UNSET: &str = "-";
const EMPTY: &str = "(empty)";

/// Zeek's connection uid, made reproducible: "C" followed by the base62 form of 96 bits
/// of a 128-bit FNV-1a hash of the protocol, both endpoints (sorted, so a role flip keeps
/// the uid), the first packet's timestamp in nanoseconds and its frame number.
pub fn uid(proto: &str, orig: &str, resp: &str, start_ns: i64, first_frame: u64) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let (a, b) = if orig <= resp {
        (orig, resp)
    } else {
        (resp, orig)
    };
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &x in bytes {
            h ^= u128::from(x);
            h = h.wrapping_mul(PRIME);
        }
        // A separator, so ("ab","c") and ("a","bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(PRIME);
    };
    feed(proto.as_bytes());
    feed(a.as_bytes());
    feed(b.as_bytes());
    feed(&start_ns.to_le_bytes());
    feed(&first_frame.to_le_bytes());
    // 96 bits, as Zeek's uids carry.
    let mut v = h >> 32;
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut s = Vec::with_capacity(18);
    while v > 0 {
        s.push(DIGITS[(v % 62) as usize]);
        v /= 62;
    }
    s.push(b'C');
    s.reverse();
    String::from_utf8_lossy(&s).into_owned()
}

/// Splits "ip:port" / "\[v6\]:port" into address and port.
pub fn split_endpoint(ep: &str) -> (&str, &str) {
    match ep.rsplit_once(':') {
        Some((h, p)) => (h.trim_start_matches('[').trim_end_matches(']'), p),
        None => (ep, UNSET),
    }
}

/// Seconds since the epoch with six decimals, from nanoseconds (rounded to the µs).
pub fn time(ns: i64) -> String {
    let us = ns.div_euclid(1000) + i64::from(ns.rem_euclid(1000) >= 500);
    // Sign and magnitude, as printf's %.6f shows a time before 1970.
    let sign = if us < 0 { "-" } else { "" };
    let m = us.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// `%Y-%m-%d-%H-%M-%S` (UTC) of a capture time, as in `#open`/`#close`.
fn stamp(ns: i64) -> String {
    // table::utc gives "YYYY-MM-DD HH:MM:SS.ffffff UTC".
    let u = super::table::utc(ns);
    let day = u.get(..10).unwrap_or("1970-01-01");
    let clock = u.get(11..19).unwrap_or("00:00:00").replace(':', "-");
    format!("{day}-{clock}")
}

/// Escapes a string field as Zeek's ASCII writer does (threading/formatters/Ascii.cc):
/// the tab separator and non-printable bytes as `\xHH`, a backslash doubled; an empty
/// string is `(empty)`, and a value equal to the unset or empty marker gets its first
/// character escaped. The set separator (`,`) is escaped only inside sets and vectors.
pub fn escape(s: &str) -> String {
    if s.is_empty() {
        return EMPTY.into();
    }
    if s == UNSET {
        return "\\x2d".into();
    }
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    if o == EMPTY {
        return "\\x28empty)".into();
    }
    o
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| UNSET.to_string(), |x| x.to_string())
}

fn boolean(b: bool) -> &'static str {
    if b {
        "T"
    } else {
        "F"
    }
}

fn secs_of_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| UNSET.to_string(), |m| format!("{:.6}", m / 1000.0))
}

/// One log file: the header goes out with the first row or at the end, stamped with the
/// capture time of the first frame the run read.
struct Log {
    path: PathBuf,
    name: &'static str,
    fields: &'static [(&'static str, &'static str)],
    w: BufWriter<File>,
    opened: bool,
    row: String,
}

impl Log {
    fn create(dir: &Path, name: &'static str, fields: &'static [(&str, &str)]) -> io::Result<Log> {
        let path = dir.join(format!("{name}.log"));
        let f = File::create(&path)?;
        Ok(Log {
            path,
            name,
            fields,
            w: BufWriter::with_capacity(1 << 16, f),
            opened: false,
            row: String::new(),
        })
    }

    fn open(&mut self, open_ns: i64) -> io::Result<()> {
        if self.opened {
            return Ok(());
        }
        self.opened = true;
        let w = &mut self.w;
        writeln!(w, "#separator \\x09")?;
        writeln!(w, "#set_separator\t,")?;
        writeln!(w, "#empty_field\t{EMPTY}")?;
        writeln!(w, "#unset_field\t{UNSET}")?;
        writeln!(w, "#path\t{}", self.name)?;
        writeln!(w, "#open\t{}", stamp(open_ns))?;
        write!(w, "#fields")?;
        for (f, _) in self.fields {
            write!(w, "\t{f}")?;
        }
        write!(w, "\n#types")?;
        for (_, t) in self.fields {
            write!(w, "\t{t}")?;
        }
        writeln!(w)
    }

    /// Writes `cells` (already escaped) as one row.
    fn write_row(&mut self, open_ns: i64, cells: &[String]) -> io::Result<()> {
        debug_assert_eq!(cells.len(), self.fields.len());
        self.open(open_ns)?;
        self.row.clear();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.row.push('\t');
            }
            self.row.push_str(c);
        }
        self.row.push('\n');
        self.w.write_all(self.row.as_bytes())
    }

    fn close(&mut self, open_ns: i64, close_ns: i64) -> io::Result<()> {
        self.open(open_ns)?;
        writeln!(self.w, "#close\t{}", stamp(close_ns))?;
        self.w.flush()
    }
}

/// The Zeek log writers of one run.
pub struct ZeekLogs {
    conn: Log,
    handshakes: Log,
    streams: Log,
    /// Remember connections' (uid, ts) for their streams.log rows (streams analysis on).
    remember: bool,
    /// End of input: keep `uids` across batches.
    ending: bool,
    uids: rustc_hash::FxHashMap<u64, (String, i64)>,
    /// Capture time of the first and latest frame read.
    first_ns: Option<i64>,
    last_ns: i64,
}

fn write_err(path: &Path, source: io::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
}

impl ZeekLogs {
    /// Creates `dir` (if missing) and the log files in it.
    pub fn create(dir: &Path) -> Result<ZeekLogs> {
        std::fs::create_dir_all(dir).map_err(|e| write_err(dir, e))?;
        Ok(ZeekLogs {
            conn: Log::create(dir, "conn", CONN_FIELDS)
                .map_err(|e| write_err(&dir.join("conn.log"), e))?,
            handshakes: Log::create(dir, "handshakes", HANDSHAKE_FIELDS)
                .map_err(|e| write_err(&dir.join("handshakes.log"), e))?,
            streams: Log::create(dir, "streams", STREAM_FIELDS)
                .map_err(|e| write_err(&dir.join("streams.log"), e))?,
            remember: false,
            ending: false,
            uids: rustc_hash::FxHashMap::default(),
            first_ns: None,
            last_ns: 0,
        })
    }

    /// The capture time of a frame read (the first one stamps `#open`).
    pub fn saw_frame(&mut self, ts_ns: i64) {
        if self.first_ns.is_none() {
            self.first_ns = Some(ts_ns);
        }
        if ts_ns > self.last_ns {
            self.last_ns = ts_ns;
        }
    }

    fn open_ns(&self) -> i64 {
        self.first_ns.unwrap_or(0)
    }

    /// The stream analysis runs: streams.log rows will need their connection's uid.
    pub fn expect_streams(&mut self, on: bool) {
        self.remember = on;
    }

    /// The events of one frame were written: forget the uids kept for them.
    pub fn batch_done(&mut self) {
        if !self.ending && !self.uids.is_empty() {
            self.uids.clear();
        }
    }

    /// The end-of-input batches begin: keep uids until the streams' batches used them.
    pub fn input_ended(&mut self) {
        self.ending = true;
    }

    /// A finalized connection: one conn.log row.
    pub fn connection(&mut self, c: &ConnEntry) -> Result<()> {
        let (oh, op) = split_endpoint(&c.orig);
        let (rh, rp) = split_endpoint(&c.resp);
        let uid = uid(&c.proto, &c.orig, &c.resp, c.start_ns, c.first_frame);
        if self.remember && c.proto == "tcp" {
            self.uids.insert(c.id, (uid.clone(), c.start_ns));
        }
        // Zeek sets duration and sizes only for a duration above zero (set_conn).
        let (duration, ob, rb) = if c.duration_s > 0.0 {
            (
                format!("{:.6}", c.duration_s),
                c.orig_bytes.to_string(),
                c.resp_bytes.to_string(),
            )
        } else {
            (UNSET.into(), UNSET.into(), UNSET.into())
        };
        let cells = [
            time(c.start_ns),
            uid,
            oh.to_string(),
            op.to_string(),
            rh.to_string(),
            rp.to_string(),
            c.proto.clone(),
            UNSET.into(),
            duration,
            ob,
            rb,
            escape(&c.conn_state),
            UNSET.into(),
            UNSET.into(),
            c.missed_bytes.to_string(),
            if c.history.is_empty() {
                UNSET.into()
            } else {
                escape(&c.history)
            },
            c.orig_pkts.to_string(),
            c.orig_ip_bytes.to_string(),
            c.resp_pkts.to_string(),
            c.resp_ip_bytes.to_string(),
            UNSET.into(),
            match c.proto.as_str() {
                "tcp" => "6".into(),
                "udp" => "17".into(),
                _ => UNSET.into(),
            },
        ];
        let open = self.open_ns();
        self.conn
            .write_row(open, &cells)
            .map_err(|e| write_err(&self.conn.path, e))
    }

    /// A resolved handshake: one handshakes.log row.
    pub fn handshake(&mut self, h: &HandshakeEvent) -> Result<()> {
        let (oh, op) = split_endpoint(&h.orig);
        let (rh, rp) = split_endpoint(&h.resp);
        let hs: &HandshakeEntry = &h.handshake;
        let (oo, ro) = (hs.orig_options.as_ref(), hs.resp_options.as_ref());
        let frames = if hs.syn_frames.is_empty() {
            EMPTY.to_string()
        } else {
            hs.syn_frames
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let cells = [
            time(h.start_ns),
            uid(&h.proto, &h.orig, &h.resp, h.start_ns, h.first_frame),
            oh.to_string(),
            op.to_string(),
            rh.to_string(),
            rp.to_string(),
            h.conn.to_string(),
            escape(&hs.outcome),
            frames,
            opt(hs.synack_frame),
            opt(hs.ack_frame),
            opt(hs.rst_frame),
            opt(hs.orig_isn),
            opt(hs.resp_isn),
            hs.syn_retransmissions.to_string(),
            hs.synack_retransmissions.to_string(),
            secs_of_ms(hs.rtt_ms.syn_to_synack),
            secs_of_ms(hs.rtt_ms.synack_to_ack),
            boolean(hs.acks_verified).into(),
            opt(oo.and_then(|o| o.mss)),
            opt(ro.and_then(|o| o.mss)),
            opt(oo.and_then(|o| o.window_scale)),
            opt(ro.and_then(|o| o.window_scale)),
            opt(oo.map(|o| boolean(o.sack_permitted))),
            opt(ro.map(|o| boolean(o.sack_permitted))),
            hs.syn_data_bytes.to_string(),
        ];
        let open = self.open_ns();
        self.handshakes
            .write_row(open, &cells)
            .map_err(|e| write_err(&self.handshakes.path, e))
    }

    /// A finalized stream direction: one streams.log row.
    pub fn stream(&mut self, s: &StreamEntry) -> Result<()> {
        let (oh, op) = split_endpoint(&s.orig);
        let (rh, rp) = split_endpoint(&s.resp);
        // The second direction of a connection is its last use of the uid.
        let (uid, ts) = match self.uids.get(&s.conn) {
            Some((u, t)) => (u.clone(), time(*t)),
            None => (UNSET.to_string(), UNSET.to_string()),
        };
        if s.dir == "resp" {
            self.uids.remove(&s.conn);
        }
        let st = &s.stats;
        let r = &s.reassembly;
        let cells = [
            ts,
            uid,
            oh.to_string(),
            op.to_string(),
            rh.to_string(),
            rp.to_string(),
            s.conn.to_string(),
            escape(&s.dir),
            s.bytes.to_string(),
            s.stream_len.to_string(),
            s.first_frame.to_string(),
            s.last_frame.to_string(),
            boolean(s.midstream).into(),
            escape(&s.framing),
            escape(&s.framing_reason),
            s.framing_error.as_ref().map_or_else(
                || UNSET.to_string(),
                |e| {
                    escape(&format!(
                        "offset {} frame {}: {}",
                        e.offset,
                        opt(e.frame),
                        e.reason
                    ))
                },
            ),
            s.unframed_bytes.to_string(),
            opt(s.mss),
            st.segments.to_string(),
            st.messages.to_string(),
            st.split_messages.to_string(),
            st.coalesced_messages.to_string(),
            st.coalescing_segments.to_string(),
            st.max_messages_per_segment.to_string(),
            st.max_segments_per_message.to_string(),
            st.incomplete_messages.to_string(),
            s.gaps_total.count.to_string(),
            s.gaps_total.bytes.to_string(),
            r.retransmissions.to_string(),
            r.retransmitted_bytes.to_string(),
            r.out_of_order.to_string(),
            s.oversized_segments.to_string(),
        ];
        let open = self.open_ns();
        self.streams
            .write_row(open, &cells)
            .map_err(|e| write_err(&self.streams.path, e))
    }

    /// Flushes rows written so far (a live capture's idle moments).
    pub fn flush(&mut self) -> Result<()> {
        self.conn
            .w
            .flush()
            .map_err(|e| write_err(&self.conn.path, e))?;
        self.handshakes
            .w
            .flush()
            .map_err(|e| write_err(&self.handshakes.path, e))?;
        self.streams
            .w
            .flush()
            .map_err(|e| write_err(&self.streams.path, e))
    }

    /// Writes the headers of empty logs and every `#close` line.
    pub fn finish(&mut self) -> Result<()> {
        let (open, close) = (self.open_ns(), self.last_ns.max(self.open_ns()));
        self.conn
            .close(open, close)
            .map_err(|e| write_err(&self.conn.path, e))?;
        self.handshakes
            .close(open, close)
            .map_err(|e| write_err(&self.handshakes.path, e))?;
        self.streams
            .close(open, close)
            .map_err(|e| write_err(&self.streams.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_to_the_microsecond() {
        assert_eq!(time(1_700_000_000_123_456_789), "1700000000.123457");
        assert_eq!(time(1_700_000_000_000_000_499), "1700000000.000000");
        assert_eq!(time(-1), "0.000000");
        assert_eq!(time(-1_600), "-0.000002");
        assert_eq!(time(-2_000_400_000), "-2.000400");
    }

    #[test]
    fn uid_is_stable_and_flip_invariant() {
        let a = uid("tcp", "10.0.0.1:5", "10.0.0.2:80", 7, 3);
        assert_eq!(a, uid("tcp", "10.0.0.2:80", "10.0.0.1:5", 7, 3));
        assert_ne!(a, uid("tcp", "10.0.0.1:5", "10.0.0.2:80", 7, 4));
        assert_ne!(a, uid("udp", "10.0.0.1:5", "10.0.0.2:80", 7, 3));
        assert!(a.starts_with('C') && a.len() >= 12 && a.len() <= 18, "{a}");
        assert!(a[1..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn endpoints_and_escapes() {
        assert_eq!(split_endpoint("[fe80::1]:443"), ("fe80::1", "443"));
        assert_eq!(split_endpoint("10.0.0.1:53"), ("10.0.0.1", "53"));
        assert_eq!(escape(""), "(empty)");
        assert_eq!(escape("-"), "\\x2d");
        assert_eq!(escape("a\tb,c"), "a\\x09b,c");
        assert_eq!(escape("ShADadFf"), "ShADadFf");
    }

    #[test]
    fn stamp_is_zeeks_format() {
        assert_eq!(stamp(0), "1970-01-01-00-00-00");
        assert_eq!(stamp(1_700_000_000_000_000_000), "2023-11-14-22-13-20");
    }
}
