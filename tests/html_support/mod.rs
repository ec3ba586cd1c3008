//! Shared by the HTML tests: run netlens with `--html` (and `--json`) on files, and reduce
//! a page to a structural outline (element names, ids and classes; no text, no numbers)
//! that golden files can hold without depending on coordinates or wording.

#![allow(dead_code)]

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{PcapNgBlock, PcapNgWriter};
use pcap_file::DataLink;

use netlens::report::Report;
use netlens::Config;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// `--framing SPEC` for every stream.
pub fn framing(c: &mut Config, spec: &str) {
    c.streams.framing = netlens::analyze::framing::FramingConfig::parse(&[spec]).unwrap();
}

/// A run's page, its JSON report read back, and where the page was written.
pub struct Page {
    pub html: String,
    pub report: Report,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Runs netlens on `files` with `--html` and `--json` (default views), `tweak` applied.
pub fn render(files: Vec<PathBuf>, tweak: impl FnOnce(&mut Config)) -> Page {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let json = dir.path().join("report.json");
    let mut c = Config::for_files(files);
    c.quiet = true;
    c.html = Some(html.clone());
    c.json = Some(json.clone());
    tweak(&mut c);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    netlens::run(&c, &mut out, &mut err).expect("netlens run");
    let report: Report =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).expect("JSON report");
    Page {
        html: std::fs::read_to_string(&html).unwrap(),
        report,
        path: html,
        _dir: dir,
    }
}

const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

/// One start tag: name and attributes (values unescaped only for `&quot;`/`&amp;`).
#[derive(Debug)]
pub struct Tag {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub self_closing: bool,
}

impl Tag {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn classes(&self) -> Vec<&str> {
        self.attr("class")
            .map(|c| c.split_whitespace().collect())
            .unwrap_or_default()
    }
}

/// A token of the page: a start tag, an end tag, or text.
#[derive(Debug)]
pub enum Tok {
    Start(Tag),
    End(String),
    Text(String),
}

/// Tokenizes the HTML netlens writes (well-formed, double-quoted attributes); the contents
/// of `<style>` and `<script>` are skipped.
pub fn tokens(html: &str) -> Vec<Tok> {
    let b = html.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            let j = html[i..].find('<').map_or(b.len(), |k| i + k);
            out.push(Tok::Text(html[i..j].to_string()));
            i = j;
            continue;
        }
        if html[i..].starts_with("<!") {
            i += html[i..].find('>').map_or(b.len() - i, |k| k + 1);
            continue;
        }
        if html[i..].starts_with("</") {
            let j = i + html[i..].find('>').expect("unclosed end tag");
            out.push(Tok::End(html[i + 2..j].trim().to_string()));
            i = j + 1;
            continue;
        }
        // Start tag: name, then attributes up to the closing '>' outside quotes.
        let mut j = i + 1;
        while j < b.len() && !b[j].is_ascii_whitespace() && b[j] != b'>' && b[j] != b'/' {
            j += 1;
        }
        let name = html[i + 1..j].to_string();
        let mut attrs = Vec::new();
        let mut self_closing = false;
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j >= b.len() {
                break;
            }
            if b[j] == b'>' {
                j += 1;
                break;
            }
            if b[j] == b'/' {
                self_closing = true;
                j += 1;
                continue;
            }
            let k0 = j;
            while j < b.len() && b[j] != b'=' && b[j] != b'>' && !b[j].is_ascii_whitespace() {
                j += 1;
            }
            let key = html[k0..j].to_string();
            let mut val = String::new();
            if j < b.len() && b[j] == b'=' {
                j += 1;
                assert_eq!(b[j], b'"', "unquoted attribute {key} in <{name}>");
                let end = j + 1 + html[j + 1..].find('"').expect("unclosed attribute");
                val = html[j + 1..end]
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&");
                j = end + 1;
            }
            attrs.push((key, val));
        }
        i = j;
        if name == "style" || name == "script" {
            let close = format!("</{name}>");
            let end = i + html[i..].find(&close).expect("unclosed style/script");
            out.push(Tok::Start(Tag {
                name: name.clone(),
                attrs,
                self_closing: false,
            }));
            out.push(Tok::End(name));
            i = end + close.len();
            continue;
        }
        out.push(Tok::Start(Tag {
            name,
            attrs,
            self_closing,
        }));
    }
    out
}

/// An element of the outline tree.
struct Node {
    label: String,
    children: Vec<Node>,
}

fn print(n: &Node, depth: usize, out: &mut String) {
    out.push_str(&"  ".repeat(depth));
    out.push_str(&n.label);
    // An element whose children are all leaves fits on one line: `tr > td td.num`.
    if !n.children.is_empty() && n.children.iter().all(|c| c.children.is_empty()) {
        out.push_str(" >");
        for c in &n.children {
            out.push(' ');
            out.push_str(&c.label);
        }
        out.push('\n');
        return;
    }
    out.push('\n');
    for c in &n.children {
        print(c, depth + 1, out);
    }
}

/// The page as an indented outline: `tag#id.class.class` per element, an element whose
/// children are all leaves on one line. Checks that every element is closed in order (SVG
/// elements must be: see report::html::svg).
pub fn outline(html: &str) -> String {
    let mut stack: Vec<Node> = vec![Node {
        label: String::new(),
        children: Vec::new(),
    }];
    let mut names: Vec<String> = Vec::new();
    for t in tokens(html) {
        match t {
            Tok::Start(tag) => {
                let mut label = tag.name.clone();
                if let Some(id) = tag.attr("id") {
                    label.push('#');
                    label.push_str(id);
                }
                for c in tag.classes() {
                    label.push('.');
                    label.push_str(c);
                }
                let node = Node {
                    label,
                    children: Vec::new(),
                };
                if tag.self_closing || VOID.contains(&tag.name.as_str()) {
                    stack.last_mut().unwrap().children.push(node);
                } else {
                    stack.push(node);
                    names.push(tag.name);
                }
            }
            Tok::End(name) => {
                let open = names.pop();
                assert_eq!(open.as_deref(), Some(name.as_str()), "misnested </{name}>");
                let node = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(node);
            }
            Tok::Text(_) => {}
        }
    }
    assert!(names.is_empty(), "unclosed elements: {names:?}");
    let mut out = String::new();
    for c in &stack[0].children {
        print(c, 0, &mut out);
    }
    out
}

/// The text inside every element whose class list contains `class` (nested text joined).
pub fn texts_of_class(html: &str, class: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth_in: Option<usize> = None;
    let mut stack = 0usize;
    let mut cur = String::new();
    for t in tokens(html) {
        match t {
            Tok::Start(tag) => {
                let void = tag.self_closing || VOID.contains(&tag.name.as_str());
                if depth_in.is_none() && tag.classes().contains(&class) && !void {
                    depth_in = Some(stack);
                    cur.clear();
                }
                if !void {
                    stack += 1;
                }
            }
            Tok::End(_) => {
                stack -= 1;
                if depth_in == Some(stack) {
                    out.push(std::mem::take(&mut cur));
                    depth_in = None;
                }
            }
            Tok::Text(s) => {
                if depth_in.is_some() {
                    cur.push_str(&s);
                }
            }
        }
    }
    out
}

/// Start tags with `name` whose class list contains `class`.
pub fn count(html: &str, name: &str, class: &str) -> usize {
    tokens(html)
        .iter()
        .filter(
            |t| matches!(t, Tok::Start(tag) if tag.name == name && tag.classes().contains(&class)),
        )
        .count()
}

/// Start tags with `name` whose class list contains all of `classes`.
pub fn count_all(html: &str, name: &str, classes: &[&str]) -> usize {
    tokens(html)
        .iter()
        .filter(|t| {
            matches!(t, Tok::Start(tag) if tag.name == name
                && classes.iter().all(|c| tag.classes().contains(c)))
        })
        .count()
}

/// The pieces of a page between the start of each `<svg class="ladder">` and its end.
pub fn ladders(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<svg class=\"ladder\"") {
        let end = i + rest[i..].find("</svg>").expect("ladder closed");
        out.push(&rest[i..end]);
        rest = &rest[end..];
    }
    out
}

pub const HOSTILE_IF: &str = "eth<script>console.log(\"XSS-IFNAME\")</script>\"'&";

/// A pcapng whose interface name is markup, written under a file name that is markup, and
/// cut in the middle of a block so the damage warning quotes the path.
pub fn hostile_capture(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("<img src=x onerror=console.log('XSS-FILE')>.pcapng");
    let mut w = PcapNgWriter::new(File::create(&path).unwrap()).unwrap();
    w.write_block(
        &InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: 0xffff,
            options: vec![InterfaceDescriptionOption::IfName(Cow::Borrowed(
                HOSTILE_IF,
            ))],
        }
        .into_block(),
    )
    .unwrap();
    let mut frame = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(40000, 80, 1000, 64240)
        .syn()
        .write(&mut frame, b"")
        .unwrap();
    w.write_block(
        &EnhancedPacketBlock {
            interface_id: 0,
            timestamp: Duration::from_secs(1_700_000_000),
            original_len: frame.len() as u32,
            data: Cow::Borrowed(&frame),
            options: vec![],
        }
        .into_block(),
    )
    .unwrap();
    drop(w);
    // A truncated second block: a damage warning naming the file.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[6, 0, 0, 0, 200, 0, 0, 0, 1, 2, 3]);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A TCP connection carrying one json-header message (4-byte LE header length, JSON
/// header, body) whose file name is markup.
pub fn hostile_json_header(dir: &Path) -> std::path::PathBuf {
    let (cli, srv) = (([10, 0, 0, 1], 40000u16), ([10, 0, 0, 2], 9000u16));
    let header = serde_json::json!({
        "file_name": "<script>console.log(\"XSS-JSON\")</script><img src=x onerror=alert(1)>.txt",
        "file_size": 3,
        "note": "</td></tr></table><h1>x</h1>"
    })
    .to_string();
    let mut payload = (header.len() as u32).to_le_bytes().to_vec();
    payload.extend_from_slice(header.as_bytes());
    payload.extend_from_slice(b"abc");
    let path = dir.join("json_header.pcap");
    let mut w = pcap_file::pcap::PcapWriter::new(File::create(&path).unwrap()).unwrap();
    let (x, y) = (1000u32, 5000u32);
    let mut t = 0u64;
    let mut send = |from: ([u8; 4], u16),
                    to: ([u8; 4], u16),
                    syn: bool,
                    fin: bool,
                    seq: u32,
                    ack: Option<u32>,
                    data: &[u8]| {
        let mut b = etherparse::PacketBuilder::ethernet2(
            [2, 0, 0, 0, 0, from.0[3]],
            [2, 0, 0, 0, 0, to.0[3]],
        )
        .ipv4(from.0, to.0, 64)
        .tcp(from.1, to.1, seq, 64240);
        if syn {
            b = b.syn();
        }
        if fin {
            b = b.fin();
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let mut v = Vec::new();
        b.write(&mut v, data).unwrap();
        t += 1000;
        w.write_packet(&pcap_file::pcap::PcapPacket::new(
            Duration::from_micros(1_700_000_000_000_000 + t),
            v.len() as u32,
            &v,
        ))
        .unwrap();
    };
    send(cli, srv, true, false, x, None, b"");
    send(srv, cli, true, false, y, Some(x + 1), b"");
    send(cli, srv, false, false, x + 1, Some(y + 1), b"");
    send(cli, srv, false, false, x + 1, Some(y + 1), &payload);
    let end = x + 1 + payload.len() as u32;
    send(srv, cli, false, false, y + 1, Some(end), b"");
    send(cli, srv, false, true, end, Some(y + 1), b"");
    send(srv, cli, false, true, y + 1, Some(end + 1), b"");
    send(cli, srv, false, false, end + 1, Some(y + 2), b"");
    // A second connection whose binary payload carries markup: auto framing quotes its
    // first bytes in the framing reason.
    let (cli2, srv2) = (([10, 0, 0, 1], 40001u16), ([10, 0, 0, 2], 7000u16));
    let data = b"\x01\x02<script>console.log('XSS-PAYLOAD')</script>";
    send(cli2, srv2, true, false, x, None, b"");
    send(srv2, cli2, true, false, y, Some(x + 1), b"");
    send(cli2, srv2, false, false, x + 1, Some(y + 1), b"");
    send(cli2, srv2, false, false, x + 1, Some(y + 1), data);
    send(
        srv2,
        cli2,
        false,
        false,
        y + 1,
        Some(x + 1 + data.len() as u32),
        b"",
    );
    path
}

/// `n` refused connections (SYN, RST/ACK), one per client port from 20000.
pub fn many_refused(dir: &Path, n: u16) -> PathBuf {
    let path = dir.join("many.pcap");
    let mut w = pcap_file::pcap::PcapWriter::new(File::create(&path).unwrap()).unwrap();
    let mut t = 0u64;
    for i in 0..n {
        for (syn, from, to, sport, dport) in [
            (true, [10, 0, 0, 1], [10, 0, 0, 2], 20000 + i, 80),
            (false, [10, 0, 0, 2], [10, 0, 0, 1], 80, 20000 + i),
        ] {
            let b = etherparse::PacketBuilder::ethernet2(
                [2, 0, 0, 0, 0, from[3]],
                [2, 0, 0, 0, 0, to[3]],
            )
            .ipv4(from, to, 64)
            .tcp(sport, dport, if syn { 100 } else { 0 }, 64240);
            let b = if syn { b.syn() } else { b.rst().ack(101) };
            let mut v = Vec::new();
            b.write(&mut v, b"").unwrap();
            t += 100;
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                Duration::from_micros(1_700_000_000_000_000 + t),
                v.len() as u32,
                &v,
            ))
            .unwrap();
        }
    }
    path
}
