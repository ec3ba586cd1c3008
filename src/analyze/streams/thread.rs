//! Stream reassembly on a thread of its own.
//!
//! `--streams` costs about as much again as everything else a run does, and the machines
//! netlens runs on have two cores or more. The connection tracker has to see a packet
//! before the stream analysis does (it assigns the connection id and finalizes
//! connections), so the work splits by stage, not by flow: the pipeline thread dissects
//! and tracks, and hands the [`StreamAnalyzer`] what it reads of each packet (ids, the
//! TCP or UDP header fields, where the captured payload is, the connections finalized)
//! through a bounded channel; the stream thread replays those calls. A payload that lies
//! in a read-ahead block ([`SharedBlock`], the usual case when reading a file) is not
//! copied: the batch holds the block, which returns to the reading thread's pool when
//! the batch has been replayed. Other payloads (reassembled IP fragments, captures read
//! from a pipe, a record longer than the block headroom) are copied into the batch.
//!
//! The MAC table rides along when it is on: it reads a small [`Frame`] per frame and
//! shares nothing with the stream analysis, and the pipeline thread is the busier of the
//! two. So does the JSON of finished connections: the tracker lends its spill
//! ([`Analyzer::lend_spill`](crate::analyze::Analyzer::lend_spill)) and hands over each
//! finished connection ([`Finished`]), whose entry this thread builds (unless the tracker
//! needed it for its views), serialises and writes (together about 8% of the pipeline
//! thread's instructions in a 1 GB `--all --json` run). When this thread falls behind
//! (the channel is full when a batch is sent), the pipeline thread writes that batch's
//! connection JSON itself in the time it would wait, and this thread only copies the bytes
//! into the spill: in that run this thread is the busier one for most of the second half,
//! when idle UDP flows time out by the thousand. At the end of input
//! ([`StreamThread::close`]) this thread finalizes the open stream directions while the
//! pipeline thread finalizes the open connections.
//!
//! Invariants:
//! - The analyzer receives exactly the calls, in exactly the order, that
//!   [`Analyzer::on_packet`](crate::analyze::Analyzer::on_packet) would make inline, so the report is the same
//!   (tests/streams_thread.rs compares both on every fixture); the same holds for the
//!   MAC table's frames.
//! - Memory is bounded: at most [`DEPTH`] full batches wait in the channel, each cut at
//!   [`BATCH_BYTES`] copied payload bytes, [`BATCH_BLOCKS`] blocks held, [`BATCH_ITEMS`]
//!   items or [`BATCH_CONNS`] connection entries (a batch is sent in the middle of a
//!   packet when one packet finalizes more, as a file that rewinds time does).
//! - Connection entries reach the spill in the order the tracker finalized them; the
//!   spill sorts by id, so the JSON is the same as when the tracker writes them.
//! - Events (`--ndjson`, `--zeek-logs`) are produced per packet and written in order with
//!   the other analyzers' events, so runs that want events keep the analysis inline; the
//!   pipeline decides ([`StreamThread::spawn`] is only called without events).
//! - A panic on the stream thread is re-raised on the pipeline thread at
//!   [`StreamThread::join`], never swallowed.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::seg::{DgramHead, SegHead};
use super::StreamAnalyzer;
use crate::analyze::conns::Finished;
use crate::analyze::mac_table::{Frame, MacTableAnalyzer};
use crate::analyze::{Ctx, Dir};
use crate::capture::SharedBlock;
use crate::cpu::prefetch;
use crate::dissect::{Packet, Transport};
use crate::report::json::Spill;

/// Full batches waiting for the stream thread. With the one being filled and the one
/// being replayed, `DEPTH + 2` batches exist, all made when the thread starts, so the
/// memory of a run does not depend on how far ahead of the stream thread it got.
/// (Batches a quarter this size, 2 deep, made the 1 GB `--streams` run 13% slower: the
/// stream thread waited on an empty channel more often.)
pub const DEPTH: usize = 4;
/// Payload bytes per batch (a batch may end up to one segment over).
pub const BATCH_BYTES: usize = 256 << 10;
/// Calls per batch (72 bytes each).
pub const BATCH_ITEMS: usize = 2048;
/// Read-ahead blocks (1 MiB each) a batch may hold. A batch of 2,048 packets of the
/// benchmark capture spans less than one.
pub const BATCH_BLOCKS: usize = 2;
/// Capacity of a batch's connection JSON kept for reuse (a full batch of the 1 GB
/// benchmark capture's entries, 780 bytes on average, takes about 200 KiB of it).
const BATCH_JSON_KEEP: usize = 512 << 10;
/// Finished connections per batch (each a boxed connection, about 2 KiB with its TCP state,
/// or a boxed entry).
pub const BATCH_CONNS: usize = 256;

/// Where a segment's captured payload is. Lengths are `u32`: the captured payload is a
/// prefix of the wire payload, whose length ([`SegHead::payload_len`]) is a `u32`.
#[derive(Clone, Copy)]
enum Bytes {
    /// `Batch::bytes[at..at + len]`.
    Copied { at: usize, len: u32 },
    /// `Batch::blocks[block][at..at + len]`.
    Held { block: u32, at: u32, len: u32 },
}

/// The two addresses of a packet: an IPv4 pair in place, others in `Batch::addrs`
/// (an IPv6 pair would double an item's size).
#[derive(Clone, Copy)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    /// An index below [`BATCH_ITEMS`] (one pair per item at most).
    At(u32),
}

/// One call to replay. Small on purpose (about half the size of one holding the dissected
/// header and the addresses as `IpAddr`s): every TCP and UDP packet's item is written on
/// the pipeline thread's core and read on the stream thread's.
enum Item {
    Tcp {
        id: u64,
        dir: Dir,
        frame: u64,
        addrs: Addrs,
        head: SegHead,
        payload: Bytes,
    },
    Udp {
        id: u64,
        dir: Dir,
        frame: u64,
        addrs: Addrs,
        head: DgramHead,
        /// Range of `Batch::frags` holding the frames it was reassembled from.
        frags: (usize, usize),
    },
    Finalize(u64),
}

/// How many items ahead the replay loops ask for the memory of the item they will read
/// (`cpu::prefetch`): a batch was filled on the pipeline thread's core, and the hardware
/// prefetchers did not hide those reads (perf put half of the MAC table's samples on the
/// first load of each frame).
const AHEAD: usize = 8;

#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    /// Address pairs that are not both IPv4 ([`Addrs::At`]).
    addrs: Vec<(IpAddr, IpAddr)>,
    bytes: Vec<u8>,
    blocks: Vec<Arc<SharedBlock>>,
    frags: Vec<u64>,
    /// Every frame, as the MAC table reads it (empty when the table is not here).
    frames: Vec<Frame>,
    /// Finished connections for the lent spill.
    conns: Vec<Finished>,
    /// The JSON of finished connections the pipeline thread wrote itself, while it waited
    /// for the stream thread ([`Batch::write_conns`]), and (id, start, length) of each.
    conn_json: Vec<u8>,
    conn_json_at: Vec<(u64, usize, usize)>,
    /// The error that stopped [`Batch::write_conns`] (the spill reports it).
    conn_json_err: Option<io::Error>,
}

impl Batch {
    fn new(mac: bool) -> Batch {
        Batch {
            items: Vec::with_capacity(BATCH_ITEMS),
            addrs: Vec::new(),
            bytes: Vec::with_capacity(2 * BATCH_BYTES),
            blocks: Vec::with_capacity(BATCH_BLOCKS),
            frags: Vec::new(),
            frames: Vec::with_capacity(if mac { BATCH_ITEMS } else { 0 }),
            conns: Vec::new(),
            conn_json: Vec::new(),
            conn_json_at: Vec::new(),
            conn_json_err: None,
        }
    }

    fn full(&self) -> bool {
        self.items.len() >= BATCH_ITEMS
            || self.frames.len() >= BATCH_ITEMS
            || self.bytes.len() >= BATCH_BYTES
            || self.blocks.len() >= BATCH_BLOCKS
            || self.conns.len() >= BATCH_CONNS
    }

    fn is_empty(&self) -> bool {
        self.items.is_empty() && self.frames.is_empty() && self.conns.is_empty()
    }

    /// Writes the JSON of the batch's finished connections here, on the pipeline thread,
    /// in finalize order: the stream thread then only copies the bytes into the spill.
    /// (Called when the stream thread is behind, in the time this thread would wait.)
    fn write_conns(&mut self) {
        for f in self.conns.drain(..) {
            if self.conn_json_err.is_some() {
                // The spill ends at the error; the rest is dropped, as the stream thread would.
                continue;
            }
            let start = self.conn_json.len();
            match f.write_json(&mut self.conn_json) {
                Ok(id) => self
                    .conn_json_at
                    .push((id, start, self.conn_json.len() - start)),
                Err(e) => self.conn_json_err = Some(e),
            }
        }
    }

    /// Replays the batch's frames to the MAC table, in order. It and the stream analysis
    /// share no state, so it does not matter which of them sees a batch first.
    fn replay_frames(&self, mac: &mut MacTableAnalyzer) {
        for (i, f) in self.frames.iter().enumerate() {
            if let Some(ahead) = self.frames.get(i + AHEAD) {
                prefetch(ahead);
            }
            mac.on_frame(f);
        }
    }

    /// Replays the batch's calls, in order.
    fn replay(&self, a: &mut StreamAnalyzer) {
        for (i, item) in self.items.iter().enumerate() {
            if let Some(ahead) = self.items.get(i + AHEAD) {
                prefetch(ahead);
            }
            match item {
                Item::Tcp {
                    id,
                    dir,
                    frame,
                    addrs,
                    head,
                    payload,
                } => {
                    let (payload, block) = match *payload {
                        Bytes::Copied { at, len } => (&self.bytes[at..at + len as usize], None),
                        Bytes::Held { block, at, len } => {
                            let b: &SharedBlock = &self.blocks[block as usize];
                            let at = at as usize;
                            (&b[at..at + len as usize], Some(b))
                        }
                    };
                    let ips = self.ips(*addrs);
                    a.on_tcp(*id, *dir, *frame, ips, head, payload, block);
                }
                Item::Udp {
                    id,
                    dir,
                    frame,
                    addrs,
                    head,
                    frags,
                } => {
                    let ips = self.ips(*addrs);
                    a.on_udp(*id, *dir, *frame, ips, head, &self.frags[frags.0..frags.1]);
                }
                Item::Finalize(id) => a.finalize(*id),
            }
        }
    }

    /// The addresses `a` stands for.
    fn ips(&self, a: Addrs) -> (IpAddr, IpAddr) {
        match a {
            Addrs::V4(s, d) => (IpAddr::V4(s), IpAddr::V4(d)),
            Addrs::At(i) => self.addrs[i as usize],
        }
    }

    /// How the batch keeps the addresses `ips`.
    fn addrs(&mut self, ips: (IpAddr, IpAddr)) -> Addrs {
        match ips {
            (IpAddr::V4(s), IpAddr::V4(d)) => Addrs::V4(s, d),
            _ => {
                self.addrs.push(ips);
                // At most one pair per item, and a batch is sent at BATCH_ITEMS items.
                Addrs::At((self.addrs.len() - 1) as u32)
            }
        }
    }

    /// Where the batch keeps `payload`: inside `block` when it lies there (holding the
    /// block), copied otherwise.
    fn place(&mut self, payload: &[u8], block: Option<&Arc<SharedBlock>>) -> Bytes {
        // Never more than the wire length, a u32 (see `Bytes`).
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        let payload = &payload[..len as usize];
        if let Some(blk) = block.filter(|_| !payload.is_empty()) {
            // A block is a few MiB: its offsets fit a u32 (else the bytes are copied).
            if let Some(at) = blk.index_of(payload).and_then(|a| u32::try_from(a).ok()) {
                if !self
                    .blocks
                    .last()
                    .is_some_and(|last| Arc::ptr_eq(last, blk))
                {
                    self.blocks.push(Arc::clone(blk));
                }
                return Bytes::Held {
                    // Below BATCH_BLOCKS.
                    block: (self.blocks.len() - 1) as u32,
                    at,
                    len,
                };
            }
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(payload);
        Bytes::Copied { at, len }
    }

    fn clear(&mut self) {
        self.items.clear();
        self.addrs.clear();
        self.bytes.clear();
        // The blocks go back to the reading thread's pool (if nothing else holds them).
        self.blocks.clear();
        self.frags.clear();
        self.frames.clear();
        self.conns.clear();
        self.conn_json.clear();
        self.conn_json_at.clear();
        self.conn_json_err = None;
        if self.conn_json.capacity() > BATCH_JSON_KEEP {
            // One batch of large entries: do not keep its buffer.
            self.conn_json = Vec::new();
        }
    }
}

/// The lent connection spill on the stream thread: the spill, or the error that ended it
/// (the tracker reports it, as when it writes entries itself).
struct ConnSpill(Option<io::Result<Spill>>);

impl ConnSpill {
    /// Pushes the batch's connection entries: those whose JSON the pipeline thread wrote,
    /// then the others (ids are unique and the spill sorts by id, so the order of the
    /// pushes does not show in the report).
    fn write_batch(&mut self, b: &mut Batch) {
        if let Some(Ok(s)) = self.0.as_mut() {
            for &(id, at, len) in &b.conn_json_at {
                if let Err(err) = s.push_keyed_bytes(id, &b.conn_json[at..at + len]) {
                    self.0 = Some(Err(err));
                    break;
                }
            }
        }
        if let Some(err) = b.conn_json_err.take() {
            if let Some(Ok(_)) = self.0 {
                self.0 = Some(Err(err));
            }
        }
        self.write(&mut b.conns);
    }

    fn write(&mut self, finished: &mut Vec<Finished>) {
        if let Some(Ok(s)) = self.0.as_mut() {
            for f in finished.drain(..) {
                let e = f.into_entry();
                if let Err(err) = s.push_keyed_json(e.id, &e) {
                    self.0 = Some(Err(err));
                    break;
                }
            }
        }
        // The rest (after a failure) is dropped here, on this thread.
        finished.clear();
    }
}

/// The pipeline thread's end of a stream analysis running on its own thread.
pub struct StreamThread {
    batch: Batch,
    /// None once the stream thread is gone (it panicked): nothing more is sent, and
    /// [`join`](Self::join) re-raises the panic.
    tx: Option<SyncSender<Batch>>,
    /// Replayed batches coming back for reuse.
    spare: Receiver<Batch>,
    /// Whether frames are queued for the MAC table.
    mac: bool,
    worker: JoinHandle<Joined>,
}

/// What the stream thread hands back at [`StreamThread::join`].
pub struct Joined {
    /// Its input ended ([`StreamAnalyzer::end_of_input`]).
    pub streams: StreamAnalyzer,
    pub mac: Option<MacTableAnalyzer>,
    /// The connection spill lent at [`StreamThread::spawn`], or the error that ended it.
    pub conn_spill: Option<io::Result<Spill>>,
}

impl StreamThread {
    /// Moves `analyzer` to a new thread, with the MAC table if given: it reads neither
    /// the transport layer nor [`Ctx`], and the pipeline thread is the busier one (in a
    /// 1 GB `--all` run it worked all the time while this thread idled a third of it, and
    /// the table was a tenth of the pipeline thread's work).
    pub fn spawn(
        mut analyzer: StreamAnalyzer,
        mut mac: Option<MacTableAnalyzer>,
        conn_spill: Option<Spill>,
    ) -> std::io::Result<StreamThread> {
        let mut conn_spill = ConnSpill(conn_spill.map(Ok));
        let with_mac = mac.is_some();
        let (tx, rx) = sync_channel::<Batch>(DEPTH);
        // Room for every batch that can exist, so returning one never blocks.
        let (back, spare) = sync_channel::<Batch>(DEPTH + 2);
        for _ in 0..DEPTH + 1 {
            let _ = back.try_send(Batch::new(with_mac));
        }
        let worker = std::thread::Builder::new()
            .name("netlens-streams".into())
            .spawn(move || {
                for mut b in rx {
                    b.replay(&mut analyzer);
                    if let Some(m) = mac.as_mut() {
                        b.replay_frames(m);
                    }
                    conn_spill.write_batch(&mut b);
                    b.clear();
                    let _ = back.try_send(b);
                }
                // The channel closed: the input ended (see `close`).
                analyzer.end_of_input();
                Joined {
                    streams: analyzer,
                    mac,
                    conn_spill: conn_spill.0,
                }
            })?;
        Ok(StreamThread {
            batch: Batch::new(with_mac),
            tx: Some(tx),
            spare,
            mac: with_mac,
            worker,
        })
    }

    /// What [`Analyzer::on_packet`](crate::analyze::Analyzer::on_packet) of the stream analysis
    /// would do with `p`, queued for the stream thread. `block` is the read-ahead block
    /// the packet was read from, if any ([`RawPacket::block`](crate::capture::RawPacket)).
    pub fn on_packet(&mut self, p: &Packet<'_>, ctx: &mut Ctx, block: Option<&Arc<SharedBlock>>) {
        if !ctx.conn_entries.is_empty() {
            self.queue_conns(&mut ctx.conn_entries);
        }
        let b = &mut self.batch;
        if let (Some(c), Some(ips)) = (ctx.conn, p.ips()) {
            match &p.transport {
                Transport::Tcp(t) => {
                    let payload = b.place(t.payload, block);
                    let addrs = b.addrs(ips);
                    b.items.push(Item::Tcp {
                        id: c.id,
                        dir: c.dir,
                        frame: p.frame,
                        addrs,
                        head: SegHead::of(t),
                        payload,
                    });
                }
                Transport::Udp(u) => {
                    let start = b.frags.len();
                    b.frags.extend_from_slice(p.reassembled_from);
                    let addrs = b.addrs(ips);
                    // The stream analysis reads UDP lengths, never the bytes.
                    b.items.push(Item::Udp {
                        id: c.id,
                        dir: c.dir,
                        frame: p.frame,
                        addrs,
                        head: DgramHead::of(u),
                        frags: (start, b.frags.len()),
                    });
                }
                _ => {}
            }
        }
        b.items
            .extend(ctx.finalized.iter().map(|&id| Item::Finalize(id)));
        if self.mac {
            b.frames.push(Frame::of(p));
        }
        if b.full() {
            self.send();
        }
    }

    /// Moves connection entries into the batch, sending it whenever it holds
    /// [`BATCH_CONNS`] of them (they share nothing with the packet's stream calls). Out
    /// of line: one packet in forty finalizes a connection.
    #[inline(never)]
    fn queue_conns(&mut self, entries: &mut Vec<Finished>) {
        let mut rest = entries.drain(..);
        loop {
            let room = BATCH_CONNS.saturating_sub(self.batch.conns.len());
            self.batch.conns.extend(rest.by_ref().take(room));
            if rest.len() == 0 {
                break;
            }
            self.send();
        }
    }

    fn send(&mut self) {
        let Some(tx) = &self.tx else {
            // The stream thread is gone (`join` reports why): nothing more is replayed.
            self.batch.clear();
            return;
        };
        let full = mem::take(&mut self.batch);
        let sent = match tx.try_send(full) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(mut full)) => {
                // The stream thread is behind (in a 1 GB `--all --json` run, for most of
                // the second half, when idle UDP flows time out by the thousand): the JSON
                // of the batch's finished connections is written here, in the time this
                // thread would otherwise wait, and that thread only copies it.
                full.write_conns();
                tx.send(full).map_err(|_| ())
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            self.tx = None;
            self.batch = Batch::new(self.mac);
            return;
        }
        // A spare comes back as soon as the stream thread finished replaying one; only
        // when it is gone (and the pool with it) is a new batch made.
        let mac = self.mac;
        self.batch = self.spare.recv().unwrap_or_else(|_| Batch::new(mac));
    }

    /// The input ended: sends what is queued and closes the channel. The stream thread
    /// replays the rest and then finalizes the open directions
    /// ([`StreamAnalyzer::end_of_input`]) while the caller goes on (with the other
    /// analyses' end of input, which share nothing with it).
    pub fn close(&mut self) {
        if !self.batch.is_empty() {
            self.send();
        }
        drop(self.tx.take());
    }

    /// Closes the channel if [`close`](Self::close) did not, waits for the thread, and
    /// hands back the analyzer, whose input has ended, and the MAC table, ready for
    /// [`Analyzer::finish`](crate::analyze::Analyzer::finish), and the lent spill.
    pub fn join(mut self) -> Joined {
        self.close();
        match self.worker.join() {
            Ok(a) => a,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, ConnSpill};
    use crate::analyze::conns::Finished;
    use crate::report::json::Spill;

    /// The connections array the spill of `batch` holds once the stream thread took it.
    fn spilled(mut batch: Batch) -> String {
        let mut spill = ConnSpill(Some(Ok(Spill::new().unwrap())));
        spill.write_batch(&mut batch);
        let Some(Ok(mut s)) = spill.0 else {
            panic!("the spill failed");
        };
        let mut out = Vec::new();
        s.for_each_entry(&mut |e| {
            out.extend_from_slice(e);
            out.push(b'\n');
            Ok(())
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Connection JSON the pipeline thread wrote (when the stream thread was behind) ends
    /// up in the report exactly as the JSON the stream thread writes: same bytes, by id,
    /// whichever thread wrote which entry.
    #[test]
    fn connection_json_is_the_same_from_either_thread() {
        let ports = [5u16, 3, 9, 1, 7, 4];
        let finished = |ps: &[u16]| ps.iter().map(|&p| Finished::udp_for_test(p)).collect();
        let want = spilled(Batch {
            conns: finished(&ports),
            ..Batch::default()
        });
        assert_eq!(want.matches("\"id\":").count(), ports.len(), "{want}");

        for here in [2, ports.len()] {
            let mut b = Batch {
                conns: finished(&ports[..here]),
                ..Batch::default()
            };
            b.write_conns();
            assert!(b.conns.is_empty());
            assert_eq!(b.conn_json_at.len(), here);
            b.conns = finished(&ports[here..]);
            assert_eq!(spilled(b), want, "{here} written on the pipeline thread");
        }
    }

    /// An item is written on one core and read on the other for every TCP and UDP packet:
    /// keep it small (the size `BATCH_ITEMS`' doc states).
    #[test]
    fn an_item_is_small() {
        assert_eq!(std::mem::size_of::<super::Item>(), 72);
    }
}
