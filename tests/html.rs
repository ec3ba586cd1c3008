//! The HTML page (`--html`): its structure against reviewed golden outlines, its ladders
//! against the fixtures' tshark-verified facts (fixtures/expected.json), its MAC lanes
//! against the bridge fixture's facts, caps, rendering from the spill vs from a report read
//! back from JSON, and escaping of hostile capture strings.
//!
//! `NETLENS_UPDATE_GOLDEN=1 cargo test --test html` rewrites the golden outlines.

mod html_support;

use std::path::Path;

use html_support::{
    count, count_all, fixture, framing, hostile_capture, hostile_json_header, ladders, outline,
    render, texts_of_class, HOSTILE_IF,
};

fn expected() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn golden(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/html")
        .join(name);
    if std::env::var_os("NETLENS_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("golden file {} (NETLENS_UPDATE_GOLDEN=1)", path.display()));
    if text != want {
        let (a, b): (Vec<&str>, Vec<&str>) = (text.lines().collect(), want.lines().collect());
        let i = a
            .iter()
            .zip(&b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len()));
        let lo = i.saturating_sub(3);
        panic!(
            "outline of {name} changed at line {}:\n--- now\n{}\n--- golden\n{}",
            i + 1,
            a[lo..(i + 4).min(a.len())].join("\n"),
            b[lo..(i + 4).min(b.len())].join("\n")
        );
    }
}

#[test]
fn outline_of_tcp_graceful_matches_golden() {
    let p = render(vec![fixture("tcp_graceful.pcap")], |_| {});
    golden("tcp_graceful.outline.txt", &outline(&p.html));
}

#[test]
fn outline_of_arp_bridge_ports_matches_golden() {
    let p = render(vec![fixture("arp_bridge_ports.pcapng")], |c| {
        c.l2.aging_s = 2
    });
    golden("arp_bridge_ports.outline.txt", &outline(&p.html));
}

fn frames_of(v: &serde_json::Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
        .unwrap_or_default()
}

/// Every TCP fixture: one ladder per connection (tshark's count), and each ladder draws
/// the handshake and teardown frames tshark shows (SYNs, SYN-ACK, ACK, FINs, RSTs), RSTs
/// as RST arrows, in connection order.
#[test]
fn ladders_draw_the_fixture_facts() {
    let exp = expected();
    let mut checked = 0;
    for (name, facts) in exp.as_object().unwrap() {
        let Some(n_tcp) = facts.get("tcp_connections").and_then(|v| v.as_u64()) else {
            continue;
        };
        let p = render(vec![fixture(name)], |_| {});
        let lad = ladders(&p.html);
        assert_eq!(lad.len() as u64, n_tcp, "{name}: ladders");
        assert_eq!(
            count(&p.html, "article", "conn") as u64,
            n_tcp,
            "{name}: cards"
        );
        let conns: Vec<&serde_json::Value> = facts["connections"]
            .as_array()
            .map(|a| a.iter().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.get("handshake").is_some())
            .collect();
        assert_eq!(conns.len(), lad.len(), "{name}");
        for (c, svg) in conns.iter().zip(&lad) {
            let drawn: Vec<u64> = texts_of_class(svg, "fr")
                .iter()
                .map(|t| t.trim_start_matches('#').parse().unwrap())
                .collect();
            let h = &c["handshake"];
            let mut want = frames_of(&h["syn_frames"]);
            want.extend(h["synack_frame"].as_u64());
            want.extend(h["ack_frame"].as_u64());
            want.extend(h["rst_frame"].as_u64());
            want.extend(frames_of(&c["teardown"]["fin_frames"]));
            want.extend(frames_of(&c["teardown"]["rst_frames"]));
            for f in &want {
                assert!(
                    drawn.contains(f),
                    "{name}: frame {f} not drawn in {drawn:?}"
                );
            }
            let mut sorted = drawn.clone();
            sorted.sort_unstable();
            assert_eq!(drawn, sorted, "{name}: arrows in frame order");
            let rsts = frames_of(&c["teardown"]["rst_frames"]).len()
                + usize::from(h["rst_frame"].is_u64());
            assert_eq!(count(svg, "g", "k-rst"), rsts, "{name}: RST arrows");
            let retrans = frames_of(&h["syn_frames"]).len().saturating_sub(1);
            assert_eq!(
                count(svg, "g", "retrans"),
                retrans,
                "{name}: retransmitted SYNs"
            );
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} connections checked");
}

/// The part of the page from the start of element `id` to the end of its article.
fn article<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id}"));
    let end = start + html[start..].find("</article>").unwrap();
    &html[start..end]
}

/// Every framing fixture: each direction's map has one box per segment and per message,
/// and exactly as many coalescing segments, split and coalesced messages highlighted as
/// the fixture's facts (fixtures/expected.json, from the programs' send logs and tshark).
#[test]
fn stream_maps_draw_the_fixture_facts() {
    let exp = expected();
    let mut checked = 0;
    for (name, facts) in exp.as_object().unwrap() {
        let Some(spec) = facts.get("framing").and_then(|v| v.as_str()) else {
            continue;
        };
        let p = render(vec![fixture(name)], |c| framing(c, spec));
        for dir in ["orig", "resp"] {
            let f = &facts["streams"][dir];
            let a = article(&p.html, &format!("s1-{dir}"));
            let want = |k: &str| f[k].as_u64().unwrap() as usize;
            assert_eq!(
                count(a, "g", "seg"),
                want("segments"),
                "{name} {dir} segments"
            );
            assert_eq!(
                count(a, "g", "msg"),
                want("messages"),
                "{name} {dir} messages"
            );
            assert_eq!(
                count_all(a, "g", &["seg", "coal"]),
                want("coalescing_segments"),
                "{name} {dir} coalescing segments"
            );
            assert_eq!(
                count_all(a, "g", &["msg", "split"]),
                want("split_messages"),
                "{name} {dir} split"
            );
            assert_eq!(
                count_all(a, "g", &["msg", "coal"]),
                want("coalesced_messages"),
                "{name} {dir} coalesced"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "five framing fixtures, two directions each");
}

#[test]
fn outline_of_frame_lines_matches_golden() {
    let p = render(vec![fixture("frame_lines.pcap")], |c| framing(c, "line"));
    golden("frame_lines.outline.txt", &outline(&p.html));
}

/// The bridge fixture: one lane per learned MAC, learned at the frames the facts give.
#[test]
fn mac_lanes_follow_the_bridge_facts() {
    let p = render(vec![fixture("arp_bridge.pcap")], |_| {});
    let exp = expected();
    let facts = &exp["arp_bridge.pcap"];
    let lanes = count(&p.html, "g", "lane");
    assert_eq!(lanes, 3, "three hosts learned");
    let titles = texts_of_class(&p.html, "learn");
    let mut learned: Vec<u64> = titles
        .iter()
        .filter_map(|t| t.strip_prefix("frame "))
        .filter_map(|t| t.split(':').next()?.parse().ok())
        .collect();
    learned.sort_unstable();
    // fixtures/README.md: "MAC table: 3 entries learned at frames 1, 2, 6".
    assert_eq!(learned, vec![1, 2, 6]);
    // ARP: every exchange of the facts is a row, unanswered ones marked.
    let rows_unanswered = count(&p.html, "tr", "unanswered");
    assert_eq!(
        rows_unanswered,
        facts["arp"]["unanswered_request_frames"]
            .as_array()
            .unwrap()
            .len()
    );
    assert_eq!(
        count(&p.html, "tr", "answered"),
        facts["arp"]["exchanges"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["reply_frame"].is_u64())
            .count()
    );
}

/// The page depends on the report only: drawn from the tracker's spill during the run, or
/// from the report read back from the JSON document, it is the same page.
#[test]
fn page_from_spill_equals_page_from_json() {
    for name in [
        "tcp_reused_tuple.pcap",
        "udp_exchange.pcap",
        "tcp_graceful.pcap",
    ] {
        let p = render(vec![fixture(name)], |_| {});
        let mut again = Vec::new();
        netlens::report::html::write(
            &mut again,
            &p.report,
            &mut [],
            &netlens::HtmlOptions::default(),
        )
        .unwrap();
        assert_eq!(String::from_utf8(again).unwrap(), p.html, "{name}");
        // And the JSON document still has every connection (the spill was read twice).
        assert!(!p.report.connections.as_ref().unwrap().is_empty());
    }
}

/// `--html-max-ladders` and `--html-max-rows`: the page draws fewer and says so.
#[test]
fn caps_are_said_on_the_page() {
    let files = vec![
        fixture("tcp_reused_tuple.pcap"),
        fixture("tcp_refused.pcap"),
        fixture("udp_exchange.pcap"),
    ];
    let p = render(files.clone(), |c| {
        c.html_options.max_ladders = 2;
        c.html_options.max_rows = 0;
    });
    // 3 SF connections and 1 refused: the budget of 2 gives one ladder to each kind.
    assert_eq!(ladders(&p.html).len(), 2);
    assert_eq!(count(&p.html, "article", "conn"), 4);
    assert_eq!(count(&p.html, "article", "compact"), 2);
    assert!(p.html.contains("id=\"ladder-limit\""));
    let refused_card = p.html.find("data-hs=\"refused\"").unwrap();
    let refused_end = refused_card + p.html[refused_card..].find("</article>").unwrap();
    assert!(p.html[refused_card..refused_end].contains("<svg class=\"ladder\""));
    assert!(p.html.contains("The first 0 of 1 flows are listed"));
    // Without caps: everything drawn, no note.
    let p = render(files, |_| {});
    assert_eq!(ladders(&p.html).len(), 4);
    assert!(!p.html.contains("id=\"ladder-limit\""));
}

/// The page is one file: no URL is fetched from anywhere.
#[test]
fn page_is_self_contained() {
    let p = render(vec![fixture("tcp_graceful.pcap")], |_| {});
    for bad in [
        "http://", "https://", "src=", "<link", "@import", "url(http",
    ] {
        assert!(!p.html.contains(bad), "page contains {bad}");
    }
    assert_eq!(p.html.matches("<script").count(), 1);
    assert!(p.html.contains("@media print"));
}

fn hostile_page() -> (tempfile::TempDir, html_support::Page) {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_capture(dir.path());
    (dir, render(vec![path], |_| {}))
}

#[test]
fn capture_strings_are_escaped() {
    let (_d, p) = hostile_page();
    // The strings did reach the report...
    assert!(p.report.source.path[0].contains("<img"));
    assert_eq!(
        p.report.source.interfaces[0].name.as_deref(),
        Some(HOSTILE_IF)
    );
    assert!(p.report.warnings.iter().any(|w| w.kind == "damaged-file"));
    // ...and reach the page only as text.
    assert_eq!(p.html.matches("<script").count(), 1, "only our own script");
    assert!(!p.html.contains("<img"));
    assert!(!p.html.contains("XSS-IFNAME\")</script>"));
    assert!(p
        .html
        .contains("&lt;img src=x onerror=console.log('XSS-FILE')&gt;"));
    assert!(p.html.contains(
        "eth&lt;script&gt;console.log(&quot;XSS-IFNAME&quot;)&lt;/script&gt;&quot;'&amp;"
    ));
    // Every element is well nested: nothing broke out of its attribute or text.
    outline(&p.html);
}

#[test]
fn json_header_fields_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let path = hostile_json_header(dir.path());
    let p = render(vec![path], |c| framing(c, "9000=json-header"));
    // The framer read the header: the name is in the report...
    let streams = p.report.streams.as_ref().unwrap();
    let info = streams[0].messages[0].info.as_ref().unwrap();
    assert!(info.header.as_ref().unwrap()["file_name"].contains("<script>"));
    // ...and on the page only as text.
    assert_eq!(p.html.matches("<script").count(), 1, "only our own script");
    assert!(!p.html.contains("<img"));
    assert!(!p.html.contains("<h1>x</h1>"));
    assert!(p
        .html
        .contains("&lt;script&gt;console.log(&quot;XSS-JSON&quot;)&lt;/script&gt;"));
    assert!(p
        .html
        .contains("&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;h1&gt;x&lt;/h1&gt;"));
    // Payload bytes quoted by auto framing's reason (its first 16 bytes): text only.
    assert!(streams
        .iter()
        .any(|s| s.framing_reason.contains("\\x01\\x02<script>consol")));
    assert!(p.html.contains("\\x01\\x02&lt;script&gt;consol"));
    outline(&p.html);
}

/// Past the first page, cards start hidden (the browser lays out one page); every card is
/// still in the page, and a <noscript> style shows them all without the script.
#[test]
fn cards_past_the_first_page_start_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let p = render(vec![html_support::many_refused(dir.path(), 120)], |_| {});
    assert_eq!(count(&p.html, "article", "conn"), 120);
    assert_eq!(ladders(&p.html).len(), 120);
    let hidden = p.html.matches("<article class=\"conn\" hidden").count();
    assert_eq!(hidden, 70);
    assert!(p
        .html
        .contains("<noscript><style>article[hidden] { display: block; }</style></noscript>"));
}

/// Every in-page link (`href="#..."`) names an element of the page: connection cards link
/// to their maps and maps to their cards, also when caps leave some out.
#[test]
fn in_page_links_resolve() {
    let cases: Vec<(Vec<std::path::PathBuf>, usize, usize)> = vec![
        (vec![fixture("frame_lines.pcap")], 2000, 300),
        (
            vec![
                fixture("frame_len32le_nagle.pcap"),
                fixture("udp_exchange.pcap"),
            ],
            2000,
            300,
        ),
        (vec![fixture("tcp_reused_tuple.pcap")], 1, 2),
    ];
    for (files, ladders_cap, maps_cap) in cases {
        let p = render(files, |c| {
            framing(c, "line");
            c.html_options.max_ladders = ladders_cap;
            c.html_options.max_maps = maps_cap;
        });
        let ids: std::collections::HashSet<String> = html_support::tokens(&p.html)
            .into_iter()
            .filter_map(|t| match t {
                html_support::Tok::Start(tag) => tag.attr("id").map(str::to_string),
                _ => None,
            })
            .collect();
        let mut links = 0;
        for t in html_support::tokens(&p.html) {
            if let html_support::Tok::Start(tag) = t {
                if let Some(h) = tag.attr("href").and_then(|h| h.strip_prefix('#')) {
                    assert!(ids.contains(h), "link to #{h} has no target");
                    links += 1;
                }
            }
        }
        assert!(links > 5);
    }
    let p = render(vec![fixture("frame_lines.pcap")], |c| framing(c, "line"));
    let card = article(&p.html, "c1");
    assert!(card.contains("href=\"#s1-orig\"") && card.contains("href=\"#s1-resp\""));
    assert!(article(&p.html, "s1-orig").contains("href=\"#c1\""));
}

/// `--html -` is a usage error, and a path that cannot be written fails before reading.
#[test]
fn bad_html_paths_are_errors() {
    let mut c = netlens::Config::for_files(vec![fixture("tcp_graceful.pcap")]);
    c.html = Some("-".into());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    match netlens::run(&c, &mut out, &mut err) {
        Err(netlens::Error::Usage(m)) => assert!(m.contains("--html"), "{m}"),
        other => panic!("expected a usage error, got {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    c.html = Some(file.join("page.html"));
    match netlens::run(&c, &mut out, &mut err) {
        Err(netlens::Error::Write { path, .. }) => assert_eq!(path, file.join("page.html")),
        other => panic!("expected a write error, got {other:?}"),
    }
    assert!(out.is_empty(), "nothing was written before the error");
}
