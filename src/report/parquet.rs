//! Parquet tables (`--parquet DIR`, cargo feature `parquet`): `connections.parquet`, one
//! row per connection as it is finalized (the `connections[]` entry with nested fields
//! flattened: `handshake.rtt_ms.syn_to_synack` → `handshake_rtt_ms_syn_to_synack`),
//! `streams.parquet`, one row per TCP stream direction (the `streams[]` entry's scalars and
//! `stats`/`reassembly`/`gaps_total` flattened; no lists), and `packets.parquet`, one row
//! per frame read. docs/report.md ("parquet tables") lists
//! every column.
//!
//! Memory is bounded: rows collect in Arrow column builders and go to the writer every
//! [`BATCH`] rows; the writer closes a row group every [`ROW_GROUP`] rows. Snappy
//! compression (pure Rust: the build still needs no system library).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Float64Builder, Int64Builder, StringBuilder, UInt16Builder, UInt32Builder,
    UInt64Builder, UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::conns::ConnEntry;
use super::streams::StreamEntry;
use super::zeek::{split_endpoint, uid};
use crate::analyze::Ctx;
use crate::dissect::{Link, Net, Packet, Transport};
use crate::error::{Error, Result};

/// Rows per record batch handed to the writer.
pub const BATCH: usize = 8192;
/// Rows per Parquet row group.
pub const ROW_GROUP: usize = 65_536;

/// One column being built.
enum Col {
    U64(UInt64Builder),
    I64(Int64Builder),
    F64(Float64Builder),
    U32(UInt32Builder),
    U16(UInt16Builder),
    U8(UInt8Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
}

/// A value for one cell (None = null).
pub enum V<'a> {
    U64(Option<u64>),
    I64(Option<i64>),
    F64(Option<f64>),
    U32(Option<u32>),
    U16(Option<u16>),
    U8(Option<u8>),
    Bool(Option<bool>),
    Str(Option<&'a str>),
}

impl Col {
    fn new(t: &DataType) -> Col {
        match t {
            DataType::UInt64 => Col::U64(UInt64Builder::new()),
            DataType::Int64 => Col::I64(Int64Builder::new()),
            DataType::Float64 => Col::F64(Float64Builder::new()),
            DataType::UInt32 => Col::U32(UInt32Builder::new()),
            DataType::UInt16 => Col::U16(UInt16Builder::new()),
            DataType::UInt8 => Col::U8(UInt8Builder::new()),
            DataType::Boolean => Col::Bool(BooleanBuilder::new()),
            _ => Col::Str(StringBuilder::new()),
        }
    }

    /// Appends `v`; a value of another type than the column's is a bug in the row
    /// builders below, and appends a null rather than panicking.
    fn push(&mut self, v: &V<'_>) {
        match (self, v) {
            (Col::U64(b), V::U64(x)) => b.append_option(*x),
            (Col::I64(b), V::I64(x)) => b.append_option(*x),
            (Col::F64(b), V::F64(x)) => b.append_option(*x),
            (Col::U32(b), V::U32(x)) => b.append_option(*x),
            (Col::U16(b), V::U16(x)) => b.append_option(*x),
            (Col::U8(b), V::U8(x)) => b.append_option(*x),
            (Col::Bool(b), V::Bool(x)) => b.append_option(*x),
            (Col::Str(b), V::Str(x)) => b.append_option(*x),
            (c, _) => {
                debug_assert!(false, "parquet cell of the wrong type");
                c.push_null();
            }
        }
    }

    fn push_null(&mut self) {
        match self {
            Col::U64(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::U32(b) => b.append_null(),
            Col::U16(b) => b.append_null(),
            Col::U8(b) => b.append_null(),
            Col::Bool(b) => b.append_null(),
            Col::Str(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Col::U64(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::U32(b) => Arc::new(b.finish()),
            Col::U16(b) => Arc::new(b.finish()),
            Col::U8(b) => Arc::new(b.finish()),
            Col::Bool(b) => Arc::new(b.finish()),
            Col::Str(b) => Arc::new(b.finish()),
        }
    }
}

/// One Parquet file being written.
struct Table {
    path: PathBuf,
    schema: Arc<Schema>,
    cols: Vec<Col>,
    rows: usize,
    writer: Option<ArrowWriter<File>>,
}

fn pq_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl Table {
    fn create(path: PathBuf, fields: &[(&str, DataType)]) -> Result<Table> {
        let schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let file = File::create(&path).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| pq_err(&path, e))?;
        Ok(Table {
            cols: fields.iter().map(|(_, t)| Col::new(t)).collect(),
            path,
            schema,
            rows: 0,
            writer: Some(writer),
        })
    }

    fn push(&mut self, row: &[V<'_>]) -> Result<()> {
        debug_assert_eq!(row.len(), self.cols.len());
        for (c, v) in self.cols.iter_mut().zip(row) {
            c.push(v);
        }
        self.rows += 1;
        if self.rows >= BATCH {
            self.write_batch()?;
        }
        Ok(())
    }

    fn write_batch(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(Col::finish).collect();
        self.rows = 0;
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| pq_err(&self.path, e))?;
        if let Some(w) = self.writer.as_mut() {
            w.write(&batch).map_err(|e| pq_err(&self.path, e))?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.write_batch()?;
        if let Some(w) = self.writer.take() {
            w.close().map_err(|e| pq_err(&self.path, e))?;
        }
        Ok(())
    }
}

/// Columns of `connections.parquet`.
pub fn connection_fields() -> Vec<(&'static str, DataType)> {
    use DataType::*;
    vec![
        ("id", UInt64),
        ("uid", Utf8),
        ("proto", Utf8),
        ("orig", Utf8),
        ("resp", Utf8),
        ("orig_h", Utf8),
        ("orig_p", UInt16),
        ("resp_h", Utf8),
        ("resp_p", UInt16),
        ("first_frame", UInt64),
        ("last_frame", UInt64),
        ("start", Float64),
        ("start_ns", Int64),
        ("duration_s", Float64),
        ("conn_state", Utf8),
        ("history", Utf8),
        ("orig_pkts", UInt64),
        ("resp_pkts", UInt64),
        ("orig_bytes", UInt64),
        ("resp_bytes", UInt64),
        ("missed_bytes", UInt64),
        ("orig_ip_bytes", UInt64),
        ("resp_ip_bytes", UInt64),
        ("orig_payload_bytes", UInt64),
        ("resp_payload_bytes", UInt64),
        ("orig_by", Utf8),
        ("orig_guessed", Boolean),
        ("finalized_by", Utf8),
        ("vlan", UInt16),
        ("handshake_outcome", Utf8),
        ("handshake_synack_frame", UInt64),
        ("handshake_ack_frame", UInt64),
        ("handshake_rst_frame", UInt64),
        ("handshake_orig_isn", UInt32),
        ("handshake_resp_isn", UInt32),
        ("handshake_syn_retransmissions", UInt64),
        ("handshake_rtt_ms_syn_to_synack", Float64),
        ("handshake_rtt_ms_synack_to_ack", Float64),
        ("handshake_acks_verified", Boolean),
        ("teardown_kind", Utf8),
        ("teardown_initiator", Utf8),
        ("anomalies_retransmissions", UInt64),
        ("anomalies_out_of_order", UInt64),
        ("anomalies_dup_acks", UInt64),
        ("anomalies_zero_window", UInt64),
        ("anomalies_keep_alives", UInt64),
        ("anomalies_lost_segments", UInt64),
        ("anomalies_retransmitted_bytes", UInt64),
        ("tcp_state_orig", Utf8),
        ("tcp_state_resp", Utf8),
    ]
}

/// Columns of `streams.parquet`.
pub fn stream_fields() -> Vec<(&'static str, DataType)> {
    use DataType::*;
    vec![
        ("conn", UInt64),
        ("dir", Utf8),
        ("orig", Utf8),
        ("resp", Utf8),
        ("bytes", UInt64),
        ("stream_len", UInt64),
        ("first_frame", UInt64),
        ("last_frame", UInt64),
        ("isn", UInt32),
        ("base_seq", UInt32),
        ("midstream", Boolean),
        ("syn_frame", UInt64),
        ("fin_frame", UInt64),
        ("fin_offset", UInt64),
        ("rst_frame", UInt64),
        ("gaps_total_count", UInt64),
        ("gaps_total_bytes", UInt64),
        ("framing", Utf8),
        ("framing_reason", Utf8),
        ("framing_error_offset", UInt64),
        ("framing_error_frame", UInt64),
        ("framing_error_reason", Utf8),
        ("unframed_bytes", UInt64),
        ("mss", UInt16),
        ("mss_source", Utf8),
        ("oversized_segments", UInt64),
        ("stats_messages", UInt64),
        ("stats_split_messages", UInt64),
        ("stats_coalesced_messages", UInt64),
        ("stats_coalescing_segments", UInt64),
        ("stats_max_messages_per_segment", UInt64),
        ("stats_max_segments_per_message", UInt64),
        ("stats_segments", UInt64),
        ("stats_incomplete_messages", UInt64),
        ("reassembly_payload_segments", UInt64),
        ("reassembly_retransmissions", UInt64),
        ("reassembly_retransmitted_bytes", UInt64),
        ("reassembly_overlaps", UInt64),
        ("reassembly_conflicting_bytes", UInt64),
        ("reassembly_out_of_order", UInt64),
        ("reassembly_late_bytes", UInt64),
    ]
}

/// Columns of `packets.parquet`.
pub fn packet_fields() -> Vec<(&'static str, DataType)> {
    use DataType::*;
    vec![
        ("frame", UInt64),
        ("file", UInt16),
        ("ts", Float64),
        ("ts_ns", Int64),
        ("len", UInt32),
        ("caplen", UInt32),
        ("port", UInt32),
        ("src_mac", Utf8),
        ("dst_mac", Utf8),
        ("vlan", UInt16),
        ("net", Utf8),
        ("src_ip", Utf8),
        ("dst_ip", Utf8),
        ("ip_proto", UInt8),
        ("ttl", UInt8),
        ("transport", Utf8),
        ("src_port", UInt16),
        ("dst_port", UInt16),
        ("tcp_flags", Utf8),
        ("seq", UInt32),
        ("ack", UInt32),
        ("window", UInt16),
        ("payload_len", UInt32),
        ("conn", UInt64),
        ("dir", Utf8),
        ("issue", Utf8),
    ]
}

/// The Parquet tables of one run.
pub struct ParquetOut {
    conns: Table,
    streams: Table,
    packets: Table,
    scratch: [String; 5],
}

impl ParquetOut {
    /// Creates `dir` (if missing) and the table files in it.
    pub fn create(dir: &Path) -> Result<ParquetOut> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(ParquetOut {
            conns: Table::create(dir.join("connections.parquet"), &connection_fields())?,
            streams: Table::create(dir.join("streams.parquet"), &stream_fields())?,
            packets: Table::create(dir.join("packets.parquet"), &packet_fields())?,
            scratch: Default::default(),
        })
    }

    /// A finalized connection.
    pub fn connection(&mut self, c: &ConnEntry) -> Result<()> {
        let (oh, op) = split_endpoint(&c.orig);
        let (rh, rp) = split_endpoint(&c.resp);
        let id = uid(&c.proto, &c.orig, &c.resp, c.start_ns, c.first_frame);
        let h = c.handshake.as_ref();
        let t = c.teardown.as_ref();
        let a = c.anomalies.as_ref();
        let s = c.tcp_state.as_ref();
        let row = [
            V::U64(Some(c.id)),
            V::Str(Some(&id)),
            V::Str(Some(&c.proto)),
            V::Str(Some(&c.orig)),
            V::Str(Some(&c.resp)),
            V::Str(Some(oh)),
            V::U16(op.parse().ok()),
            V::Str(Some(rh)),
            V::U16(rp.parse().ok()),
            V::U64(Some(c.first_frame)),
            V::U64(Some(c.last_frame)),
            V::F64(Some(c.start)),
            V::I64(Some(c.start_ns)),
            V::F64(Some(c.duration_s)),
            V::Str(Some(&c.conn_state)),
            V::Str(Some(&c.history)),
            V::U64(Some(c.orig_pkts)),
            V::U64(Some(c.resp_pkts)),
            V::U64(Some(c.orig_bytes)),
            V::U64(Some(c.resp_bytes)),
            V::U64(Some(c.missed_bytes)),
            V::U64(Some(c.orig_ip_bytes)),
            V::U64(Some(c.resp_ip_bytes)),
            V::U64(Some(c.orig_payload_bytes)),
            V::U64(Some(c.resp_payload_bytes)),
            V::Str(Some(&c.orig_by)),
            V::Bool(Some(c.orig_guessed)),
            V::Str(Some(&c.finalized_by)),
            V::U16(c.vlan),
            V::Str(h.map(|h| h.outcome.as_str())),
            V::U64(h.and_then(|h| h.synack_frame)),
            V::U64(h.and_then(|h| h.ack_frame)),
            V::U64(h.and_then(|h| h.rst_frame)),
            V::U32(h.and_then(|h| h.orig_isn)),
            V::U32(h.and_then(|h| h.resp_isn)),
            V::U64(h.map(|h| h.syn_retransmissions)),
            V::F64(h.and_then(|h| h.rtt_ms.syn_to_synack)),
            V::F64(h.and_then(|h| h.rtt_ms.synack_to_ack)),
            V::Bool(h.map(|h| h.acks_verified)),
            V::Str(t.map(|t| t.kind.as_str())),
            V::Str(t.and_then(|t| t.initiator.as_deref())),
            V::U64(a.map(|a| a.retransmissions)),
            V::U64(a.map(|a| a.out_of_order)),
            V::U64(a.map(|a| a.dup_acks)),
            V::U64(a.map(|a| a.zero_window)),
            V::U64(a.map(|a| a.keep_alives)),
            V::U64(a.map(|a| a.lost_segments)),
            V::U64(a.map(|a| a.retransmitted_bytes)),
            V::Str(s.map(|s| s.orig.as_str())),
            V::Str(s.map(|s| s.resp.as_str())),
        ];
        self.conns.push(&row)
    }

    /// A finalized TCP stream direction.
    pub fn stream(&mut self, s: &StreamEntry) -> Result<()> {
        let (st, r, fe) = (&s.stats, &s.reassembly, s.framing_error.as_ref());
        let row = [
            V::U64(Some(s.conn)),
            V::Str(Some(&s.dir)),
            V::Str(Some(&s.orig)),
            V::Str(Some(&s.resp)),
            V::U64(Some(s.bytes)),
            V::U64(Some(s.stream_len)),
            V::U64(Some(s.first_frame)),
            V::U64(Some(s.last_frame)),
            V::U32(s.isn),
            V::U32(Some(s.base_seq)),
            V::Bool(Some(s.midstream)),
            V::U64(s.syn_frame),
            V::U64(s.fin.map(|f| f.frame)),
            V::U64(s.fin.map(|f| f.offset)),
            V::U64(s.rst_frame),
            V::U64(Some(s.gaps_total.count)),
            V::U64(Some(s.gaps_total.bytes)),
            V::Str(Some(&s.framing)),
            V::Str(Some(&s.framing_reason)),
            V::U64(fe.map(|e| e.offset)),
            V::U64(fe.and_then(|e| e.frame)),
            V::Str(fe.map(|e| e.reason.as_str())),
            V::U64(Some(s.unframed_bytes)),
            V::U16(s.mss),
            V::Str(Some(&s.mss_source)),
            V::U64(Some(s.oversized_segments)),
            V::U64(Some(st.messages)),
            V::U64(Some(st.split_messages)),
            V::U64(Some(st.coalesced_messages)),
            V::U64(Some(st.coalescing_segments)),
            V::U64(Some(st.max_messages_per_segment)),
            V::U64(Some(st.max_segments_per_message)),
            V::U64(Some(st.segments)),
            V::U64(Some(st.incomplete_messages)),
            V::U64(Some(r.payload_segments)),
            V::U64(Some(r.retransmissions)),
            V::U64(Some(r.retransmitted_bytes)),
            V::U64(Some(r.overlaps)),
            V::U64(Some(r.conflicting_bytes)),
            V::U64(Some(r.out_of_order)),
            V::U64(Some(r.late_bytes)),
        ];
        self.streams.push(&row)
    }

    /// A frame read (after every analyzer saw it: `ctx.conn` names its connection).
    pub fn packet(&mut self, p: &Packet<'_>, ctx: &Ctx) -> Result<()> {
        use std::fmt::Write as _;
        let [src_mac, dst_mac, src_ip, dst_ip, issue] = &mut self.scratch;
        for s in [
            &mut *src_mac,
            &mut *dst_mac,
            &mut *src_ip,
            &mut *dst_ip,
            &mut *issue,
        ] {
            s.clear();
        }
        // Writing into a String cannot fail.
        let (has_src, has_dst) = match p.link {
            Link::Ethernet { src, dst, .. } => {
                let _ = write!(src_mac, "{src}");
                let _ = write!(dst_mac, "{dst}");
                (true, true)
            }
            Link::Sll { src: Some(src), .. } => {
                let _ = write!(src_mac, "{src}");
                (true, false)
            }
            _ => (false, false),
        };
        let (net, ip_proto, ttl) = match p.net {
            Net::Ipv4(h) => (Some("ipv4"), Some(h.protocol), Some(h.ttl)),
            Net::Ipv6(h) => (Some("ipv6"), Some(h.protocol), Some(h.hop_limit)),
            Net::Arp(_) => (Some("arp"), None, None),
            _ => (None, None, None),
        };
        let ips = p.ips();
        if let Some((s, d)) = ips {
            let _ = write!(src_ip, "{s}");
            let _ = write!(dst_ip, "{d}");
        }
        let (transport, sport, dport, payload) = match &p.transport {
            Transport::Tcp(t) => (
                Some("tcp"),
                Some(t.src_port),
                Some(t.dst_port),
                Some(t.payload_len),
            ),
            Transport::Udp(u) => (
                Some("udp"),
                Some(u.src_port),
                Some(u.dst_port),
                Some(u.payload_len),
            ),
            Transport::Icmp(i) => (Some(if i.v6 { "icmpv6" } else { "icmp" }), None, None, None),
            _ => (None, None, None, None),
        };
        let tcp = p.tcp();
        let flags = tcp.map(|t| t.flags.names());
        if let Some(i) = p.issue {
            let _ = write!(issue, "{}: {}", i.layer.name(), i.reason);
        }
        let conn = ctx.conn;
        let row = [
            V::U64(Some(p.frame)),
            V::U16(Some(p.file_index)),
            V::F64(Some(super::ts_secs(p.ts_ns))),
            V::I64(Some(p.ts_ns)),
            V::U32(Some(p.wire_len)),
            V::U32(Some(p.cap_len)),
            V::U32(Some(p.port)),
            V::Str(has_src.then_some(src_mac.as_str())),
            V::Str(has_dst.then_some(dst_mac.as_str())),
            V::U16(p.vlans.outer()),
            V::Str(net),
            V::Str(ips.map(|_| src_ip.as_str())),
            V::Str(ips.map(|_| dst_ip.as_str())),
            V::U8(ip_proto),
            V::U8(ttl),
            V::Str(transport),
            V::U16(sport),
            V::U16(dport),
            V::Str(flags.as_deref()),
            V::U32(tcp.map(|t| t.seq)),
            V::U32(tcp.map(|t| t.ack)),
            V::U16(tcp.map(|t| t.window)),
            V::U32(payload),
            V::U64(conn.map(|c| c.id)),
            V::Str(conn.map(|c| c.dir.name())),
            V::Str(p.issue.map(|_| issue.as_str())),
        ];
        self.packets.push(&row)
    }

    /// Writes what is buffered and the files' footers.
    pub fn finish(&mut self) -> Result<()> {
        self.conns.close()?;
        self.streams.close()?;
        self.packets.close()
    }
}
