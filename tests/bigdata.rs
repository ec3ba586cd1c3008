//! The README's "More captures than one machine" recipe, run as written: one netlens
//! process per capture file in parallel (`xargs -P`), then DuckDB (its Python package)
//! querying every NDJSON output at once with `read_json('out/*.ndjson')`. The totals DuckDB
//! computes (connections, their bytes and packets, frames and bytes read, handshakes, ARP
//! exchanges) must equal the sums over netlens's own JSON reports of the same files.
//! With the `parquet` feature the same totals are also computed from the Parquet tables.
//!
//! Needs `python3` with `duckdb` (`pip install duckdb`; .ci/run installs it); skipped with a
//! printed note otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_netlens");

/// Three fixtures: three TCP connections on one 4-tuple, a UDP exchange, ARP on a bridge.
const FILES: [&str; 3] = [
    "tcp_reused_tuple.pcap",
    "udp_exchange.pcap",
    "arp_bridge.pcap",
];

fn have_duckdb() -> bool {
    Command::new("python3")
        .args(["-c", "import duckdb"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The query of the README, printing one JSON object of totals.
const QUERY: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
ev = "read_json('out/*.ndjson')"
def one(sql):
    return con.execute(sql).fetchone()
c = one(f"""SELECT count(*), sum(orig_bytes + resp_bytes), sum(orig_pkts + resp_pkts),
                   sum(orig_ip_bytes + resp_ip_bytes)
            FROM {ev} WHERE type = 'connection'""")
s = one(f"SELECT sum(stats.packets), sum(stats.bytes), count(*) FROM {ev} WHERE type = 'summary'")
h = one(f"SELECT count(*) FROM {ev} WHERE type = 'handshake'")
a = one(f"SELECT count(*) FROM {ev} WHERE type = 'arp'")
out = {"connections": c[0], "conn_bytes": int(c[1]), "conn_packets": int(c[2]),
       "conn_ip_bytes": int(c[3]), "packets": int(s[0]), "bytes": int(s[1]), "runs": s[2],
       "handshakes": h[0], "arp_exchanges": a[0]}
if len(sys.argv) > 1 and sys.argv[1] == "parquet":
    p = one("""SELECT count(*), sum(orig_bytes + resp_bytes), sum(orig_pkts + resp_pkts),
                      sum(orig_ip_bytes + resp_ip_bytes)
               FROM read_parquet('pq/*/connections.parquet')""")
    k = one("SELECT count(*), sum(len) FROM read_parquet('pq/*/packets.parquet')")
    out["parquet"] = {"connections": p[0], "conn_bytes": int(p[1]), "conn_packets": int(p[2]),
                      "conn_ip_bytes": int(p[3]), "packets": k[0], "bytes": int(k[1])}
print(json.dumps(out))
"#;

#[test]
fn duckdb_totals_over_parallel_runs_equal_netlens_json() {
    if !have_duckdb() {
        eprintln!(
            "note: python3 with duckdb not available (pip install duckdb); big-data recipe test skipped"
        );
        return;
    }
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let files: Vec<PathBuf> = FILES.iter().map(|f| fixtures.join(f)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = Path::new(BIN).parent().expect("binary dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let list: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    std::fs::write(dir.path().join("files.txt"), list).unwrap();

    // The recipe: one process per file, in parallel.
    let parquet = cfg!(feature = "parquet");
    let recipe = if parquet {
        r#"mkdir -p out pq && xargs -P 3 -I{} sh -c 'n=$(basename "$1"); netlens read "$1" --quiet --ndjson "out/$n.ndjson" --parquet "pq/$n" > /dev/null' _ {} < files.txt"#
    } else {
        r#"mkdir -p out && xargs -P 3 -I{} sh -c 'netlens read "$1" --quiet --ndjson "out/$(basename "$1").ndjson" > /dev/null' _ {} < files.txt"#
    };
    let st = Command::new("sh")
        .arg("-c")
        .arg(recipe)
        .current_dir(dir.path())
        .env("PATH", &path)
        .status()
        .expect("run the recipe");
    assert!(st.success(), "recipe failed");

    let out = Command::new("python3")
        .arg("-c")
        .arg(QUERY)
        .args(parquet.then_some("parquet"))
        .current_dir(dir.path())
        .output()
        .expect("run duckdb");
    assert!(
        out.status.success(),
        "duckdb query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).expect("totals JSON");

    // netlens's own JSON reports of the same files, summed here.
    let mut want = serde_json::Map::new();
    let mut add = |k: &str, v: u64| {
        let e = want.entry(k).or_insert(Value::from(0u64));
        *e = Value::from(e.as_u64().unwrap() + v);
    };
    for f in &files {
        let o = Command::new(BIN)
            .arg("read")
            .arg(f)
            .args(["--quiet", "--json", "-"])
            .output()
            .expect("netlens --json");
        assert!(o.status.success());
        let r: Value = serde_json::from_slice(&o.stdout).expect("report");
        let conns = r["connections"].as_array().cloned().unwrap_or_default();
        let sum = |a: &str, b: &str| -> u64 {
            conns
                .iter()
                .map(|c| c[a].as_u64().unwrap() + c[b].as_u64().unwrap())
                .sum()
        };
        add("connections", conns.len() as u64);
        add("conn_bytes", sum("orig_bytes", "resp_bytes"));
        add("conn_packets", sum("orig_pkts", "resp_pkts"));
        add("conn_ip_bytes", sum("orig_ip_bytes", "resp_ip_bytes"));
        add("packets", r["stats"]["packets"].as_u64().unwrap());
        add("bytes", r["stats"]["bytes"].as_u64().unwrap());
        add("runs", 1);
        add(
            "handshakes",
            conns.iter().filter(|c| c["proto"] == "tcp").count() as u64,
        );
        add(
            "arp_exchanges",
            r["arp"]["exchanges"]
                .as_array()
                .map_or(0, |a| a.len() as u64),
        );
    }
    eprintln!("duckdb: {got}");
    eprintln!("json:   {}", Value::Object(want.clone()));
    for (k, v) in &want {
        assert_eq!(&got[k], v, "total {k}: DuckDB over NDJSON vs netlens JSON");
    }
    assert!(
        want["connections"].as_u64().unwrap() >= 4,
        "too few to tell"
    );
    assert!(want["arp_exchanges"].as_u64().unwrap() >= 4);
    if parquet {
        let p = &got["parquet"];
        for k in ["connections", "conn_bytes", "conn_packets", "conn_ip_bytes"] {
            assert_eq!(&p[k], &want[k], "total {k}: DuckDB over Parquet vs JSON");
        }
        assert_eq!(p["packets"], want["packets"], "Parquet packet rows");
        assert_eq!(p["bytes"], want["bytes"], "Parquet packet bytes");
    }
}
