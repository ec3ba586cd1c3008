//! Where finished connections go ([`Sink`]): the aggregates, the JSON spill (or the
//! stream thread, when the spill is lent to it: [`Finished`]), and the rows the terminal
//! views keep.
//!
//! Invariant: an entry is built only for what keeps it (`Sink::count` says what does);
//! while the spill is lent, every finished connection the spill wants goes to the outbox,
//! in finalize order, and nothing is written here until `return_spill`.

use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;

use super::entry::build_entry;
use super::tally::{Keys, Tally};
use super::{Conn, Finalized, Proto};
use crate::report::conns::{ConnEntry, ConnStats, ConnView};
use crate::report::json::Spill;
use crate::report::json_out::{JsonOut, WriteJson};
use crate::report::Warning;

/// Where finished connections go: the aggregates, the spill, the rows the views keep.
pub(super) struct Sink {
    pub(super) spill: Option<Spill>,
    pub(super) spill_error: Option<io::Error>,
    /// The spill is lent to the stream thread (see `Analyzer::lend_spill`): entries go
    /// to `outbox`, and from there into `ctx.conn_entries` or, at the end of input,
    /// into the spill when it comes back.
    pub(super) lent: bool,
    pub(super) outbox: Vec<Finished>,
    /// Where in the report's warnings a failure of the lent spill goes (where
    /// `finish_section` says it when the spill stayed here).
    pub(super) spill_warning_at: Option<usize>,
    /// Counted over all connections, and over those the views' filter matches; both
    /// added to `stats` and `view.stats` by `finish_section`.
    pub(super) tally: Tally,
    pub(super) view_tally: Tally,
    pub(super) stats: ConnStats,
    pub(super) view: ConnView,
    pub(super) rows: BTreeMap<u64, ConnEntry>,
    pub(super) tcp_rows: BTreeMap<u64, ConnEntry>,
    pub(super) limit: usize,
    pub(super) keep_views: bool,
    pub(super) host: Option<IpAddr>,
    pub(super) port: Option<u16>,
}

/// What keeps the entry of a finalized connection (see `Sink::count`).
pub(super) struct Wants {
    pub(super) spill: bool,
    /// The `--conn` focus or a row of the views: the entry is built on this thread.
    pub(super) here: bool,
}

/// A finished connection on its way to the spill lent to the stream thread: its entry, or
/// the connection itself when only the spill wants the entry, which the stream thread then
/// builds ([`into_entry`](Self::into_entry)): building entries was, after their JSON, the
/// next largest part of finalizing (4.2% of the pipeline thread's instructions in a
/// 1 GB `--all --json` run).
pub struct Finished(pub(super) Done);

pub(super) enum Done {
    Entry(Box<ConnEntry>),
    Conn(Box<Conn>, Finalized),
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Done::Entry(e) => write!(f, "Finished(entry of {})", e.id),
            Done::Conn(c, why) => write!(f, "Finished(connection {}, {why:?})", c.id),
        }
    }
}

impl Finished {
    pub fn into_entry(self) -> ConnEntry {
        match self.0 {
            Done::Entry(e) => *e,
            Done::Conn(c, why) => build_entry(&c, why),
        }
    }

    /// Appends the entry's JSON (the bytes [`Spill::push_keyed_json`] writes) to `buf`
    /// and returns its id; on an error, `buf` is as it was.
    pub fn write_json(self, buf: &mut Vec<u8>) -> io::Result<u64> {
        let e = self.into_entry();
        let start = buf.len();
        // No size check: the spill takes a large entry as one piece too.
        let written = e.write_json(&mut JsonOut {
            buf: &mut *buf,
            check: &mut |_| Ok(()),
        });
        if let Err(err) = written {
            buf.truncate(start);
            return Err(err);
        }
        Ok(e.id)
    }
}

#[cfg(test)]
impl Finished {
    /// A finished UDP flow (see `test_udp_conn`), for tests elsewhere.
    pub fn udp_for_test(port: u16) -> Finished {
        Finished(Done::Conn(super::test_udp_conn(port, 0).1, Finalized::End))
    }
}

/// Whether `keep_first` would keep an entry with this id.
fn wants_row(map: &BTreeMap<u64, ConnEntry>, limit: usize, id: u64) -> bool {
    limit == 0 || map.len() < limit || map.last_key_value().is_some_and(|(&k, _)| k > id)
}

/// Keeps `e` among the first `limit` rows by id (0 = all).
fn keep_first(map: &mut BTreeMap<u64, ConnEntry>, limit: usize, e: &ConnEntry) {
    if !wants_row(map, limit, e.id) {
        return;
    }
    if limit != 0 && map.len() >= limit {
        map.pop_last();
    }
    map.insert(e.id, e.clone());
}

impl Sink {
    pub(super) fn matches(&self, c: &Conn) -> bool {
        self.host
            .is_none_or(|h| c.addr[0].0 == h || c.addr[1].0 == h)
            && self
                .port
                .is_none_or(|p| c.addr[0].1 == p || c.addr[1].1 == p)
    }

    /// Counts a finalized connection; says what keeps its entry (the spill, or here the
    /// `--conn` focus or a row the views keep), which is then given to `put`.
    pub(super) fn count(&mut self, c: &Conn, k: &Keys) -> Wants {
        self.tally.add(k);
        let spill = self.spill.is_some() || self.lent;
        if !self.keep_views {
            return Wants { spill, here: false };
        }
        let focus = self.view.focus_id == Some(c.id);
        let mut row = false;
        if self.matches(c) {
            self.view_tally.add(k);
            self.view.rows_total += 1;
            row = wants_row(&self.rows, self.limit, c.id);
            if k.tcp {
                self.view.tcp_total += 1;
                row |= wants_row(&self.tcp_rows, self.limit, c.id);
            }
        }
        Wants {
            spill,
            here: focus || row,
        }
    }

    /// Keeps the entry of a connection `count` has counted and matched; gives it back
    /// unless the lent spill's outbox took it.
    pub(super) fn put(&mut self, c: &Conn, e: ConnEntry) -> Option<ConnEntry> {
        if self.keep_views {
            if self.view.focus_id == Some(e.id) {
                self.view.focus = Some(e.clone());
            }
            if self.matches(c) {
                keep_first(&mut self.rows, self.limit, &e);
                if matches!(c.proto, Proto::Tcp(_)) {
                    keep_first(&mut self.tcp_rows, self.limit, &e);
                }
            }
        }
        if self.lent {
            self.outbox.push(Finished(Done::Entry(Box::new(e))));
            return None;
        }
        self.spill_one(&e);
        Some(e)
    }

    pub(super) fn spill_one(&mut self, e: &ConnEntry) {
        if let Some(sp) = self.spill.as_mut() {
            if let Err(err) = sp.push_keyed_json(e.id, e) {
                if self.spill_error.is_none() {
                    self.spill_error = Some(err);
                }
                self.spill = None;
            }
        }
    }
}

pub(super) fn spill_failed(err: &io::Error) -> Warning {
    Warning {
        kind: "spill-failed".into(),
        message: format!("could not write connection entries to a temporary file: {err}; the JSON report lacks them"),
        path: None,
        offset: None,
        frame: None,
    }
}
