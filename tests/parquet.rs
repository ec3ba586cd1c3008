//! `--parquet DIR` (cargo feature `parquet`): the tables read back with the parquet crate's
//! own reader must hold exactly the JSON report's connections and packets, field by field;
//! a default build must refuse `--parquet` as a usage error that says how to rebuild.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_netlens");

#[cfg(not(feature = "parquet"))]
#[test]
fn parquet_without_the_feature_is_a_usage_error() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tcp_graceful.pcap");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("read")
        .arg(&f)
        .arg("--parquet")
        .arg(dir.path().join("pq"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features parquet"), "{err}");
    assert!(!dir.path().join("pq").exists(), "nothing written");
}

#[cfg(feature = "parquet")]
mod with_feature {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Float64Type, Int64Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
    };
    use arrow_array::{Array, RecordBatch};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use serde_json::{json, Value};

    /// Every row of a Parquet file as a JSON object (nulls as null).
    fn rows(path: &Path) -> Vec<serde_json::Map<String, Value>> {
        let f = std::fs::File::open(path).expect("open parquet");
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("parquet")
            .build()
            .expect("reader");
        let mut out = Vec::new();
        for batch in reader {
            let b: RecordBatch = batch.expect("batch");
            for i in 0..b.num_rows() {
                let mut m = serde_json::Map::new();
                for (field, col) in b.schema().fields().iter().zip(b.columns()) {
                    let v = if col.is_null(i) {
                        Value::Null
                    } else {
                        use arrow_schema::DataType::*;
                        match col.data_type() {
                            UInt64 => json!(col.as_primitive::<UInt64Type>().value(i)),
                            Int64 => json!(col.as_primitive::<Int64Type>().value(i)),
                            UInt32 => json!(col.as_primitive::<UInt32Type>().value(i)),
                            UInt16 => json!(col.as_primitive::<UInt16Type>().value(i)),
                            UInt8 => json!(col.as_primitive::<UInt8Type>().value(i)),
                            Float64 => json!(col.as_primitive::<Float64Type>().value(i)),
                            Boolean => json!(col.as_boolean().value(i)),
                            Utf8 => json!(col.as_string::<i32>().value(i)),
                            t => panic!("unexpected column type {t}"),
                        }
                    };
                    m.insert(field.name().clone(), v);
                }
                out.push(m);
            }
        }
        out
    }

    /// Equal, floats within a few ulps: serde_json's default float parser (no
    /// `float_roundtrip`) may read the report's shortest decimal one ulp off.
    fn same(a: &Value, b: &Value) -> bool {
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) if a.is_f64() || b.is_f64() => {
                (x - y).abs() <= 4.0 * f64::EPSILON * x.abs().max(y.abs())
            }
            _ => a == b,
        }
    }

    fn run(files: &[&Path], dir: &Path) -> Value {
        let json = dir.join("r.json");
        let out = Command::new(BIN)
            .arg("read")
            .args(files)
            .args(["--all", "--packets", "-q", "--json"])
            .arg(&json)
            .arg("--parquet")
            .arg(dir.join("pq"))
            .output()
            .expect("netlens");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
    }

    fn check(files: &[&Path]) -> (usize, usize) {
        let dir = tempfile::tempdir().unwrap();
        let r = run(files, dir.path());
        // connections.parquet = connections[], flattened.
        let mut conns = rows(&dir.path().join("pq/connections.parquet"));
        conns.sort_by_key(|c| c["id"].as_u64());
        let want = r["connections"].as_array().cloned().unwrap_or_default();
        assert_eq!(conns.len(), want.len(), "{files:?}: connection rows");
        for (row, c) in conns.iter().zip(&want) {
            for k in [
                "id",
                "proto",
                "orig",
                "resp",
                "first_frame",
                "last_frame",
                "start",
                "start_ns",
                "duration_s",
                "conn_state",
                "history",
                "orig_pkts",
                "resp_pkts",
                "orig_bytes",
                "resp_bytes",
                "missed_bytes",
                "orig_ip_bytes",
                "resp_ip_bytes",
                "orig_payload_bytes",
                "resp_payload_bytes",
                "orig_by",
                "orig_guessed",
                "finalized_by",
            ] {
                assert!(
                    same(&row[k], &c[k]),
                    "{files:?}: conn {} {k}: {} vs {}",
                    c["id"],
                    row[k],
                    c[k]
                );
            }
            let nested = |path: &[&str]| {
                let mut v = c;
                for p in path {
                    v = &v[*p];
                }
                v.clone()
            };
            for (col, path) in [
                ("handshake_outcome", &["handshake", "outcome"][..]),
                ("handshake_ack_frame", &["handshake", "ack_frame"]),
                ("handshake_orig_isn", &["handshake", "orig_isn"]),
                (
                    "handshake_rtt_ms_syn_to_synack",
                    &["handshake", "rtt_ms", "syn_to_synack"],
                ),
                ("teardown_kind", &["teardown", "kind"]),
                ("teardown_initiator", &["teardown", "initiator"]),
                (
                    "anomalies_retransmissions",
                    &["anomalies", "retransmissions"],
                ),
                ("tcp_state_orig", &["tcp_state", "orig"]),
            ] {
                let want = nested(path);
                assert!(
                    same(&row[col], &want),
                    "{files:?}: conn {} {col}: {} vs {want}",
                    c["id"],
                    row[col]
                );
            }
            let (h, p) = c["orig"].as_str().unwrap().rsplit_once(':').unwrap();
            assert_eq!(row["orig_h"], h.trim_matches(|x| x == '[' || x == ']'));
            assert_eq!(row["orig_p"], json!(p.parse::<u16>().unwrap()));
        }
        // streams.parquet = streams[], scalars and stats flattened.
        let mut st = rows(&dir.path().join("pq/streams.parquet"));
        st.sort_by_key(|s| (s["conn"].as_u64(), s["dir"] != "orig"));
        let want_st = r["streams"].as_array().cloned().unwrap_or_default();
        assert_eq!(st.len(), want_st.len(), "{files:?}: stream rows");
        for (row, s) in st.iter().zip(&want_st) {
            for k in [
                "conn",
                "dir",
                "orig",
                "resp",
                "bytes",
                "stream_len",
                "first_frame",
                "last_frame",
                "isn",
                "base_seq",
                "midstream",
                "framing",
                "framing_reason",
                "unframed_bytes",
                "mss",
                "oversized_segments",
            ] {
                assert_eq!(
                    row[k], s[k],
                    "{files:?}: stream {} {} {k}",
                    s["conn"], s["dir"]
                );
            }
            for (col, a, b) in [
                ("stats_messages", "stats", "messages"),
                ("stats_split_messages", "stats", "split_messages"),
                ("stats_coalesced_messages", "stats", "coalesced_messages"),
                ("stats_segments", "stats", "segments"),
                (
                    "reassembly_retransmissions",
                    "reassembly",
                    "retransmissions",
                ),
                ("gaps_total_bytes", "gaps_total", "bytes"),
            ] {
                assert_eq!(row[col], s[a][b], "{files:?}: stream {} {col}", s["conn"]);
            }
        }
        // packets.parquet = packets[], the fields of the layers.
        let pk = rows(&dir.path().join("pq/packets.parquet"));
        let want = r["packets"].as_array().cloned().unwrap_or_default();
        assert_eq!(pk.len(), want.len(), "{files:?}: packet rows");
        assert_eq!(pk.len() as u64, r["stats"]["packets"].as_u64().unwrap());
        for (row, p) in pk.iter().zip(&want) {
            for (col, k) in [
                ("frame", "frame"),
                ("ts_ns", "ts_ns"),
                ("len", "len"),
                ("caplen", "caplen"),
                ("file", "file"),
                ("port", "port"),
            ] {
                assert_eq!(row[col], p[k], "frame {} {col}", p["frame"]);
            }
            let layer = |name: &str| {
                p["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| l["layer"] == name)
                    .cloned()
            };
            let ip = layer("ipv4").or_else(|| layer("ipv6"));
            assert_eq!(
                row["src_ip"],
                ip.as_ref().map_or(Value::Null, |l| l["src"].clone())
            );
            assert_eq!(
                row["dst_ip"],
                ip.as_ref().map_or(Value::Null, |l| l["dst"].clone())
            );
            match layer("ethernet") {
                Some(e) => {
                    assert_eq!(row["src_mac"], e["src"]);
                    assert_eq!(row["dst_mac"], e["dst"]);
                }
                None => assert_eq!(row["dst_mac"], Value::Null),
            }
            match layer("tcp") {
                Some(t) => {
                    for k in ["seq", "ack", "window", "payload_len"] {
                        assert_eq!(row[k], t[k], "frame {} {k}", p["frame"]);
                    }
                    assert_eq!(row["tcp_flags"], t["flags"]);
                    assert_eq!(row["src_port"], t["src_port"]);
                    assert_eq!(row["transport"], "tcp");
                }
                None => assert_eq!(row["seq"], Value::Null),
            }
            if let Some(u) = layer("udp") {
                assert_eq!(row["dst_port"], u["dst_port"]);
                assert_eq!(row["payload_len"], u["payload_len"]);
            }
            if let Some(v) = layer("vlan") {
                assert_eq!(row["vlan"], v["id"]);
            }
        }
        (conns.len(), pk.len())
    }

    #[test]
    fn parquet_tables_are_the_json_report() {
        let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut total = (0, 0);
        for f in std::fs::read_dir(&fx).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                let (c, k) = check(&[&p]);
                total = (total.0 + c, total.1 + k);
            }
        }
        eprintln!(
            "parquet: {} connection and {} packet rows match the JSON",
            total.0, total.1
        );
        assert!(total.0 >= 15 && total.1 >= 500);
    }

    /// More rows than one record batch (8192), several files as one input, VLANs, IPv6.
    #[test]
    fn parquet_tables_span_batches() {
        let c = std::env::var_os("NETLENS_CORPUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
        let f = c.join("captures/suricata-verify__http-mime-truncated_input.pcap");
        let q = c.join("captures/zeek__q-in-q.pcap");
        if !f.exists() || !q.exists() {
            eprintln!("note: corpus not found; multi-batch Parquet check skipped");
            return;
        }
        let (conns, pkts) = check(&[&f, &f, &q, &f, &f]);
        eprintln!("parquet: {conns} connections, {pkts} packets over 5 inputs");
        assert!(pkts > 8192, "{pkts} rows: not more than one batch");
    }
}
