//! Two network namespaces joined by a veth pair, for the live-capture tests, and the
//! checks those tests make before they need root.
//!
//! Each test picks its own `tag` and `subnet` so tests running in parallel never share a
//! namespace, device, address or MAC: namespaces `nl{tag}_a{pid}`/`nl{tag}_b{pid}`,
//! devices `nl{tag}v0`/`nl{tag}v1`, addresses `10.{subnet}.0.1`/`.2`, MACs
//! `02:00:0a:{subnet:02x}:00:01`/`:02`. Dropping the value deletes the namespaces.

use std::process::{Command, Stdio};

/// Whether `cmd` is on the PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs `cmd` with sh; the test fails if it fails.
pub fn sh(cmd: &str) {
    let st = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .expect("run sh");
    assert!(st.success(), "command failed: {cmd}");
}

pub struct Netns {
    /// The namespace of `10.{subnet}.0.1` on device `dev_a`.
    pub a: String,
    pub b: String,
    pub dev_a: String,
}

impl Netns {
    pub fn new(tag: &str, subnet: u8) -> Self {
        let id = std::process::id() % 100_000;
        let n = Netns {
            a: format!("nl{tag}_a{id}"),
            b: format!("nl{tag}_b{id}"),
            dev_a: format!("nl{tag}v0"),
        };
        let dev_b = format!("nl{tag}v1");
        n.cleanup();
        sh(&format!("ip netns add {} && ip netns add {}", n.a, n.b));
        sh(&format!(
            "ip link add {} netns {} address 02:00:0a:{subnet:02x}:00:01 type veth peer name {dev_b} netns {} address 02:00:0a:{subnet:02x}:00:02",
            n.dev_a, n.a, n.b
        ));
        for (ns, dev, ip) in [
            (&n.a, &n.dev_a, format!("10.{subnet}.0.1/24")),
            (&n.b, &dev_b, format!("10.{subnet}.0.2/24")),
        ] {
            sh(&format!(
                "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1"
            ));
            sh(&format!("ip -n {ns} link set lo up"));
            sh(&format!(
                "ip -n {ns} addr add {ip} dev {dev} && ip -n {ns} link set {dev} up"
            ));
            // Offloads off so frames look like the wire (no 64 KB GRO super-frames).
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "ip netns exec {ns} ethtool -K {dev} tso off gso off gro off tx off"
                ))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        n
    }

    fn cleanup(&self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ip netns del {} 2>/dev/null; ip netns del {} 2>/dev/null",
                self.a, self.b
            ))
            .status();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.cleanup();
    }
}
