//! Hand-written JSON for the report entries that dominate a run's output: stream
//! directions (their segment lists are most of a large report), UDP flows and
//! connections.
//!
//! Why: through serde derive and `serde_json`, every field name of every segment went
//! through the string escaper and every value through a dynamic `Write`; on the 1 GB
//! benchmark capture (1.7 million segments, 160 MB of stream entries) that was about a
//! sixth of an `--all --json` run. Here field names are byte literals and numbers are
//! formatted straight into a byte buffer ([`push_u64`]).
//!
//! Contract: the bytes are exactly what `serde_json::to_writer` writes for the same value
//! (compact, fields in declaration order, the same `skip_serializing_if` rules, the same
//! string escapes). The serde derive stays the schema and the reading path; the tests
//! (`tests.rs`) compare both writers on entries exercising every optional field, and
//! tests/streams_thread.rs and the fixtures compare whole reports. A field added to
//! these types must be added here too (the tests build the entries with every field set,
//! so a missing one fails them).
//!
//! Rare or small parts (gap, conflict, mismatch and message-info objects, the stats) are
//! written through `serde_json` into the same buffer: same bytes, no second code to keep
//! in step. Floats go through `serde_json`'s own formatter (`null` when not finite, as
//! `serde_json` writes them), so they are its bytes whatever float printer it uses.
//!
//! The stream and UDP flow writers are here; the connection writers are in `conns.rs`.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use super::streams::{
    DatagramEntry, MessageEntry, MessagePart, SegmentEntry, StreamEntry, UdpFlowEntry,
};

mod conns;

/// Where a hand-written entry goes: a byte buffer, plus a checkpoint called between the
/// items of long lists, which may move the buffer's bytes on (to a file) or refuse to let
/// the entry grow (the staging area of a keyed file).
pub struct JsonOut<'a> {
    pub buf: &'a mut Vec<u8>,
    pub check: &'a mut dyn FnMut(&mut Vec<u8>) -> io::Result<()>,
}

impl JsonOut<'_> {
    /// Appends bytes that are JSON already (punctuation, keys, finished values).
    #[inline]
    pub fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    #[inline]
    fn u64(&mut self, n: u64) {
        push_u64(self.buf, n);
    }

    #[inline]
    fn i64(&mut self, n: i64) {
        if n < 0 {
            self.buf.push(b'-');
        }
        push_u64(self.buf, n.unsigned_abs());
    }

    /// An `f64` as `serde_json` writes it: its formatter's digits, `null` when not finite.
    fn f64(&mut self, v: f64) {
        if v.is_finite() {
            // Writing into a `Vec` cannot fail.
            let _ = CompactFormatter.write_f64(self.buf, v);
        } else {
            self.raw(b"null");
        }
    }

    fn opt_f64(&mut self, v: Option<f64>) {
        match v {
            Some(x) => self.f64(x),
            None => self.raw(b"null"),
        }
    }

    #[inline]
    fn bool(&mut self, v: bool) {
        self.raw(if v { b"true" } else { b"false" });
    }

    fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            Some(n) => self.u64(n),
            None => self.raw(b"null"),
        }
    }

    /// A JSON string, escaped as `serde_json` escapes it.
    fn str(&mut self, s: &str) {
        write_str(self.buf, s);
    }

    /// Any value, through `serde_json` (rare or small parts).
    fn serde<T: Serialize + ?Sized>(&mut self, v: &T) -> io::Result<()> {
        serde_json::to_writer(&mut *self.buf, v).map_err(io::Error::other)
    }

    /// The checkpoint: call between the items of a long list.
    #[inline]
    pub fn check(&mut self) -> io::Result<()> {
        (self.check)(self.buf)
    }

    fn u64_list(&mut self, v: &[u64]) {
        self.u64_iter(v.iter().copied());
    }

    /// A list of numbers, brackets included.
    fn u64_iter(&mut self, v: impl Iterator<Item = u64>) {
        self.raw(b"[");
        for (i, n) in v.enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.u64(n);
        }
        self.raw(b"]");
    }

    /// A list of serde values, with a checkpoint after each.
    fn serde_list<T: Serialize>(&mut self, v: &[T]) -> io::Result<()> {
        self.raw(b"[");
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.serde(x)?;
            self.check()?;
        }
        self.raw(b"]");
        Ok(())
    }
}

/// `serde_json`'s escape of byte `b` in a string: 0 (none), `u` (\u00XX) or the letter
/// after the backslash.
#[inline]
fn escape(b: u8) -> u8 {
    match b {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x09 => b't',
        0x0a => b'n',
        0x0c => b'f',
        0x0d => b'r',
        0x00..=0x1f => b'u',
        _ => 0,
    }
}

/// Appends `n` in decimal.
///
/// Why not `itoa` plus a copy: the numbers here are mostly short (frames, offsets,
/// lengths), and copying `itoa`'s variable-length result called libc's `memcpy` for each
/// one (1.6% of all perf samples of an `--all --json` run, from the segment writer alone,
/// on the 100 MB benchmark capture). Nor digits formatted into a stack array and copied
/// from there as a fixed 20 bytes (the previous way): that copy loads 16 bytes that the
/// digit stores wrote a moment before, in pieces, which the CPU cannot forward from its
/// store buffer, and perf put two thirds of this function's samples on it (3.9% of the
/// run's). So the output grows by a fixed 20 zero bytes (a store the compiler inlines),
/// is cut to the number's length, and the digits are stored into it, right to left.
#[inline]
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    /// `u64::MAX` has 20 digits.
    const MAX: usize = 20;
    let len = n.checked_ilog10().map_or(1, |d| d as usize + 1);
    let start = out.len();
    out.extend_from_slice(&[0; MAX]);
    out.truncate(start + len);
    let d = &mut out[start..];
    let mut i = d.len();
    let mut n = n;
    while n >= 100 {
        let r = 2 * (n % 100) as usize;
        n /= 100;
        i -= 2;
        d[i] = PAIRS[r];
        d[i + 1] = PAIRS[r + 1];
    }
    if n >= 10 {
        let r = 2 * n as usize;
        d[0] = PAIRS[r];
        d[1] = PAIRS[r + 1];
    } else {
        d[0] = b'0' + n as u8;
    }
}

/// Appends `s` as a JSON string, byte for byte as `serde_json` writes it (only `"`, `\`
/// and control characters escaped; other characters, non-ASCII included, as they are).
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most strings need no escape: a check of every byte without early exit (which the
    // compiler vectorises), then one copy.
    let any = bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if !any {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    write_escaped(out, bytes);
}

/// [`write_str`] for a string with at least one byte to escape.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let e = escape(b);
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if e == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(e);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An entry that can write itself as `serde_json` would (see the module docs).
pub trait WriteJson: Serialize {
    fn write_json(&self, out: &mut JsonOut<'_>) -> io::Result<()>;
}

/// A segment entry's fields but its message lists (see [`write_segment`]).
#[derive(Debug, Clone, Copy)]
pub struct SegmentHead {
    pub frame: u64,
    pub offset: u64,
    pub len: u64,
    pub messages_total: u64,
    pub coalescing: bool,
    pub oversized: bool,
    pub new_bytes: Option<u64>,
    pub captured: Option<u64>,
    pub out_of_order: bool,
}

/// Writes a [`SegmentEntry`] given as its other fields and its two lists as iterators: the
/// stream analysis writes each of a direction's packed segments this way when the
/// direction is finalized, without building entries ([`JsonList`]), and the entry's own
/// writer calls it too, so both write the same bytes.
pub fn write_segment(
    o: &mut JsonOut<'_>,
    h: &SegmentHead,
    messages: impl Iterator<Item = u64>,
    parts: impl Iterator<Item = MessagePart>,
) {
    o.raw(b"{\"frame\":");
    o.u64(h.frame);
    o.raw(b",\"offset\":");
    o.u64(h.offset);
    o.raw(b",\"len\":");
    o.u64(h.len);
    o.raw(b",\"messages\":");
    o.u64_iter(messages);
    o.raw(b",\"parts\":[");
    for (i, p) in parts.enumerate() {
        if i > 0 {
            o.raw(b",");
        }
        o.raw(b"\"");
        o.raw(p.name().as_bytes());
        o.raw(b"\"");
    }
    o.raw(b"]");
    if h.messages_total != 0 {
        o.raw(b",\"messages_total\":");
        o.u64(h.messages_total);
    }
    if h.coalescing {
        o.raw(b",\"coalescing\":true");
    }
    if h.oversized {
        o.raw(b",\"oversized\":true");
    }
    if let Some(n) = h.new_bytes {
        o.raw(b",\"new_bytes\":");
        o.u64(n);
    }
    if let Some(n) = h.captured {
        o.raw(b",\"captured\":");
        o.u64(n);
    }
    if h.out_of_order {
        o.raw(b",\"out_of_order\":true");
    }
    o.raw(b"}");
}

impl WriteJson for SegmentEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        let head = SegmentHead {
            frame: self.frame,
            offset: self.offset,
            len: self.len,
            messages_total: self.messages_total,
            coalescing: self.coalescing,
            oversized: self.oversized,
            new_bytes: self.new_bytes,
            captured: self.captured,
            out_of_order: self.out_of_order,
        };
        let (messages, parts) = (self.messages.iter(), self.parts.iter());
        write_segment(o, &head, messages.copied(), parts.copied());
        Ok(())
    }
}

/// A list that writes itself into a report, brackets included, calling `o.check()`
/// every few kilobytes as a list written item by item would: a stream direction's segment
/// entries kept in a form of their own until the direction is finalized (the stream
/// analysis's packed list), which the report cannot name.
pub trait JsonList {
    fn write_list(&self, o: &mut JsonOut<'_>) -> io::Result<()>;
}

/// The brackets, commas and checkpoints of a list that a [`JsonList`] writes item by item
/// from a form of its own: [`new`](Self::new), [`push`](Self::push) per item, then
/// [`end`](Self::end).
pub struct Items<'o, 'a> {
    o: &'o mut JsonOut<'a>,
    n: usize,
}

impl<'o, 'a> Items<'o, 'a> {
    /// Items between checkpoints: a hundred entries are a few KiB.
    const CHECK_EVERY: usize = 100;

    pub fn new(o: &'o mut JsonOut<'a>) -> Self {
        o.raw(b"[");
        Items { o, n: 0 }
    }

    /// One item, written by `write`; a failing checkpoint is returned.
    pub fn push(&mut self, write: impl FnOnce(&mut JsonOut<'a>)) -> io::Result<()> {
        if self.n > 0 {
            self.o.raw(b",");
        }
        write(self.o);
        self.n += 1;
        if self.n.is_multiple_of(Self::CHECK_EVERY) {
            self.o.check()?;
        }
        Ok(())
    }

    pub fn end(self) {
        self.o.raw(b"]");
    }
}

impl WriteJson for MessageEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"index\":");
        o.u64(self.index);
        o.raw(b",\"offset\":");
        o.u64(self.offset);
        o.raw(b",\"len\":");
        o.u64(self.len);
        o.raw(b",\"segments\":");
        o.u64_list(&self.segments);
        if self.segments_total != 0 {
            o.raw(b",\"segments_total\":");
            o.u64(self.segments_total);
        }
        o.raw(b",\"split\":");
        o.bool(self.split);
        o.raw(b",\"coalesced\":");
        o.bool(self.coalesced);
        if !self.complete {
            o.raw(b",\"complete\":false");
        }
        if self.gap_bytes != 0 {
            o.raw(b",\"gap_bytes\":");
            o.u64(self.gap_bytes);
        }
        if let Some(info) = &self.info {
            o.raw(b",\"info\":");
            o.serde(info)?;
        }
        o.raw(b"}");
        Ok(())
    }
}

/// A list of hand-written entries, with a checkpoint after each.
fn list<T: WriteJson>(o: &mut JsonOut<'_>, v: &[T]) -> io::Result<()> {
    o.raw(b"[");
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            o.raw(b",");
        }
        x.write_json(o)?;
        o.check()?;
    }
    o.raw(b"]");
    Ok(())
}

impl WriteJson for StreamEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        write_stream(self, None, o)
    }
}

/// A stream direction whose segment list was kept apart ([`JsonList`]) rather than in its
/// `segments` field (which is then empty): the JSON is the entry's own.
pub struct StreamWithSegments<'a> {
    pub entry: &'a StreamEntry,
    pub segments: &'a dyn JsonList,
}

impl Serialize for StreamWithSegments<'_> {
    /// As the entry it stands for (`WriteJson` asks for `Serialize`; the report writes
    /// these through `write_json`, so this slow path, which reads its own JSON back into
    /// a [`StreamEntry`], only keeps the two writers interchangeable).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        self.write_json(&mut JsonOut {
            buf: &mut buf,
            check: &mut |_| Ok(()),
        })
        .map_err(serde::ser::Error::custom)?;
        let e: StreamEntry = serde_json::from_slice(&buf).map_err(serde::ser::Error::custom)?;
        e.serialize(s)
    }
}

impl WriteJson for StreamWithSegments<'_> {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        write_stream(self.entry, Some(self.segments), o)
    }
}

/// A stream entry's JSON; `segments` replaces the entry's own list when given.
fn write_stream(
    s: &StreamEntry,
    segments: Option<&dyn JsonList>,
    o: &mut JsonOut<'_>,
) -> io::Result<()> {
    o.raw(b"{\"conn\":");
    o.u64(s.conn);
    o.raw(b",\"dir\":");
    o.str(&s.dir);
    o.raw(b",\"orig\":");
    o.str(&s.orig);
    o.raw(b",\"resp\":");
    o.str(&s.resp);
    o.raw(b",\"bytes\":");
    o.u64(s.bytes);
    o.raw(b",\"stream_len\":");
    o.u64(s.stream_len);
    o.raw(b",\"first_frame\":");
    o.u64(s.first_frame);
    o.raw(b",\"last_frame\":");
    o.u64(s.last_frame);
    o.raw(b",\"isn\":");
    o.opt_u64(s.isn.map(u64::from));
    o.raw(b",\"base_seq\":");
    o.u64(u64::from(s.base_seq));
    o.raw(b",\"midstream\":");
    o.bool(s.midstream);
    if let Some(f) = s.syn_frame {
        o.raw(b",\"syn_frame\":");
        o.u64(f);
    }
    if let Some(fin) = &s.fin {
        o.raw(b",\"fin\":{\"frame\":");
        o.u64(fin.frame);
        o.raw(b",\"offset\":");
        o.u64(fin.offset);
        o.raw(b"}");
    }
    if let Some(f) = s.rst_frame {
        o.raw(b",\"rst_frame\":");
        o.u64(f);
    }
    o.raw(b",\"gaps\":");
    o.serde_list(&s.gaps)?;
    o.raw(b",\"gaps_total\":{\"count\":");
    o.u64(s.gaps_total.count);
    o.raw(b",\"bytes\":");
    o.u64(s.gaps_total.bytes);
    o.raw(b"},\"framing\":");
    o.str(&s.framing);
    o.raw(b",\"framing_reason\":");
    o.str(&s.framing_reason);
    if let Some(e) = &s.framing_error {
        o.raw(b",\"framing_error\":");
        o.serde(e)?;
    }
    o.raw(b",\"unframed_bytes\":");
    o.u64(s.unframed_bytes);
    o.raw(b",\"mss\":");
    o.opt_u64(s.mss.map(u64::from));
    o.raw(b",\"mss_source\":");
    o.str(&s.mss_source);
    o.raw(b",\"oversized_segments\":");
    o.u64(s.oversized_segments);
    o.raw(b",\"segments\":");
    match segments {
        Some(t) => t.write_list(o)?,
        None => list(o, &s.segments)?,
    }
    o.raw(b",\"messages\":");
    list(o, &s.messages)?;
    if let Some(c) = &s.lists_cut {
        o.raw(b",\"lists_cut\":");
        o.serde(c)?;
    }
    o.raw(b",\"stats\":");
    o.serde(&s.stats)?;
    o.raw(b",\"reassembly\":");
    o.serde(&s.reassembly)?;
    o.raw(b",\"conflicts\":");
    o.serde_list(&s.conflicts)?;
    o.raw(b"}");
    Ok(())
}

/// A datagram entry's JSON from its fields: how [`DatagramEntry`] writes itself, and how
/// a datagram list kept apart ([`JsonList`]) writes its entries.
pub fn write_datagram(
    o: &mut JsonOut<'_>,
    frame: u64,
    len: u64,
    fragments: impl Iterator<Item = u64>,
) {
    o.raw(b"{\"frame\":");
    o.u64(frame);
    o.raw(b",\"len\":");
    o.u64(len);
    o.raw(b",\"fragments\":");
    o.u64_iter(fragments);
    o.raw(b"}");
}

impl WriteJson for DatagramEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        write_datagram(o, self.frame, self.len, self.fragments.iter().copied());
        Ok(())
    }
}

impl JsonList for Vec<DatagramEntry> {
    fn write_list(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        list(o, self)
    }
}

/// One direction of a UDP flow from its fields, borrowed, with its datagram list kept
/// apart ([`JsonList`]): the stream analysis writes a flow this way when nothing else
/// needs a [`UdpFlowEntry`], without an entry's three strings and decoded list per
/// direction (tens of thousands of flows end at once at the end of a capture). The JSON is
/// the [`UdpFlowEntry`]'s with the same fields.
pub struct UdpFlowParts<'a> {
    pub flow: u64,
    pub orig: &'a str,
    pub resp: &'a str,
    pub dir: &'a str,
    pub datagrams: &'a dyn JsonList,
    pub datagrams_total: u64,
    pub bytes: u64,
    pub fragmented: u64,
    pub max_len: u64,
}

impl Serialize for UdpFlowParts<'_> {
    /// As the entry it stands for (the slow path that keeps the two writers
    /// interchangeable, as for [`StreamWithSegments`]).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        to_vec(self, &mut buf).map_err(serde::ser::Error::custom)?;
        let e: UdpFlowEntry = serde_json::from_slice(&buf).map_err(serde::ser::Error::custom)?;
        e.serialize(s)
    }
}

impl WriteJson for UdpFlowParts<'_> {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"flow\":");
        o.u64(self.flow);
        o.raw(b",\"orig\":");
        o.str(self.orig);
        o.raw(b",\"resp\":");
        o.str(self.resp);
        o.raw(b",\"dir\":");
        o.str(self.dir);
        o.raw(b",\"datagrams\":");
        self.datagrams.write_list(o)?;
        o.raw(b",\"datagrams_total\":");
        o.u64(self.datagrams_total);
        o.raw(b",\"bytes\":");
        o.u64(self.bytes);
        o.raw(b",\"fragmented\":");
        o.u64(self.fragmented);
        o.raw(b",\"max_len\":");
        o.u64(self.max_len);
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for UdpFlowEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        UdpFlowParts {
            flow: self.flow,
            orig: &self.orig,
            resp: &self.resp,
            dir: &self.dir,
            datagrams: &self.datagrams,
            datagrams_total: self.datagrams_total,
            bytes: self.bytes,
            fragmented: self.fragmented,
            max_len: self.max_len,
        }
        .write_json(o)
    }
}

/// Writes `v` into `buf` with no checkpoint (tests, and callers that bound the entry
/// themselves).
pub fn to_vec<T: WriteJson>(v: &T, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut none = |_: &mut Vec<u8>| Ok(());
    v.write_json(&mut JsonOut {
        buf,
        check: &mut none,
    })
}

#[cfg(test)]
mod tests;
