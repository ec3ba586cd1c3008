//! Tests of the spill the tracker lends to the stream thread: what comes back is reported
//! as if the tracker had kept it.

use super::*;

fn warning(kind: &str) -> Warning {
    Warning {
        kind: kind.into(),
        message: kind.into(),
        path: None,
        offset: None,
        frame: None,
    }
}

fn kinds(r: &Report) -> Vec<&str> {
    r.warnings.iter().map(|w| w.kind.as_str()).collect()
}

#[test]
fn only_a_spilling_tracker_lends() {
    let opts = ConnOptions::default();
    assert!(ConnTracker::new(&opts, 0, false, true)
        .unwrap()
        .lend_spill()
        .is_none());
    let mut t = ConnTracker::new(&opts, 0, true, true).unwrap();
    assert!(t.lend_spill().is_some());
    // Lent once: nothing is left to lend or to take until it comes back.
    assert!(t.lend_spill().is_none());
    assert!(t.take_spills().is_empty());
}

#[test]
fn a_returned_spill_is_the_connections_array() {
    let mut t = ConnTracker::new(&ConnOptions::default(), 0, true, true).unwrap();
    let spill = t.lend_spill().unwrap();
    let mut report = Report::default();
    t.finish(&mut report);
    t.return_spill(Ok(spill), &mut report);
    assert!(report.warnings.is_empty());
    let spills = t.take_spills();
    assert_eq!(spills.len(), 1);
    assert_eq!(spills[0].0, "connections");
}

#[test]
fn a_lent_spill_that_failed_is_reported_where_finish_would_have() {
    let mut t = ConnTracker::new(&ConnOptions::default(), 0, true, true).unwrap();
    drop(t.lend_spill().unwrap());
    let mut report = Report::default();
    report.warnings.push(warning("before"));
    t.finish(&mut report);
    // Analyses that finish between the tracker and the join add theirs after it.
    report.warnings.push(warning("after"));
    t.return_spill(
        Err(io::Error::other("No space left on device")),
        &mut report,
    );
    assert_eq!(kinds(&report), ["before", "spill-failed", "after"]);
    assert!(report.warnings[1]
        .message
        .contains("No space left on device"));
    assert!(t.take_spills().is_empty());
}
