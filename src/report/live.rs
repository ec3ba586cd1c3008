//! The live status line: on a terminal, about once a second, one line on the error stream
//! with packets, bytes, rate, connections opened and finalized, and the top talkers.
//!
//! It reads the wall clock only to pace itself (never for analysis). Memory is bounded: the
//! talker table stops admitting new addresses at `MAX_TALKERS`.

use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::analyze::Ctx;
use crate::dissect::Packet;

const MAX_TALKERS: usize = 4096;

pub struct LiveDisplay {
    enabled: bool,
    last: Instant,
    last_packets: u64,
    packets: u64,
    bytes: u64,
    opened: u64,
    finalized: u64,
    talkers: FxHashMap<IpAddr, u64>,
    shown: bool,
}

impl LiveDisplay {
    pub fn new(enabled: bool) -> Self {
        LiveDisplay {
            enabled,
            last: Instant::now(),
            last_packets: 0,
            packets: 0,
            bytes: 0,
            opened: 0,
            finalized: 0,
            talkers: FxHashMap::default(),
            shown: false,
        }
    }

    pub fn on_packet(&mut self, p: &Packet<'_>, ctx: &Ctx, err: &mut dyn Write) {
        if !self.enabled {
            return;
        }
        self.packets += 1;
        self.bytes += u64::from(p.wire_len);
        if ctx.conn.is_some_and(|c| c.opened) {
            self.opened += 1;
        }
        self.finalized += ctx.finalized.len() as u64;
        if let Some((src, _)) = p.ips() {
            let n = self.talkers.len();
            if let Some(v) = self.talkers.get_mut(&src) {
                *v += u64::from(p.wire_len);
            } else if n < MAX_TALKERS {
                self.talkers.insert(src, u64::from(p.wire_len));
            }
        }
        self.tick(err);
    }

    /// Redraws the line when a second has passed.
    pub fn tick(&mut self, err: &mut dyn Write) {
        if !self.enabled {
            return;
        }
        let elapsed = self.last.elapsed();
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let rate = (self.packets - self.last_packets) as f64 / elapsed.as_secs_f64();
        self.last = Instant::now();
        self.last_packets = self.packets;
        let mut top: Vec<(&IpAddr, &u64)> = self.talkers.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = top
            .iter()
            .take(3)
            .map(|(ip, b)| format!("{ip} {b} B"))
            .collect();
        let _ = write!(
            err,
            "\r\x1b[Knetlens live: {} pkts, {} B, {:.0} pkt/s, conns opened {} finalized {}; top: {}",
            self.packets,
            self.bytes,
            rate,
            self.opened,
            self.finalized,
            top.join(", ")
        );
        let _ = err.flush();
        self.shown = true;
    }

    /// Erases the line before the final report.
    pub fn clear(&mut self, err: &mut dyn Write) {
        if self.shown {
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
        }
    }
}
