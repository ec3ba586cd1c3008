//! The `connection_stats` aggregates, counted from a finalized connection without building
//! its report entry.
//!
//! Why: the default summary needs four names per connection (handshake outcome, teardown
//! kind, `conn_state`, why it was finalized). Finalizing a connection cost about 4,800
//! instructions, as much as 20 packets, some 3,300 of them building a full `ConnEntry`
//! (strings for the endpoints and history, handshake and teardown steps) and counting from
//! it. The tracker now builds an entry only for what keeps it (JSON spill, events, a kept
//! terminal row); see `ConnTracker::finalize`.
//!
//! Invariant: [`keys`] reads the same functions `entry::build_entry` does, so the counts
//! equal what adding up the entries' fields gives (tests/conn_stats.rs checks this on
//! every fixture and corpus capture).

use std::collections::BTreeMap;

use super::entry::teardown_kind;
use super::{Conn, Finalized, Proto};
use crate::report::conns::ConnStats;

/// What the aggregates count of one finalized connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Keys {
    pub tcp: bool,
    /// TCP only.
    pub outcome: Option<&'static str>,
    /// TCP only.
    pub kind: Option<&'static str>,
    pub conn_state: &'static str,
    pub finalized_by: &'static str,
    /// The history or the gap model hit its cap.
    pub capped: bool,
}

pub(super) fn keys(c: &Conn, why: Finalized) -> Keys {
    let orig = c.orig_slot();
    match &c.proto {
        Proto::Tcp(t) => {
            let outcome = t.hs.outcome(orig);
            Keys {
                tcp: true,
                outcome: Some(outcome),
                kind: Some(teardown_kind(t, outcome).0),
                conn_state: t.zeek.conn_state(),
                finalized_by: why.name(),
                capped: t.zeek.capped || t.zeek.history_dropped > 0 || t.an.capped,
            }
        }
        Proto::Udp(u) => Keys {
            tcp: false,
            outcome: None,
            kind: None,
            conn_state: u.conn_state(),
            finalized_by: why.name(),
            capped: false,
        },
    }
}

/// Counts by name over the few names a field takes (a list searched in order, which
/// beats a `BTreeMap<String, _>` lookup for a dozen short names).
#[derive(Debug, Default)]
struct Counts(Vec<(&'static str, u64)>);

impl Counts {
    fn add(&mut self, name: &'static str) {
        // The names are literals, so the same name is usually the same pointer: that is
        // tried before the bytes.
        let same = |n: &str| std::ptr::eq(n, name) || n == name;
        match self.0.iter_mut().find(|(n, _)| same(n)) {
            Some((_, k)) => *k += 1,
            None => self.0.push((name, 1)),
        }
    }

    fn fold_into(&self, map: &mut BTreeMap<String, u64>) {
        for &(name, k) in &self.0 {
            *map.entry(name.to_string()).or_default() += k;
        }
    }
}

/// The aggregates of a set of finalized connections; [`Tally::fold_into`] adds them to
/// a report's [`ConnStats`].
#[derive(Debug, Default)]
pub(super) struct Tally {
    connections: u64,
    tcp: u64,
    capped: u64,
    outcomes: Counts,
    kinds: Counts,
    states: Counts,
    finalized_by: Counts,
}

impl Tally {
    pub fn add(&mut self, k: &Keys) {
        self.connections += 1;
        self.tcp += u64::from(k.tcp);
        self.capped += u64::from(k.capped);
        if let Some(o) = k.outcome {
            self.outcomes.add(o);
        }
        if let Some(kind) = k.kind {
            self.kinds.add(kind);
        }
        self.states.add(k.conn_state);
        self.finalized_by.add(k.finalized_by);
    }

    pub fn fold_into(&self, s: &mut ConnStats) {
        s.connections += self.connections;
        s.tcp += self.tcp;
        s.udp += self.connections - self.tcp;
        s.capped += self.capped;
        self.outcomes.fold_into(&mut s.handshake_outcomes);
        self.kinds.fold_into(&mut s.teardown_kinds);
        self.states.fold_into(&mut s.conn_states);
        self.finalized_by.fold_into(&mut s.finalized_by);
    }
}
