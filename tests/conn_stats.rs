//! The connection aggregates (`connection_stats`) are counted from the connections
//! without building their entries (`analyze::conns::tally`). They must equal what adding
//! up the JSON entries gives, and a run without JSON (where most entries are never built)
//! must give the same aggregates, in the report and in the terminal views' copy.
//!
//! Checked on every fixture, on two of them with a table cap of one connection (every
//! new connection evicts one), and on every capture of the shared corpus when present.

mod support;

use std::collections::BTreeMap;
use std::path::Path;

use netlens::config::ConnOptions;
use netlens::report::conns::ConnStats;
use netlens::Config;

fn add(m: &mut BTreeMap<String, u64>, k: &str) {
    *m.entry(k.to_string()).or_default() += 1;
}

/// Runs `path` with and without a JSON report; panics on any disagreement. Returns
/// false when netlens cannot read the file at all (some corpus files are not captures).
fn check(path: &Path, opts: &ConnOptions) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut config = Config::for_files(vec![path.to_path_buf()]);
    config.conns = opts.clone();
    config.views.conns = true;
    config.json = Some(json.clone());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    if netlens::run(&config, &mut out, &mut err).is_err() {
        return false;
    }
    let text = std::fs::read_to_string(&json).unwrap();
    let r: netlens::report::Report = serde_json::from_str(&text).unwrap();
    let Some(st) = r.connection_stats else {
        return true;
    };
    let entries = r.connections.unwrap_or_default();
    let mut want = ConnStats {
        handshake_outcomes: BTreeMap::new(),
        teardown_kinds: BTreeMap::new(),
        conn_states: BTreeMap::new(),
        finalized_by: BTreeMap::new(),
        ..st.clone()
    };
    want.connections = entries.len() as u64;
    want.tcp = entries.iter().filter(|e| e.proto == "tcp").count() as u64;
    want.udp = want.connections - want.tcp;
    for e in &entries {
        if let Some(h) = &e.handshake {
            add(&mut want.handshake_outcomes, &h.outcome);
        }
        if let Some(t) = &e.teardown {
            add(&mut want.teardown_kinds, &t.kind);
        }
        add(&mut want.conn_states, &e.conn_state);
        add(&mut want.finalized_by, &e.finalized_by);
    }
    assert_eq!(st, want, "{}: aggregates vs entries", path.display());

    let mut plain = Config::for_files(vec![path.to_path_buf()]);
    plain.conns = opts.clone();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (r, _) = netlens::run(&plain, &mut out, &mut err).unwrap();
    let name = path.display();
    assert_eq!(
        r.connection_stats.as_ref(),
        Some(&st),
        "{name}: without JSON"
    );
    assert_eq!(
        r.conn_view.map(|v| v.stats),
        Some(st),
        "{name}: the views' copy"
    );
    true
}

#[test]
fn aggregates_add_up_the_entries_on_every_fixture() {
    let fixtures = support::fixtures();
    assert!(fixtures.len() >= 10, "{fixtures:?}");
    for p in &fixtures {
        assert!(check(p, &ConnOptions::default()), "{}", p.display());
    }
    let cap = ConnOptions {
        max_connections: 1,
        ..ConnOptions::default()
    };
    for name in ["udp_exchange.pcap", "tcp_reused_tuple.pcap"] {
        assert!(check(&support::fixture(name), &cap), "{name}");
    }
}

#[test]
fn aggregates_add_up_the_entries_on_the_corpus() {
    let Some(caps) = support::corpus_captures() else {
        eprintln!("note: ../shared/corpus not found; skipped");
        return;
    };
    let read = caps
        .iter()
        .filter(|p| check(p, &ConnOptions::default()))
        .count();
    assert!(
        read >= 100,
        "only {read} of {} corpus files read",
        caps.len()
    );
}
