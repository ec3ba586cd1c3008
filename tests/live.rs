//! Live capture end to end: two network namespaces joined by a veth pair, `netlens live`
//! on one end, real TCP (a graceful close, a refused connection), UDP and ARP traffic from
//! Python socket programs, SIGINT to stop; then the JSON report is checked and the `--write`
//! file read back with `netlens read` must give the same report.
//!
//! Needs root (namespaces, packet sockets), `ip` and `python3`; skipped with a printed
//! reason otherwise. The namespaces are named after the process id so runs don't collide.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::netns::{have, is_root, sh, Netns};

const TRAFFIC: &str = r#"
import socket, sys, time
role = sys.argv[1]
if role == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.80.0.1", 7001)); s.listen(4)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.80.0.1", 7002))
    open(sys.argv[2], "w").close()          # ready
    c, _ = s.accept()
    for _ in range(3):
        d = c.recv(100); c.sendall(d.upper())
    c.recv(100); c.close()                  # client closed first
    for _ in range(2):
        d, a = u.recvfrom(2000); u.sendto(d, a)
    time.sleep(0.3)
else:
    c = socket.create_connection(("10.80.0.1", 7001))
    for m in (b"hello\n", b"netlens\n", b"live\n"):
        c.sendall(m); c.recv(100); time.sleep(0.05)
    c.close()
    time.sleep(0.2)
    try:
        socket.create_connection(("10.80.0.1", 7999), timeout=2)
    except OSError:
        pass
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for m in (b"ping", b"x" * 300):
        u.sendto(m, ("10.80.0.1", 7002)); u.recvfrom(2000)
"#;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read json")).expect("parse json")
}

#[test]
fn live_capture_on_veth_matches_its_written_pcap() {
    if !is_root() || !have("ip") || !have("python3") {
        eprintln!("note: live capture test skipped: needs root, iproute2 and python3");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_netlens");
    let ns = Netns::new("lt", 80);
    let dir = tempfile::tempdir().expect("tempdir");
    let live_json = dir.path().join("live.json");
    let pcap = dir.path().join("live.pcap");
    let ready = dir.path().join("ready");
    let script = dir.path().join("traffic.py");
    std::fs::write(&script, TRAFFIC).expect("write script");
    sh(&format!(
        "ip -n {} neigh flush all; ip -n {} neigh flush all",
        ns.a, ns.b
    ));

    let live = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.a,
            bin,
            "live",
            &ns.dev_a,
            "--all",
            "--framing",
            "7001=line",
            "--json",
        ])
        .arg(&live_json)
        .arg("--write")
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netlens live");
    std::thread::sleep(Duration::from_millis(700));
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.a, "python3"])
        .arg(&script)
        .arg("server")
        .arg(&ready)
        .spawn()
        .expect("server");
    let t = Instant::now();
    while !ready.exists() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = Command::new("ip")
        .args(["netns", "exec", &ns.b, "python3"])
        .arg(&script)
        .arg("client")
        .status()
        .expect("client");
    assert!(client.success(), "client program failed");
    assert!(
        server.wait().expect("server").success(),
        "server program failed"
    );
    std::thread::sleep(Duration::from_millis(500));

    // SIGINT ends the capture within a second and completes the report and the pcap.
    let stop = Instant::now();
    sh(&format!("kill -INT {}", live.id()));
    let out = live.wait_with_output().expect("netlens live exit");
    let took = stop.elapsed();
    assert!(
        out.status.success(),
        "netlens live failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        took < Duration::from_secs(2),
        "SIGINT took {took:?} to end the capture"
    );

    let live_report = json(&live_json);
    assert_eq!(live_report["source"]["kind"], "live");
    let stats = &live_report["stats"];
    let by = &stats["by_protocol"];
    assert!(
        by["arp"].as_u64().unwrap_or(0) >= 2,
        "ARP request and reply captured: {by}"
    );
    // 3 echo round trips + handshake + close + the refused SYN/RST: well over 15 TCP frames.
    assert!(
        by["tcp"].as_u64().unwrap_or(0) >= 15,
        "TCP frames captured: {by}"
    );
    assert!(
        by["udp"].as_u64().unwrap_or(0) >= 4,
        "UDP datagrams captured: {by}"
    );
    assert_eq!(stats["live"]["dropped_queue_full"], 0);

    // Handshakes and teardowns: the echo connection closed gracefully by the client, the
    // refused attempt on port 7999, and the UDP flow.
    let conns = live_report["connections"].as_array().expect("connections");
    let echo = conns
        .iter()
        .find(|c| c["resp"] == "10.80.0.1:7001")
        .expect("the echo connection");
    assert_eq!(echo["handshake"]["outcome"], "complete", "{echo}");
    let kind = echo["teardown"]["kind"].as_str().unwrap_or("");
    assert!(
        kind == "fin-3way" || kind == "fin-4way",
        "graceful close, got {kind}"
    );
    assert_eq!(echo["teardown"]["initiator"], "orig");
    assert_eq!(echo["conn_state"], "SF");
    let refused = conns
        .iter()
        .find(|c| c["resp"] == "10.80.0.1:7999")
        .expect("the refused attempt");
    assert_eq!(refused["handshake"]["outcome"], "refused");
    assert_eq!(refused["conn_state"], "REJ");
    let udp = conns
        .iter()
        .find(|c| c["proto"] == "udp" && c["resp"] == "10.80.0.1:7002")
        .expect("the UDP flow");
    assert_eq!(udp["orig_pkts"], 2);
    assert_eq!(udp["resp_pkts"], 2);

    // The ARP table learned both ends.
    let table = live_report["arp"]["table"].as_array().expect("arp table");
    for (ip, mac) in [
        ("10.80.0.1", "02:00:0a:50:00:01"),
        ("10.80.0.2", "02:00:0a:50:00:02"),
    ] {
        assert!(
            table.iter().any(|e| e["ip"] == ip && e["mac"] == mac),
            "ARP table lacks {ip} at {mac}: {table:?}"
        );
    }

    // Message counts: three lines each way on the echo connection.
    let streams = live_report["streams"].as_array().expect("streams");
    let id = echo["id"].clone();
    for dir in ["orig", "resp"] {
        let s = streams
            .iter()
            .find(|s| s["conn"] == id && s["dir"] == dir)
            .unwrap_or_else(|| panic!("no {dir} stream for the echo connection"));
        assert_eq!(s["stats"]["messages"], 3, "{dir}: {s}");
    }

    // The written pcap, read back, gives the same report.
    let read_json: PathBuf = dir.path().join("read.json");
    let st = Command::new(bin)
        .arg("read")
        .arg(&pcap)
        .args(["--all", "--framing", "7001=line", "--json"])
        .arg(&read_json)
        .stdout(Stdio::null())
        .status()
        .expect("netlens read");
    assert!(st.success());
    let read_report = json(&read_json);
    for key in [
        "packets",
        "bytes",
        "by_protocol",
        "first_ts_ns",
        "last_ts_ns",
        "dissect_issues",
    ] {
        assert_eq!(
            live_report["stats"][key], read_report["stats"][key],
            "stats.{key} differs between the live run and its --write file"
        );
    }
    let mut live_report = live_report;
    // A classic pcap has no interface names: the live report's port carries the interface
    // name, the one read back from the --write file cannot.
    if let Some(ports) = live_report["mac_table"]["ports"].as_array_mut() {
        for p in ports {
            if let Some(o) = p.as_object_mut() {
                o.remove("name");
            }
        }
    }
    for key in ["connections", "arp", "mac_table", "streams", "udp_flows"] {
        assert_eq!(
            live_report[key], read_report[key],
            "section {key} differs between the live run and its --write file"
        );
    }
}
