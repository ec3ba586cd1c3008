//! `netlens live --ndjson -` feeding a consumer while the capture runs: two network
//! namespaces joined by a veth pair, real TCP and UDP from Python socket programs. The
//! handshake line must arrive while the capture is still running, and so must the
//! connection line once the closed connection's linger time has passed (a later UDP
//! datagram moves capture time on); SIGINT then ends the run with the summary line.
//!
//! Needs root (namespaces, packet sockets), `ip` and `python3`; skipped with a printed
//! reason otherwise.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::netns::{have, is_root, sh, Netns};

const TRAFFIC: &str = r#"
import socket, sys, time
role = sys.argv[1]
if role == "server":
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("10.81.0.1", 7101)); s.listen(4)
    open(sys.argv[2], "w").close()          # ready
    c, _ = s.accept()
    d = c.recv(100); c.sendall(d.upper())
    c.recv(100); c.close()
elif role == "connect":
    c = socket.create_connection(("10.81.0.1", 7101))
    c.sendall(b"hello"); c.recv(100)
    time.sleep(float(sys.argv[2]))          # the handshake line must show up meanwhile
    c.close()
else:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.sendto(b"tick", ("10.81.0.1", 7102))
"#;

fn next_of(rx: &mpsc::Receiver<String>, ty: &str, seen: &mut Vec<Value>) -> Value {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(10) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            let v: Value = serde_json::from_str(&l).expect("NDJSON line");
            seen.push(v.clone());
            if v["type"] == ty {
                return v;
            }
        }
    }
    panic!("no {ty} line within 10 s; lines so far: {seen:?}");
}

#[test]
fn live_ndjson_lines_arrive_while_capturing() {
    if !is_root() || !have("ip") || !have("python3") {
        eprintln!("note: live NDJSON test skipped: needs root, iproute2 and python3");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_netlens");
    let ns = Netns::new("nd", 81);
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    let script = dir.path().join("traffic.py");
    std::fs::write(&script, TRAFFIC).expect("write script");

    let mut live = Command::new("ip")
        .args([
            "netns", "exec", &ns.a, bin, "live", &ns.dev_a, "--ndjson", "-",
        ])
        .args(["--linger", "0.2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start netlens live");
    let stdout = live.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
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
    // The client holds the connection open for 3 s: the handshake line comes before.
    let mut client = Command::new("ip")
        .args(["netns", "exec", &ns.b, "python3"])
        .arg(&script)
        .args(["connect", "3"])
        .spawn()
        .expect("client");
    let mut seen = Vec::new();
    let h = next_of(&rx, "handshake", &mut seen);
    assert!(
        client.try_wait().expect("client").is_none(),
        "the handshake line came only after the connection ended"
    );
    assert_eq!(h["handshake"]["outcome"], "complete");
    assert_eq!(h["resp"], "10.81.0.1:7101");
    assert!(client.wait().expect("client").success());
    assert!(server.wait().expect("server").success());
    // Past the 0.2 s linger, any frame finalizes the closed connection.
    std::thread::sleep(Duration::from_millis(500));
    let udp = Command::new("ip")
        .args(["netns", "exec", &ns.b, "python3"])
        .arg(&script)
        .arg("udp")
        .status()
        .expect("udp");
    assert!(udp.success());
    let c = next_of(&rx, "connection", &mut seen);
    assert_eq!(c["id"], h["conn"]);
    assert_eq!(c["finalized_by"], "closed");
    assert_eq!(c["conn_state"], "SF");
    assert!(live.try_wait().expect("live").is_none(), "still capturing");

    sh(&format!("kill -INT {}", live.id()));
    let s = next_of(&rx, "summary", &mut seen);
    assert_eq!(s["source"]["kind"], "live");
    assert!(s["events"]["connection"].as_u64().unwrap_or(0) >= 1);
    let status = live.wait().expect("netlens live exit");
    assert!(status.success());
    reader.join().expect("reader");
    // Nothing but NDJSON came out on stdout.
    assert!(seen.iter().all(|v| v["type"].is_string()));
}
