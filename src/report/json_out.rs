//! Hand-written JSON for the report entries that dominate a run's output: stream
//! directions (their segment lists are most of a large report), UDP flows and
//! connections.
//!
//! Why: through serde derive and `serde_json`, every field name of every segment went
//! through the string escaper and every value through a dynamic `Write`; on the 1 GB
//! benchmark capture (1.7 million segments, 160 MB of stream entries) that was about a
//! sixth of an `--all --json` run. Here field names are byte literals and numbers are
//! formatted with `itoa` straight into a byte buffer.
//!
//! Contract: the bytes are exactly what `serde_json::to_writer` writes for the same value
//! (compact, fields in declaration order, the same `skip_serializing_if` rules, the same
//! string escapes). The serde derive stays the schema and the reading path; the tests
//! below compare both writers on entries exercising every optional field, and
//! tests/streams_thread.rs and the fixtures compare whole reports. A field added to
//! these types must be added here too (the tests build the entries with every field set,
//! so a missing one fails them).
//!
//! Rare or small parts (gap, conflict, mismatch and message-info objects, the stats) are
//! written through `serde_json` into the same buffer: same bytes, no second code to keep
//! in step. Floats go through `serde_json`'s own formatter (`null` when not finite, as
//! `serde_json` writes them), so they are its bytes whatever float printer it uses.

use std::io;

use serde::Serialize;
use serde_json::ser::{CompactFormatter, Formatter};

use super::conns::{
    AnomaliesEntry, ConnEntry, HandshakeEntry, StepEntry, TcpStateEntry, TeardownEntry,
};
use super::streams::{DatagramEntry, MessageEntry, SegmentEntry, StreamEntry, UdpFlowEntry};
use super::TcpOptionsEntry;

/// Where a hand-written entry goes: a byte buffer, plus a checkpoint called between the
/// items of long lists, which may move the buffer's bytes on (to a file) or refuse to let
/// the entry grow (the staging area of a keyed file).
pub struct JsonOut<'a> {
    pub buf: &'a mut Vec<u8>,
    pub check: &'a mut dyn FnMut(&mut Vec<u8>) -> io::Result<()>,
}

impl JsonOut<'_> {
    #[inline]
    fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    #[inline]
    fn u64(&mut self, n: u64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
    }

    #[inline]
    fn i64(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
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

    #[inline]
    fn check(&mut self) -> io::Result<()> {
        (self.check)(self.buf)
    }

    fn u64_list(&mut self, v: &[u64]) {
        self.raw(b"[");
        for (i, &n) in v.iter().enumerate() {
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

impl WriteJson for SegmentEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"frame\":");
        o.u64(self.frame);
        o.raw(b",\"offset\":");
        o.u64(self.offset);
        o.raw(b",\"len\":");
        o.u64(self.len);
        o.raw(b",\"messages\":");
        o.u64_list(&self.messages);
        o.raw(b",\"parts\":[");
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                o.raw(b",");
            }
            o.raw(b"\"");
            o.raw(p.name().as_bytes());
            o.raw(b"\"");
        }
        o.raw(b"]");
        if self.messages_total != 0 {
            o.raw(b",\"messages_total\":");
            o.u64(self.messages_total);
        }
        if self.coalescing {
            o.raw(b",\"coalescing\":true");
        }
        if self.oversized {
            o.raw(b",\"oversized\":true");
        }
        if let Some(n) = self.new_bytes {
            o.raw(b",\"new_bytes\":");
            o.u64(n);
        }
        if let Some(n) = self.captured {
            o.raw(b",\"captured\":");
            o.u64(n);
        }
        if self.out_of_order {
            o.raw(b",\"out_of_order\":true");
        }
        o.raw(b"}");
        Ok(())
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
        o.raw(b"{\"conn\":");
        o.u64(self.conn);
        o.raw(b",\"dir\":");
        o.str(&self.dir);
        o.raw(b",\"orig\":");
        o.str(&self.orig);
        o.raw(b",\"resp\":");
        o.str(&self.resp);
        o.raw(b",\"bytes\":");
        o.u64(self.bytes);
        o.raw(b",\"stream_len\":");
        o.u64(self.stream_len);
        o.raw(b",\"first_frame\":");
        o.u64(self.first_frame);
        o.raw(b",\"last_frame\":");
        o.u64(self.last_frame);
        o.raw(b",\"isn\":");
        o.opt_u64(self.isn.map(u64::from));
        o.raw(b",\"base_seq\":");
        o.u64(u64::from(self.base_seq));
        o.raw(b",\"midstream\":");
        o.bool(self.midstream);
        if let Some(f) = self.syn_frame {
            o.raw(b",\"syn_frame\":");
            o.u64(f);
        }
        if let Some(fin) = &self.fin {
            o.raw(b",\"fin\":{\"frame\":");
            o.u64(fin.frame);
            o.raw(b",\"offset\":");
            o.u64(fin.offset);
            o.raw(b"}");
        }
        if let Some(f) = self.rst_frame {
            o.raw(b",\"rst_frame\":");
            o.u64(f);
        }
        o.raw(b",\"gaps\":");
        o.serde_list(&self.gaps)?;
        o.raw(b",\"gaps_total\":{\"count\":");
        o.u64(self.gaps_total.count);
        o.raw(b",\"bytes\":");
        o.u64(self.gaps_total.bytes);
        o.raw(b"},\"framing\":");
        o.str(&self.framing);
        o.raw(b",\"framing_reason\":");
        o.str(&self.framing_reason);
        if let Some(e) = &self.framing_error {
            o.raw(b",\"framing_error\":");
            o.serde(e)?;
        }
        o.raw(b",\"unframed_bytes\":");
        o.u64(self.unframed_bytes);
        o.raw(b",\"mss\":");
        o.opt_u64(self.mss.map(u64::from));
        o.raw(b",\"mss_source\":");
        o.str(&self.mss_source);
        o.raw(b",\"oversized_segments\":");
        o.u64(self.oversized_segments);
        o.raw(b",\"segments\":");
        list(o, &self.segments)?;
        o.raw(b",\"messages\":");
        list(o, &self.messages)?;
        if let Some(c) = &self.lists_cut {
            o.raw(b",\"lists_cut\":");
            o.serde(c)?;
        }
        o.raw(b",\"stats\":");
        o.serde(&self.stats)?;
        o.raw(b",\"reassembly\":");
        o.serde(&self.reassembly)?;
        o.raw(b",\"conflicts\":");
        o.serde_list(&self.conflicts)?;
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for DatagramEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"frame\":");
        o.u64(self.frame);
        o.raw(b",\"len\":");
        o.u64(self.len);
        o.raw(b",\"fragments\":");
        o.u64_list(&self.fragments);
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for UdpFlowEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"flow\":");
        o.u64(self.flow);
        o.raw(b",\"orig\":");
        o.str(&self.orig);
        o.raw(b",\"resp\":");
        o.str(&self.resp);
        o.raw(b",\"dir\":");
        o.str(&self.dir);
        o.raw(b",\"datagrams\":");
        list(o, &self.datagrams)?;
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

impl WriteJson for StepEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"frame\":");
        o.u64(self.frame);
        o.raw(b",\"dir\":");
        o.str(&self.dir);
        o.raw(b",\"t_ms\":");
        o.f64(self.t_ms);
        o.raw(b",\"flags\":");
        o.str(&self.flags);
        o.raw(b",\"seq\":");
        o.u64(u64::from(self.seq));
        o.raw(b",\"ack\":");
        o.u64(u64::from(self.ack));
        o.raw(b",\"rel_seq\":");
        o.i64(self.rel_seq);
        o.raw(b",\"rel_ack\":");
        o.i64(self.rel_ack);
        o.raw(b",\"len\":");
        o.u64(u64::from(self.len));
        o.raw(b",\"what\":");
        o.str(&self.what);
        if let Some(n) = self.expected_ack {
            o.raw(b",\"expected_ack\":");
            o.u64(u64::from(n));
        }
        if let Some(v) = self.ack_ok {
            o.raw(b",\"ack_ok\":");
            o.bool(v);
        }
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for TcpOptionsEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        // Every field may be skipped: a comma before each but the first written.
        o.raw(b"{");
        let mut first = true;
        let mut field = |o: &mut JsonOut<'_>, name: &[u8]| {
            if !first {
                o.raw(b",");
            }
            first = false;
            o.raw(name);
        };
        if let Some(n) = self.mss {
            field(o, b"\"mss\":");
            o.u64(u64::from(n));
        }
        if let Some(n) = self.window_scale {
            field(o, b"\"window_scale\":");
            o.u64(u64::from(n));
        }
        if self.sack_permitted {
            field(o, b"\"sack_permitted\":true");
        }
        if self.sack_blocks != 0 {
            field(o, b"\"sack_blocks\":");
            o.u64(u64::from(self.sack_blocks));
        }
        if let Some(n) = self.tsval {
            field(o, b"\"tsval\":");
            o.u64(u64::from(n));
        }
        if let Some(n) = self.tsecr {
            field(o, b"\"tsecr\":");
            o.u64(u64::from(n));
        }
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for HandshakeEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"outcome\":");
        o.str(&self.outcome);
        o.raw(b",\"syn_frames\":");
        o.u64_list(&self.syn_frames);
        o.raw(b",\"synack_frame\":");
        o.opt_u64(self.synack_frame);
        o.raw(b",\"ack_frame\":");
        o.opt_u64(self.ack_frame);
        o.raw(b",\"rst_frame\":");
        o.opt_u64(self.rst_frame);
        o.raw(b",\"orig_isn\":");
        o.opt_u64(self.orig_isn.map(u64::from));
        o.raw(b",\"resp_isn\":");
        o.opt_u64(self.resp_isn.map(u64::from));
        o.raw(b",\"syn_retransmissions\":");
        o.u64(self.syn_retransmissions);
        o.raw(b",\"rtt_ms\":{\"syn_to_synack\":");
        o.opt_f64(self.rtt_ms.syn_to_synack);
        o.raw(b",\"synack_to_ack\":");
        o.opt_f64(self.rtt_ms.synack_to_ack);
        o.raw(b"},\"synack_retransmissions\":");
        o.u64(self.synack_retransmissions);
        o.raw(b",\"acks_verified\":");
        o.bool(self.acks_verified);
        o.raw(b",\"mismatches\":");
        o.serde_list(&self.mismatches)?;
        if let Some(opt) = &self.orig_options {
            o.raw(b",\"orig_options\":");
            opt.write_json(o)?;
        }
        if let Some(opt) = &self.resp_options {
            o.raw(b",\"resp_options\":");
            opt.write_json(o)?;
        }
        o.raw(b",\"syn_data_bytes\":");
        o.u64(self.syn_data_bytes);
        o.raw(b",\"steps\":");
        list(o, &self.steps)?;
        o.raw(b",\"steps_dropped\":");
        o.u64(u64::from(self.steps_dropped));
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for TeardownEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"kind\":");
        o.str(&self.kind);
        o.raw(b",\"initiator\":");
        match &self.initiator {
            Some(s) => o.str(s),
            None => o.raw(b"null"),
        }
        o.raw(b",\"frames\":");
        o.u64_list(&self.frames);
        o.raw(b",\"steps\":");
        list(o, &self.steps)?;
        o.raw(b",\"steps_dropped\":");
        o.u64(u64::from(self.steps_dropped));
        o.raw(b",\"fin_to_last_ack_ms\":");
        o.opt_f64(self.fin_to_last_ack_ms);
        o.raw(b",\"half_close_bytes\":");
        o.u64(self.half_close_bytes);
        o.raw(b",\"notes\":[");
        for (i, n) in self.notes.iter().enumerate() {
            if i > 0 {
                o.raw(b",");
            }
            o.str(n);
        }
        o.raw(b"]}");
        Ok(())
    }
}

impl WriteJson for AnomaliesEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"retransmissions\":");
        o.u64(self.retransmissions);
        o.raw(b",\"out_of_order\":");
        o.u64(self.out_of_order);
        o.raw(b",\"dup_acks\":");
        o.u64(self.dup_acks);
        o.raw(b",\"zero_window\":");
        o.u64(self.zero_window);
        o.raw(b",\"keep_alives\":");
        o.u64(self.keep_alives);
        o.raw(b",\"lost_segments\":");
        o.u64(self.lost_segments);
        o.raw(b",\"missed_bytes\":");
        o.u64(self.missed_bytes);
        o.raw(b",\"retransmitted_bytes\":");
        o.u64(self.retransmitted_bytes);
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for TcpStateEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"orig\":");
        o.str(&self.orig);
        o.raw(b",\"resp\":");
        o.str(&self.resp);
        o.raw(b"}");
        Ok(())
    }
}

impl WriteJson for ConnEntry {
    fn write_json(&self, o: &mut JsonOut<'_>) -> io::Result<()> {
        o.raw(b"{\"id\":");
        o.u64(self.id);
        o.raw(b",\"proto\":");
        o.str(&self.proto);
        o.raw(b",\"orig\":");
        o.str(&self.orig);
        o.raw(b",\"resp\":");
        o.str(&self.resp);
        o.raw(b",\"first_frame\":");
        o.u64(self.first_frame);
        o.raw(b",\"last_frame\":");
        o.u64(self.last_frame);
        o.raw(b",\"start\":");
        o.f64(self.start);
        o.raw(b",\"start_ns\":");
        o.i64(self.start_ns);
        o.raw(b",\"duration_s\":");
        o.f64(self.duration_s);
        o.raw(b",\"conn_state\":");
        o.str(&self.conn_state);
        o.raw(b",\"history\":");
        o.str(&self.history);
        o.raw(b",\"orig_pkts\":");
        o.u64(self.orig_pkts);
        o.raw(b",\"resp_pkts\":");
        o.u64(self.resp_pkts);
        o.raw(b",\"orig_bytes\":");
        o.u64(self.orig_bytes);
        o.raw(b",\"resp_bytes\":");
        o.u64(self.resp_bytes);
        o.raw(b",\"missed_bytes\":");
        o.u64(self.missed_bytes);
        o.raw(b",\"orig_ip_bytes\":");
        o.u64(self.orig_ip_bytes);
        o.raw(b",\"resp_ip_bytes\":");
        o.u64(self.resp_ip_bytes);
        o.raw(b",\"orig_payload_bytes\":");
        o.u64(self.orig_payload_bytes);
        o.raw(b",\"resp_payload_bytes\":");
        o.u64(self.resp_payload_bytes);
        o.raw(b",\"orig_by\":");
        o.str(&self.orig_by);
        o.raw(b",\"orig_guessed\":");
        o.bool(self.orig_guessed);
        o.raw(b",\"finalized_by\":");
        o.str(&self.finalized_by);
        if let Some(v) = self.vlan {
            o.raw(b",\"vlan\":");
            o.u64(u64::from(v));
        }
        if let Some(h) = &self.handshake {
            o.raw(b",\"handshake\":");
            h.write_json(o)?;
        }
        if let Some(t) = &self.teardown {
            o.raw(b",\"teardown\":");
            t.write_json(o)?;
        }
        if let Some(a) = &self.anomalies {
            o.raw(b",\"anomalies\":");
            a.write_json(o)?;
        }
        if let Some(t) = &self.tcp_state {
            o.raw(b",\"tcp_state\":");
            t.write_json(o)?;
        }
        o.raw(b"}");
        Ok(())
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
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::conns::{MismatchEntry, RttEntry};
    use crate::report::streams::{
        ConflictEntry, FinEntry, FramingError, GapEntry, GapTotals, ListsCut, MessageInfo,
        MessagePart, ReassemblyStats, StreamStats,
    };

    fn same<T: WriteJson>(v: &T) {
        let want = serde_json::to_vec(v).unwrap();
        let mut got = Vec::new();
        to_vec(v, &mut got).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
    }

    /// Strings with everything `serde_json` escapes, and what it does not.
    const NASTY: &str = "a\"b\\c\u{0}\u{1f}\u{8}\t\n\u{c}\r\u{7f}/é€😀 <>&'";

    fn segment(i: u64) -> SegmentEntry {
        SegmentEntry {
            frame: i,
            offset: i * 1000,
            len: u64::MAX - i,
            messages: (0..i % 3).collect(),
            parts: [
                MessagePart::Whole,
                MessagePart::Head,
                MessagePart::Middle,
                MessagePart::Tail,
            ][..(i % 5) as usize]
                .to_vec(),
            messages_total: if i.is_multiple_of(2) { 0 } else { i },
            coalescing: i.is_multiple_of(3),
            oversized: i.is_multiple_of(4),
            new_bytes: i.is_multiple_of(5).then_some(i),
            captured: i.is_multiple_of(6).then_some(0),
            out_of_order: i.is_multiple_of(7),
        }
    }

    fn message(i: u64) -> MessageEntry {
        let mut header = BTreeMap::new();
        header.insert("k\n".to_string(), NASTY.to_string());
        MessageEntry {
            index: i,
            offset: i,
            len: 7,
            segments: (0..i % 4).collect(),
            segments_total: i % 2,
            split: i.is_multiple_of(3),
            coalesced: i.is_multiple_of(5),
            complete: !i.is_multiple_of(4),
            gap_bytes: i % 3,
            info: i.is_multiple_of(2).then(|| MessageInfo {
                summary: Some(NASTY.into()),
                header: Some(header),
                header_len: Some(3),
                body: None,
                body_len: Some(0),
                md5: None,
                md5_ok: Some(false),
                md5_unverifiable: i.is_multiple_of(4),
            }),
        }
    }

    fn stream(i: u64) -> StreamEntry {
        let on = i.is_multiple_of(2);
        StreamEntry {
            conn: i,
            dir: "orig".into(),
            orig: "10.0.0.1:80".into(),
            resp: "[::1]:443".into(),
            bytes: i,
            stream_len: i + 1,
            first_frame: 1,
            last_frame: u64::MAX,
            isn: on.then_some(u32::MAX),
            base_seq: 7,
            midstream: !on,
            syn_frame: on.then_some(3),
            fin: on.then_some(FinEntry {
                frame: 9,
                offset: 10,
            }),
            rst_frame: on.then_some(11),
            gaps: if on {
                vec![
                    GapEntry {
                        offset: 1,
                        len: 2,
                        reason: "lost".into(),
                        after_frame: Some(4),
                    },
                    GapEntry {
                        offset: 5,
                        len: 6,
                        reason: NASTY.into(),
                        after_frame: None,
                    },
                ]
            } else {
                Vec::new()
            },
            gaps_total: GapTotals { count: 2, bytes: 8 },
            framing: "len32le".into(),
            framing_reason: NASTY.into(),
            framing_error: on.then(|| FramingError {
                offset: 3,
                frame: None,
                reason: NASTY.into(),
            }),
            unframed_bytes: 12,
            mss: on.then_some(u16::MAX),
            mss_source: "syn".into(),
            oversized_segments: 13,
            segments: (0..if on { 50 } else { 0 }).map(segment).collect(),
            messages: (0..if on { 20 } else { 1 }).map(message).collect(),
            lists_cut: on.then_some(ListsCut {
                cap: 1,
                segments_total: 2,
                messages_total: 3,
            }),
            stats: StreamStats {
                messages: 1,
                split_messages: 2,
                coalesced_messages: 3,
                coalescing_segments: 4,
                max_messages_per_segment: 5,
                max_segments_per_message: 6,
                segments: 7,
                incomplete_messages: 8,
            },
            reassembly: ReassemblyStats {
                payload_segments: 1,
                buffered_peak: 2,
                gaps_from_cap: 3,
                ..Default::default()
            },
            conflicts: if on {
                vec![ConflictEntry {
                    frame: 1,
                    offset: 2,
                    bytes: 3,
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn hand_written_json_is_serde_json_byte_for_byte() {
        for i in 0..60 {
            same(&segment(i));
            same(&message(i));
        }
        for i in 0..4 {
            same(&stream(i));
        }
        same(&StreamEntry::default());
        for i in 0..4u64 {
            same(&UdpFlowEntry {
                flow: i,
                orig: NASTY.into(),
                resp: "1.2.3.4:5".into(),
                dir: "resp".into(),
                datagrams: (0..i)
                    .map(|k| DatagramEntry {
                        frame: k,
                        len: k * 3,
                        fragments: (0..k).collect(),
                    })
                    .collect(),
                datagrams_total: i,
                bytes: 1,
                fragmented: 2,
                max_len: 3,
            });
        }
        // Every control character and the characters around the escaped ones.
        let all: String = (0u32..0x100).filter_map(char::from_u32).collect();
        let mut got = Vec::new();
        write_str(&mut got, &all);
        assert_eq!(got, serde_json::to_vec(&all).unwrap());
        // One byte to escape (or none) at every place of strings around the widths the
        // escape check works in.
        for len in 0..70 {
            for at in 0..=len {
                for c in ['"', '\\', '\n', '\u{1f}', '\u{7f}', 'é', ' '] {
                    let s: String = (0..len).map(|i| if i == at { c } else { 'a' }).collect();
                    got.clear();
                    write_str(&mut got, &s);
                    assert_eq!(got, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    /// Floats `serde_json` writes in its own ways: exponents, the shortest round trip,
    /// signed zero, subnormals, and `null` for what JSON cannot hold.
    const FLOATS: [f64; 16] = [
        0.0,
        -0.0,
        1.0,
        0.1,
        -2.5,
        1e15,
        1e16,
        1.5e17,
        1e-7,
        123_456.789_012_345,
        1_764_113_062.793_805,
        f64::MAX,
        f64::MIN_POSITIVE / 4.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];

    fn float(i: u64) -> f64 {
        FLOATS[(i % FLOATS.len() as u64) as usize]
    }

    fn step(i: u64) -> StepEntry {
        StepEntry {
            frame: i,
            dir: if i.is_multiple_of(2) { "orig" } else { NASTY }.into(),
            t_ms: float(i),
            flags: "SA".into(),
            seq: u32::MAX - i as u32,
            ack: i as u32,
            rel_seq: -(i as i64),
            rel_ack: i64::MIN + i as i64,
            len: i as u32,
            what: "syn".into(),
            expected_ack: i.is_multiple_of(3).then_some(u32::MAX),
            ack_ok: (!i.is_multiple_of(5)).then_some(i.is_multiple_of(2)),
        }
    }

    fn options(i: u64) -> TcpOptionsEntry {
        // Bit k of i says whether field k is set: all 64 combinations.
        let on = |k: u32| i & (1 << k) != 0;
        TcpOptionsEntry {
            mss: on(0).then_some(u16::MAX),
            window_scale: on(1).then_some(14),
            sack_permitted: on(2),
            sack_blocks: if on(3) { 3 } else { 0 },
            tsval: on(4).then_some(u32::MAX),
            tsecr: on(5).then_some(0),
        }
    }

    fn conn(i: u64) -> ConnEntry {
        let on = |k: u32| i & (1 << k) != 0;
        ConnEntry {
            id: i,
            proto: if on(0) { "tcp" } else { "udp" }.into(),
            orig: "10.0.0.1:80".into(),
            resp: if on(1) { NASTY } else { "[::1]:443" }.into(),
            first_frame: 1,
            last_frame: u64::MAX,
            start: float(i),
            start_ns: if on(2) { i64::MIN } else { i64::MAX },
            duration_s: float(i + 7),
            conn_state: "SF".into(),
            history: if on(3) { "ShADadFf" } else { "" }.into(),
            orig_pkts: 1,
            resp_pkts: 2,
            orig_bytes: 3,
            resp_bytes: 4,
            missed_bytes: 5,
            orig_ip_bytes: 6,
            resp_ip_bytes: 7,
            orig_payload_bytes: 8,
            resp_payload_bytes: u64::MAX,
            orig_by: "server-port".into(),
            orig_guessed: on(1),
            finalized_by: NASTY.into(),
            vlan: on(4).then_some(u16::MAX),
            handshake: on(5).then(|| HandshakeEntry {
                outcome: "complete".into(),
                syn_frames: (0..i % 3).collect(),
                synack_frame: on(6).then_some(2),
                ack_frame: on(7).then_some(3),
                rst_frame: on(8).then_some(4),
                orig_isn: on(6).then_some(u32::MAX),
                resp_isn: on(7).then_some(0),
                syn_retransmissions: i,
                rtt_ms: RttEntry {
                    syn_to_synack: on(8).then(|| float(i)),
                    synack_to_ack: on(6).then(|| float(i + 3)),
                },
                synack_retransmissions: 1,
                acks_verified: on(7),
                mismatches: (0..i % 3)
                    .map(|k| MismatchEntry {
                        frame: k,
                        field: NASTY.into(),
                        expected: u32::MAX,
                        got: 0,
                    })
                    .collect(),
                orig_options: on(8).then(|| options(i)),
                resp_options: on(6).then(|| options(i / 3)),
                syn_data_bytes: 9,
                steps: (0..i % 5).map(step).collect(),
                steps_dropped: u32::MAX,
            }),
            teardown: on(6).then(|| TeardownEntry {
                kind: "fin-4way".into(),
                initiator: on(7).then(|| NASTY.to_string()),
                frames: (0..i % 4).collect(),
                steps: (0..i % 4).map(|k| step(k + i)).collect(),
                steps_dropped: 0,
                fin_to_last_ack_ms: on(8).then(|| float(i + 5)),
                half_close_bytes: 10,
                notes: (0..i % 3).map(|k| format!("{NASTY}{k}")).collect(),
            }),
            anomalies: on(7).then_some(AnomaliesEntry {
                retransmissions: 1,
                out_of_order: 2,
                dup_acks: 3,
                zero_window: 4,
                keep_alives: 5,
                lost_segments: 6,
                missed_bytes: 7,
                retransmitted_bytes: u64::MAX,
            }),
            tcp_state: on(8).then(|| TcpStateEntry {
                orig: "S1".into(),
                resp: NASTY.into(),
            }),
        }
    }

    /// Connection entries with every optional part present and absent (bit k of the index
    /// switches part k), every float case and escaped strings.
    #[test]
    fn hand_written_conn_json_is_serde_json_byte_for_byte() {
        for i in 0..64 {
            same(&options(i));
        }
        for i in 0..40 {
            same(&step(i));
        }
        for i in 0..1024 {
            same(&conn(i));
        }
    }

    /// The checkpoint runs between list items and can stop the entry.
    #[test]
    fn checkpoint_can_refuse() {
        let e = stream(0);
        let mut buf = Vec::new();
        let mut calls = 0;
        let mut check = |b: &mut Vec<u8>| {
            calls += 1;
            if b.len() > 500 {
                Err(io::Error::other("over"))
            } else {
                Ok(())
            }
        };
        let r = e.write_json(&mut JsonOut {
            buf: &mut buf,
            check: &mut check,
        });
        assert!(r.is_err());
        assert!(calls > 1);
    }
}
