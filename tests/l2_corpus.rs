//! The MAC table's per-address counts against tshark's `-z endpoints,eth` over the corpus
//! files tagged `arp` or `vlan` (../shared/corpus, MANIFEST.tsv tags).
//!
//! tshark counts, per Ethernet address, frames and bytes sent (Tx) and received (Rx).
//! netlens has the same in its `mac_table` section: a source MAC's entry carries `frames`/
//! `bytes` (sent) and `rx_frames`/`rx_bytes` (unicast frames addressed to it); an address
//! seen only as a destination is in `destinations` (Rx only). tshark names addresses
//! (`Cisco_ea:b8:c1`, `Broadcast`, `IPv4mcast_01`), so a reference row is matched to a MAC
//! by the address part the name keeps (the octets after the last `_`, or the whole MAC);
//! a row whose name keeps no octets (`GBPT`, `CDP/VTP/DTP/PAgP/UDLD`) is paired with the
//! one remaining unmatched address of equal counts, and said so.
//!
//! The ARP analyzer's frame, request and reply counts are compared with tshark's
//! `arp.opcode` per frame (`ref/<file>.tshark.fields.csv`).
//!
//! Agreement is written to target/l2-agreement.txt (printed with `--nocapture`). Skipped
//! with a note where the corpus is absent.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use netlens::{Config, Views};

/// Differences understood and accepted: (file, reason). Anything else fails the test.
const KNOWN: &[(&str, &str)] = &[];

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.join("captures").is_dir().then_some(dir)
}

/// Tx packets, Tx bytes, Rx packets, Rx bytes.
type Counts = [u64; 4];

struct RefRow {
    name: String,
    counts: Counts,
}

fn parse_endpoints(text: &str) -> Vec<RefRow> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if line.contains("|  Packets  |") {
            in_table = true;
            continue;
        }
        if !in_table || line.starts_with("====") || line.trim().is_empty() {
            continue;
        }
        let tok: Vec<&str> = line.split_whitespace().collect();
        if tok.len() < 7 {
            continue;
        }
        let nums: Vec<u64> = tok[tok.len() - 6..]
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        if nums.len() != 6 {
            continue;
        }
        rows.push(RefRow {
            name: tok[..tok.len() - 6].join(" "),
            counts: [nums[2], nums[3], nums[4], nums[5]],
        });
    }
    rows
}

fn is_mac(s: &str) -> bool {
    let p: Vec<&str> = s.split(':').collect();
    p.len() == 6
        && p.iter()
            .all(|x| x.len() == 2 && x.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The address octets a tshark name keeps: the whole MAC, or the hex octets after the
/// last `_` (`Cisco_ea:b8:c1` → `ea:b8:c1`, `IPv4mcast_fb` → `fb`).
fn name_suffix(name: &str) -> Option<String> {
    if name == "Broadcast" {
        return Some("ff:ff:ff:ff:ff:ff".into());
    }
    if is_mac(name) {
        return Some(name.to_lowercase());
    }
    let tail = name.rsplit('_').next()?;
    if tail == name {
        return None;
    }
    let ok = tail
        .split(':')
        .all(|x| x.len() == 2 && x.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| tail.to_lowercase())
}

struct FileOutcome {
    name: String,
    ref_rows: usize,
    ours: usize,
    agreeing: usize,
    notes: Vec<String>,
    arp: Option<(bool, String)>,
}

/// ARP frames, requests and replies per tshark's `arp.opcode` column (fields.csv, 4th).
fn arp_check(a: &netlens::report::l2::ArpSection, fields: &str) -> (bool, String) {
    let ops: Vec<&str> = fields
        .lines()
        .filter_map(|l| l.split(',').nth(3))
        .filter(|op| !op.is_empty())
        .collect();
    let (req, rep) = (
        ops.iter().filter(|o| **o == "1").count() as u64,
        ops.iter().filter(|o| **o == "2").count() as u64,
    );
    let t = &a.totals;
    // Requests and replies are counted for Ethernet/IPv4 ARP only (IPoIB ARP, or ARP cut
    // before its addresses, is counted under not_ethernet_ipv4).
    let ok = t.packets == ops.len() as u64
        && (t.not_ethernet_ipv4 > 0 || (t.requests == req && t.replies == rep));
    (
        ok,
        format!(
            "ARP frames {}/{} requests {}/{} replies {}/{} (netlens/tshark){}",
            t.packets,
            ops.len(),
            t.requests,
            req,
            t.replies,
            rep,
            if t.not_ethernet_ipv4 > 0 {
                format!(", {} not Ethernet/IPv4", t.not_ethernet_ipv4)
            } else {
                String::new()
            }
        ),
    )
}

fn check(path: &Path, ref_text: &str, fields_csv: Option<&str>) -> FileOutcome {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let refs = parse_endpoints(ref_text);
    let mut c = Config::for_files(vec![path.to_path_buf()]);
    c.views = Views {
        mac_table: true,
        arp: true,
        ..Views::default()
    };
    c.quiet = true;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut o = FileOutcome {
        name: name.clone(),
        ref_rows: refs.len(),
        ours: 0,
        agreeing: 0,
        notes: Vec::new(),
        arp: None,
    };
    let report = match netlens::run(&c, &mut out, &mut err) {
        Ok((r, _)) => r,
        Err(e) => {
            o.notes.push(format!("netlens: {e}"));
            return o;
        }
    };
    if let (Some(a), Some(fields)) = (&report.arp, fields_csv) {
        o.arp = Some(arp_check(a, fields));
    }
    let Some(m) = report.mac_table else {
        o.notes.push("no mac_table section".into());
        return o;
    };
    // Our per-address counts over Ethernet frames (cooked-capture frames have no Ethernet
    // header, and tshark lists no Ethernet endpoint for them).
    let mut ours: BTreeMap<String, Counts> = BTreeMap::new();
    for e in &m.entries {
        if e.frames == e.cooked_frames && e.rx_frames == 0 {
            continue;
        }
        ours.insert(e.mac.clone(), [e.frames, e.bytes, e.rx_frames, e.rx_bytes]);
    }
    for d in &m.destinations {
        ours.insert(d.mac.clone(), [0, 0, d.frames, d.bytes]);
    }
    o.ours = ours.len();
    let mut unmatched_ref: Vec<&RefRow> = Vec::new();
    let mut matched: Vec<String> = Vec::new();
    for r in &refs {
        let cands: Vec<&String> = match name_suffix(&r.name) {
            Some(sfx) => ours
                .keys()
                .filter(|k| **k == sfx || k.ends_with(&format!(":{sfx}")))
                .filter(|k| !matched.contains(k))
                .collect(),
            None => Vec::new(),
        };
        // Several addresses share a short suffix: the one with the same counts is it.
        let pick = match cands.len() {
            0 => None,
            1 => Some(cands[0].clone()),
            _ => cands
                .iter()
                .find(|k| ours[**k] == r.counts)
                .map(|k| (*k).clone()),
        };
        match pick {
            Some(k) => {
                if ours[&k] == r.counts {
                    o.agreeing += 1;
                } else {
                    o.notes.push(format!(
                        "{} = {k}: tshark tx/rx {:?}, netlens {:?}",
                        r.name, r.counts, ours[&k]
                    ));
                }
                matched.push(k);
            }
            None => unmatched_ref.push(r),
        }
    }
    for r in unmatched_ref {
        let left: Vec<&String> = ours
            .keys()
            .filter(|k| !matched.contains(k) && ours[*k] == r.counts)
            .collect();
        if left.len() == 1 {
            o.agreeing += 1;
            o.notes.push(format!(
                "{} paired with {} by its counts (the name keeps no address)",
                r.name, left[0]
            ));
            matched.push(left[0].clone());
        } else {
            o.notes
                .push(format!("{} {:?}: no netlens address", r.name, r.counts));
        }
    }
    for k in ours.keys().filter(|k| !matched.contains(k)) {
        o.notes
            .push(format!("{k} {:?}: not in tshark's endpoints", ours[k]));
    }
    o
}

#[test]
fn mac_table_counts_match_tshark_endpoints_eth() {
    let Some(dir) = corpus_dir() else {
        eprintln!("corpus not found (set NETLENS_CORPUS): skipped");
        return;
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut lines = manifest.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let tags_col = header.iter().position(|h| *h == "tags").unwrap();
    let mut files: Vec<String> = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let tags: Vec<&str> = f.get(tags_col)?.split(',').collect();
            (tags.contains(&"arp") || tags.contains(&"vlan")).then(|| f[0].to_string())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());

    let mut report = String::new();
    let (mut rows, mut agreeing, mut full) = (0, 0, 0);
    let (mut arp_files, mut arp_agree) = (0, 0);
    let mut failures = Vec::new();
    writeln!(
        report,
        "MAC table vs tshark -z endpoints,eth (tx/rx packets and bytes per address), corpus files tagged arp or vlan\n"
    )
    .unwrap();
    for f in &files {
        let refp = dir
            .join("ref")
            .join(format!("{f}.tshark.endpoints_eth.txt"));
        let Ok(ref_text) = std::fs::read_to_string(&refp) else {
            writeln!(report, "{f}: no reference").unwrap();
            continue;
        };
        let fields =
            std::fs::read_to_string(dir.join("ref").join(format!("{f}.tshark.fields.csv")));
        let o = check(
            &dir.join("captures").join(f),
            &ref_text,
            fields.as_deref().ok(),
        );
        rows += o.ref_rows;
        agreeing += o.agreeing;
        let clean = o.agreeing == o.ref_rows && o.ours == o.ref_rows;
        full += usize::from(clean);
        writeln!(
            report,
            "{:<60} {:>3}/{:<3} addresses agree (netlens {} addresses){}",
            o.name,
            o.agreeing,
            o.ref_rows,
            o.ours,
            if clean { "" } else { "  <-- differs" }
        )
        .unwrap();
        for n in &o.notes {
            writeln!(report, "    {n}").unwrap();
        }
        let mut arp_ok = true;
        if let Some((ok, line)) = &o.arp {
            writeln!(
                report,
                "    {line}{}",
                if *ok { "" } else { "  <-- differs" }
            )
            .unwrap();
            arp_ok = *ok;
            arp_files += 1;
            arp_agree += usize::from(*ok);
        }
        let known = KNOWN.iter().any(|(k, _)| *k == o.name);
        if (!clean || !arp_ok) && !known {
            failures.push(o.name.clone());
        }
    }
    writeln!(
        report,
        "\n{full}/{} files agree on every address; {agreeing}/{rows} tshark rows agree; \
         ARP frame/request/reply counts agree in {arp_agree}/{arp_files} files",
        files.len()
    )
    .unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&target);
    std::fs::write(target.join("l2-agreement.txt"), &report).unwrap();
    println!("{report}");
    assert!(failures.is_empty(), "differences: {failures:?}\n{report}");
}
