//! Live capture without a live capture: the errors a user meets before any frame (unknown
//! interface, interface down, no permission), and the per-event output the live mode writes
//! when stdout is not a terminal, driven by an in-memory source (no privileges needed).

mod support;

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};

use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use support::netns::{have, is_root};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn event_lines_from_an_in_memory_source() {
    // Three connections on one reused 4-tuple: each new SYN finalizes the previous one, so
    // the event stream has three opens and two finalizations while frames still arrive.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tcp_reused_tuple.pcap");
    let bytes = std::fs::read(&path).expect("fixture");
    let file = CaptureFile::from_reader(
        Box::new(Cursor::new(bytes)),
        "memory".into(),
        0,
        DEFAULT_MAX_RECORD,
    )
    .expect("capture from memory");
    let mut config = netlens::Config::for_files(vec![path]);
    config.events = true;
    config.views.conns = true;
    let mut out = Vec::new();
    let mut err = Vec::new();
    netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err).expect("run");
    let text = String::from_utf8(out).expect("utf-8");
    let opens: Vec<&str> = text.lines().filter(|l| l.contains("conn-open")).collect();
    let finals: Vec<&str> = text.lines().filter(|l| l.contains("conn-final")).collect();
    assert_eq!(opens.len(), 3, "{text}");
    for (i, frame) in [(1, 1), (2, 11), (3, 21)] {
        let want = format!("conn-open   #{i} tcp 10.77.0.1:40007 > 10.77.0.2:5007 frame {frame}");
        assert!(
            opens.iter().any(|l| l.ends_with(&want)),
            "missing {want:?} in\n{text}"
        );
    }
    // #1 and #2 are finalized by the SYNs of #2 and #3; #3 only at the end of input,
    // which goes to the report, not to an event line.
    assert_eq!(finals.len(), 2, "{text}");
    assert!(finals[0].ends_with("conn-final  #1 frame 11"), "{text}");
    assert!(finals[1].ends_with("conn-final  #2 frame 21"), "{text}");
}

#[test]
fn live_errors_say_what_to_do() {
    let bin = env!("CARGO_BIN_EXE_netlens");
    // An unknown interface lists the ones that exist.
    let o = Command::new(bin)
        .args(["live", "nosuch-if0"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no interface named nosuch-if0") && stderr(&o).contains("lo"),
        "{}",
        stderr(&o)
    );

    if !is_root() || !have("ip") {
        eprintln!("note: down-interface and permission checks skipped: need root and iproute2");
        return;
    }
    // An interface that is down: a new veth pair (created down) in a namespace of our own.
    let ns = format!("nlle{}", std::process::id() % 100_000);
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ip netns add {ns} && ip -n {ns} link add nlled0 type veth peer name nlled1"
        ))
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let o = Command::new("ip")
            .args(["netns", "exec", &ns, bin, "live", "nlled0"])
            .output()
            .expect("run");
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("interface nlled0 is down")
                && stderr(&o).contains("ip link set nlled0 up"),
            "{}",
            stderr(&o)
        );
    } else {
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        eprintln!("note: could not create a veth pair; down-interface check skipped");
    }

    // No permission: the same binary run as `nobody` (copied where nobody may execute it).
    if !have("runuser") {
        eprintln!("note: runuser missing; permission check skipped");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("netlens");
    std::fs::copy(bin, &copy).expect("copy binary");
    let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
    let _ = Command::new("chmod").arg("755").arg(&copy).status();
    let o = Command::new("runuser")
        .args(["-u", "nobody", "--"])
        .arg(&copy)
        .args(["live", "lo"])
        .output()
        .expect("run as nobody");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("live capture on lo needs root or CAP_NET_RAW")
            && stderr(&o).contains("setcap"),
        "{}",
        stderr(&o)
    );
}
