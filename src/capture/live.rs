//! Live capture from a network interface through pnet's datalink channel (AF_PACKET on
//! Linux: no libpcap, no system library).
//!
//! A capture thread reads frames from the kernel and hands them to the analysis thread
//! through a bounded queue: when analysis falls behind, frames are dropped at the queue and
//! counted (`dropped_queue_full`), never buffered without bound. Frames are stamped with the
//! wall clock as they are read (pnet gives no kernel timestamp); everything after capture
//! uses those timestamps only, so a `--write` file read back gives the same report.
//!
//! The capture ends on the stop flag (SIGINT/SIGTERM, set by the binary), `--count`, or
//! `--duration`; the queue wait and the kernel read both time out every 100 ms so a stop
//! takes effect within a second even when no frame arrives. What pnet cannot report: drops
//! inside the kernel's socket buffer.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pnet_datalink::{self as datalink, Channel, NetworkInterface};
use serde::Serialize;

use super::{linktype, InterfaceInfo, Next, RawPacket};
use crate::error::{Error, Result};

/// How to capture.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub interface: String,
    /// Set by a signal handler (or a test) to end the capture.
    pub stop: Arc<AtomicBool>,
    pub duration: Option<Duration>,
    /// Frames the queue between capture and analysis holds.
    pub queue: usize,
    pub promiscuous: bool,
}

/// Counters of the capture thread, for the report.
#[derive(Debug, Default)]
pub struct LiveCounters {
    pub captured: AtomicU64,
    pub dropped_queue_full: AtomicU64,
}

/// Capture counters as the report shows them.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LiveStats {
    /// Frames read from the kernel.
    pub captured: u64,
    /// Frames read but dropped because analysis fell behind (bounded queue full).
    pub dropped_queue_full: u64,
}

struct Frame {
    ts_ns: i64,
    data: Vec<u8>,
}

enum Msg {
    Frame(Frame),
    Failed(io::Error),
}

/// An open live capture.
pub struct LiveCapture {
    rx: Receiver<Msg>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<LiveCounters>,
    stop: Arc<AtomicBool>,
    deadline: Option<Instant>,
    current: Option<Frame>,
    pub info: InterfaceInfo,
    done: bool,
}

/// One interface as `netlens interfaces` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceListing {
    pub name: String,
    pub index: u32,
    pub mac: Option<String>,
    pub addresses: Vec<String>,
    pub up: bool,
    pub running: bool,
    pub link_type: String,
    pub capture_permitted: bool,
}

/// True when this process may open packet sockets: root, or CAP_NET_RAW in the effective set.
pub fn capture_permitted() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0)
}

/// The LINKTYPE of an interface from its ARPHRD type in sysfs; None if netlens cannot
/// capture on it without misparsing its frames.
fn interface_linktype(name: &str) -> Option<u32> {
    let ty = std::fs::read_to_string(format!("/sys/class/net/{name}/type")).ok()?;
    match ty.trim().parse::<u32>().ok()? {
        // ARPHRD_ETHER, ARPHRD_LOOPBACK (the loopback device frames with a zero Ethernet
        // header on Linux), ARPHRD_IEEE802 (Ethernet framing).
        1 | 6 | 772 => Some(linktype::ETHERNET),
        // ARPHRD_NONE (tun), ARPHRD_TUNNEL, ARPHRD_TUNNEL6, ARPHRD_IPGRE, ARPHRD_SIT: IP
        // packets with no link header.
        65534 | 768 | 769 | 778 | 776 => Some(linktype::RAW),
        _ => None,
    }
}

/// Lists the capture interfaces.
pub fn list_interfaces() -> Vec<InterfaceListing> {
    let permitted = capture_permitted();
    let mut out: Vec<InterfaceListing> = datalink::interfaces()
        .into_iter()
        .map(|i| InterfaceListing {
            link_type: interface_linktype(&i.name).map_or("unsupported".into(), linktype::name),
            mac: i.mac.map(|m| m.to_string()),
            addresses: i.ips.iter().map(|n| n.to_string()).collect(),
            up: i.is_up(),
            running: i.is_running(),
            name: i.name,
            index: i.index,
            capture_permitted: permitted,
        })
        .collect();
    out.sort_by_key(|i| i.index);
    out
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

impl LiveCapture {
    /// Opens `opts.interface` and starts the capture thread.
    pub fn open(opts: &LiveOptions) -> Result<Self> {
        let all = datalink::interfaces();
        let Some(iface) = all.iter().find(|i| i.name == opts.interface).cloned() else {
            let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
            return Err(Error::Live(format!(
                "there is no interface named {}; the interfaces here are: {} (see `netlens interfaces`)",
                opts.interface,
                names.join(", ")
            )));
        };
        if !iface.is_up() {
            return Err(Error::Live(format!(
                "interface {} is down; bring it up with `ip link set {} up` and try again",
                iface.name, iface.name
            )));
        }
        let Some(link_type) = interface_linktype(&iface.name) else {
            return Err(Error::Live(format!(
                "interface {} is neither Ethernet nor raw IP, so netlens cannot dissect its frames; capture it with tcpdump and read the file",
                iface.name
            )));
        };
        let config = datalink::Config {
            read_buffer_size: 256 * 1024,
            read_timeout: Some(Duration::from_millis(100)),
            promiscuous: opts.promiscuous,
            ..datalink::Config::default()
        };
        let channel = match datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => rx,
            Ok(_) => {
                return Err(Error::Live(format!(
                    "interface {}: pnet opened an unexpected channel type",
                    iface.name
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(1) => {
                return Err(Error::Live(format!(
                    "live capture on {} needs root or CAP_NET_RAW: run it as root, or grant the capability once with `sudo setcap cap_net_raw,cap_net_admin=eip {}`",
                    iface.name,
                    std::env::current_exe().map_or("netlens".into(), |p| p.display().to_string())
                )))
            }
            Err(e) => return Err(Error::Live(format!("cannot capture on {}: {e}", iface.name))),
        };
        let (tx, rx) = mpsc::sync_channel(opts.queue.max(16));
        let counters = Arc::new(LiveCounters::default());
        let thread = spawn_reader(channel, tx, counters.clone(), opts.stop.clone());
        Ok(LiveCapture {
            rx,
            thread: Some(thread),
            counters,
            stop: opts.stop.clone(),
            deadline: opts.duration.map(|d| Instant::now() + d),
            current: None,
            info: InterfaceInfo {
                port: 0,
                file_index: 0,
                link_type,
                link_type_name: linktype::name(link_type),
                name: Some(iface.name.clone()),
                snaplen: 262_144,
            },
            done: false,
        })
    }

    pub fn stats(&self) -> LiveStats {
        LiveStats {
            captured: self.counters.captured.load(Ordering::Relaxed),
            dropped_queue_full: self.counters.dropped_queue_full.load(Ordering::Relaxed),
        }
    }

    fn finish(&mut self) {
        self.done = true;
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// The next frame; `Next::Idle` when none arrived within 100 ms (so the caller can
    /// refresh its display), `Next::End` once stopped.
    pub fn next_packet(&mut self, frame: u64) -> Next<'_> {
        if self.done {
            return Next::End;
        }
        let expired = self.deadline.is_some_and(|d| Instant::now() >= d);
        if self.stop.load(Ordering::Relaxed) || expired {
            self.finish();
            return Next::End;
        }
        match self.rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Msg::Frame(f)) => {
                self.current = Some(f);
                let Some(f) = self.current.as_ref() else {
                    return Next::End;
                };
                Next::Packet(RawPacket {
                    frame,
                    ts_ns: f.ts_ns,
                    wire_len: f.data.len() as u32,
                    data: &f.data,
                    link_type: self.info.link_type,
                    port: 0,
                    file_index: 0,
                    block: None,
                })
            }
            Ok(Msg::Failed(e)) => {
                let name = self.info.name.clone().unwrap_or_default();
                self.finish();
                Next::Damaged(super::Damage {
                    path: name,
                    offset: 0,
                    after_frame: frame - 1,
                    reason: format!("the capture failed: {e}"),
                })
            }
            Err(RecvTimeoutError::Timeout) => Next::Idle,
            Err(RecvTimeoutError::Disconnected) => {
                self.finish();
                Next::End
            }
        }
    }
}

impl Drop for LiveCapture {
    fn drop(&mut self) {
        self.finish();
    }
}

fn spawn_reader(
    mut rx: Box<dyn datalink::DataLinkReceiver>,
    tx: SyncSender<Msg>,
    counters: Arc<LiveCounters>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match rx.next() {
                Ok(data) => {
                    counters.captured.fetch_add(1, Ordering::Relaxed);
                    let frame = Frame {
                        ts_ns: now_ns(),
                        data: data.to_vec(),
                    };
                    match tx.try_send(Msg::Frame(frame)) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            counters.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::TimedOut
                        || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Msg::Failed(e));
                    return;
                }
            }
        }
    })
}

/// Resolves an interface by name (used by `netlens interfaces` checks and tests).
pub fn find_interface(name: &str) -> Option<NetworkInterface> {
    datalink::interfaces().into_iter().find(|i| i.name == name)
}
