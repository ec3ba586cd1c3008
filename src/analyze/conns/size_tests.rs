//! Tests of the flow table and of the per-connection memory budget: the deadline heap
//! stays bounded, the packing sweep packs idle flows and its list stays bounded.

use super::*;

/// The memory budget per tracked connection (the cap multiplies it): a TCP entry is
/// these fixed sizes plus small step lists; keep growth deliberate.
#[test]
fn per_connection_state_stays_small() {
    assert!(
        std::mem::size_of::<Conn>() <= 320,
        "{}",
        std::mem::size_of::<Conn>()
    );
    assert!(
        std::mem::size_of::<TcpConn>() <= 1792,
        "{}",
        std::mem::size_of::<TcpConn>()
    );
    assert!(std::mem::size_of::<ZeekUdp>() <= 64);
}

fn conn(port: u16, deadline: i64) -> (FlowKey, Box<Conn>) {
    test_udp_conn(port, deadline)
}

/// Inserts connection `p` (deadline 1,000,000 + p), then shrinks its deadline to `p`,
/// as a close does: its first heap entry is stale from then on.
fn insert_closing(t: &mut table::Table, p: u16) -> u32 {
    let (k, c) = conn(p, 1_000_000 + i64::from(p));
    let idx = t.insert(k, c);
    if let Some(c) = t.conn_mut(idx) {
        c.deadline = i64::from(p);
    }
    t.deadline_changed(idx);
    idx
}

#[test]
fn table_finds_earliest_deadline_and_keeps_the_heap_bounded() {
    let mut t = table::Table::default();
    // Many short-lived connections whose deadline shrinks once (a close), then go.
    for p in 0..20_000u16 {
        let idx = insert_closing(&mut t, p);
        if p % 2 == 0 {
            t.remove(idx);
        }
    }
    assert_eq!(t.len(), 10_000);
    assert!(t.heap_len() <= 2 * t.len() + 1024, "{}", t.heap_len());
    // The earliest remaining deadline is port 1's; nothing is due before it.
    assert_eq!(t.earliest(0), None);
    let idx = t.earliest(i64::MAX).unwrap();
    assert_eq!(t.conn_mut(idx).unwrap().id, 1);
    // Deadlines that grow are found lazily, in order.
    t.conn_mut(idx).unwrap().deadline = 50_000;
    t.deadline_changed(idx);
    let next = t.earliest(i64::MAX).unwrap();
    assert_eq!(t.conn_mut(next).unwrap().id, 3);
}

#[test]
fn the_heap_grows_for_live_entries_only() {
    // Every connection leaves one stale entry (its deadline shrinks once, on a close),
    // and none goes: the heap is at half stale whenever it fills. It then rebuilds in
    // place instead of doubling, so its buffer is sized for the live entries (20,000
    // plus a quarter and 1,024 fit in 32,768; doubling at 2 x 20,000 + 1,024 would have
    // reached 65,536).
    let mut t = table::Table::default();
    for p in 0..20_000u16 {
        insert_closing(&mut t, p);
    }
    assert_eq!(t.len(), 20_000);
    assert!(t.heap_capacity() <= 32_768, "{}", t.heap_capacity());
    // Still exact: the earliest deadline first, then the next.
    let idx = t.earliest(i64::MAX).unwrap();
    assert_eq!(t.conn_mut(idx).unwrap().id, 0);
    t.remove(idx);
    let idx = t.earliest(i64::MAX).unwrap();
    assert_eq!(t.conn_mut(idx).unwrap().id, 1);
}

#[test]
fn the_sweep_packs_idle_flows_and_its_list_stays_bounded() {
    const MS: i64 = 1_000_000;
    let mut t = table::Table::with_cooling(100 * MS, 60_000 * MS);
    t.cool(0);
    // Churn: all but every 100th flow is removed once the next one is in, so two
    // slots are reused over and over and one of them always holds a recent flow when
    // the sweep runs: a list without deduplication would grow by one entry per insert.
    let mut prev = None;
    for p in 0..10_000u16 {
        let now = i64::from(p) * MS / 10;
        t.cool(now);
        let (k, mut c) = conn(p, now + 60_000 * MS);
        (c.first_ts, c.last_ts) = (now, now);
        let idx = t.insert(k, c);
        if let Some(old) = prev.take() {
            t.remove(old);
        }
        if p % 100 != 0 {
            prev = Some(idx);
        }
        // At most the table plus the inserts since the last sweep (1,000 a sweep).
        let (listed, _) = t.cooling_counts();
        assert!(listed <= t.len() + 1_000, "{listed} at {p}");
    }
    t.remove(prev.unwrap());
    assert_eq!(t.len(), 100);
    // Right after a sweep, stale entries and duplicates are gone.
    t.cool(1_000 * MS);
    let (listed, _) = t.cooling_counts();
    assert!(listed <= t.len(), "{listed}");
    // A sweep 0.1 s after the last packet packs every flow; nothing stays listed.
    t.cool(2_000 * MS);
    assert_eq!(t.cooling_counts(), (0, 100));
    // A packed flow asked for is unpacked and listed again; the next sweep within
    // 0.1 s of its packet keeps it hot, a later one packs it.
    let (k, _) = conn(500, 0);
    let idx = t.get(&k).unwrap();
    t.conn_mut(idx).unwrap().last_ts = 2_050 * MS;
    assert_eq!(t.cooling_counts(), (1, 99));
    t.cool(2_100 * MS);
    assert_eq!(t.cooling_counts(), (1, 99));
    t.cool(2_200 * MS);
    assert_eq!(t.cooling_counts(), (0, 100));
    assert_eq!(t.conn_mut(idx).unwrap().id, 500);
}
