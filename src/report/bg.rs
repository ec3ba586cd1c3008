//! A temporary file that finished report entries are serialised into by a thread of its
//! own, so the analysis thread only hands the entry over.
//!
//! Serialising connection and stream entries to JSON was about a sixth of the analysis
//! thread's time on a `--streams` run; on two cores it overlaps with the analysis instead.
//!
//! Invariants:
//! - Entries are written in the order they were pushed, exactly as serialising them on
//!   the caller's thread would write them (same bytes, same offsets).
//! - Memory is bounded: at most [`QUEUE`] entries wait for the thread.
//! - [`BgFile::settle`] waits for every entry pushed so far and reports the first error;
//!   after it the file is written directly on the caller's thread (no thread is left).
//! - An I/O error on the thread (disk full) stops it; the next push or settle returns
//!   that error.

use std::fs::File;
use std::io::{self, BufWriter};
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

use serde::Serialize;

use super::json::write_counted;

/// Entries waiting for the thread at most.
const QUEUE: usize = 64;

type Job = (
    u64,
    Box<dyn FnOnce(&mut BufWriter<File>) -> io::Result<u64> + Send>,
);

/// The file, its length, and the (key, offset, length) of the entries the thread wrote.
pub struct Written {
    pub file: BufWriter<File>,
    pub pos: u64,
    pub rows: Vec<(u64, u64, u64)>,
}

enum State {
    Thread {
        tx: SyncSender<Job>,
        handle: JoinHandle<io::Result<Written>>,
    },
    Direct(Written),
    /// Between states, or after an error was returned.
    Broken,
}

pub struct BgFile {
    state: State,
}

impl BgFile {
    /// A new temporary file with its serialising thread (written directly if no thread
    /// can be started).
    pub fn new() -> io::Result<Self> {
        let written = Written {
            file: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
            pos: 0,
            rows: Vec::new(),
        };
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        let handle = std::thread::Builder::new()
            .name("netlens-spill".into())
            .spawn(move || {
                let mut w = written;
                for (key, job) in rx {
                    let len = job(&mut w.file)?;
                    w.rows.push((key, w.pos, len));
                    w.pos += len;
                }
                Ok(w)
            })
            .map_err(|e| {
                io::Error::new(e.kind(), format!("could not start the spill thread: {e}"))
            })?;
        let state = State::Thread { tx, handle };
        Ok(BgFile { state })
    }

    /// A temporary file written on the caller's thread only.
    pub fn direct() -> io::Result<Self> {
        Ok(BgFile {
            state: State::Direct(Written {
                file: BufWriter::with_capacity(1 << 16, tempfile::tempfile()?),
                pos: 0,
                rows: Vec::new(),
            }),
        })
    }

    /// A file already written.
    pub fn from_written(w: Written) -> Self {
        BgFile {
            state: State::Direct(w),
        }
    }

    /// Serialises `value` under `key` (on the thread, or here once settled).
    pub fn push<T: Serialize + Send + 'static>(&mut self, key: u64, value: T) -> io::Result<()> {
        match &mut self.state {
            State::Thread { tx, .. } => {
                let job: Job = (key, Box::new(move |w| write_counted(w, &value)));
                if tx.send(job).is_err() {
                    // The thread stopped at an error: return it.
                    self.settle()?;
                    return Err(io::Error::other("spill thread stopped"));
                }
                Ok(())
            }
            State::Direct(w) => {
                let len = write_counted(&mut w.file, &value)?;
                w.rows.push((key, w.pos, len));
                w.pos += len;
                Ok(())
            }
            State::Broken => Err(io::Error::other("the spill file failed earlier")),
        }
    }

    /// Waits for every entry pushed so far; the file and the rows written since the last
    /// settle (taken: the caller keeps its own index).
    pub fn settle(&mut self) -> io::Result<&mut Written> {
        if let State::Thread { .. } = self.state {
            let State::Thread { tx, handle } = std::mem::replace(&mut self.state, State::Broken)
            else {
                unreachable!()
            };
            drop(tx);
            let w = handle
                .join()
                .map_err(|_| io::Error::other("spill thread panicked"))??;
            self.state = State::Direct(w);
        }
        match &mut self.state {
            State::Direct(w) => Ok(w),
            _ => Err(io::Error::other("the spill file failed earlier")),
        }
    }
}

impl BgFile {
    /// Settles and gives the file up.
    pub fn into_written(mut self) -> io::Result<Written> {
        self.settle()?;
        match std::mem::replace(&mut self.state, State::Broken) {
            State::Direct(w) => Ok(w),
            _ => Err(io::Error::other("the spill file failed earlier")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, SeekFrom, Write};

    #[test]
    fn entries_land_in_push_order_with_their_offsets() {
        let mut b = BgFile::new().unwrap();
        for k in 0..1000u64 {
            b.push(k % 7, vec![k; (k % 5) as usize]).unwrap();
        }
        let w = b.settle().unwrap();
        let rows = std::mem::take(&mut w.rows);
        assert_eq!(rows.len(), 1000);
        b.push(99, "after").unwrap();
        let w = b.settle().unwrap();
        assert_eq!(
            w.rows,
            vec![(99, rows.last().map(|r| r.1 + r.2).unwrap(), 7)]
        );
        w.file.flush().unwrap();
        let f = w.file.get_mut();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut all = String::new();
        f.read_to_string(&mut all).unwrap();
        for (i, &(key, pos, len)) in rows.iter().enumerate() {
            let k = i as u64;
            assert_eq!(key, k % 7);
            let want = serde_json::to_string(&vec![k; (k % 5) as usize]).unwrap();
            assert_eq!(&all[pos as usize..(pos + len) as usize], want);
        }
        assert!(all.ends_with("\"after\""));
    }
}
