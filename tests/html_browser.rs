//! The page in a real browser: headless Chromium opens the report of real fixtures, the
//! test reads the DOM after the page's script ran and the browser's console log, and saves
//! screenshots under target/html-browser/ for a person to look at.
//!
//! Skipped, with a printed reason, when no Chromium is installed (`apt-get install
//! chromium`; `NETLENS_CHROMIUM` names another binary). A control page that throws proves
//! that console errors are seen at all in this browser.

mod html_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use html_support::{
    count, count_all, fixture, framing, hostile_capture, hostile_json_header, render,
};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETLENS_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn out_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/html-browser");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What the browser said: the DOM after scripts ran (stdout) and its log (stderr).
struct Visit {
    dom: String,
    log: String,
}

/// Runs Chromium headless on `page` with `mode` (`--dump-dom` or `--screenshot=...`),
/// killed after a minute.
fn browse(bin: &Path, page: &Path, mode: &[String]) -> Visit {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(mode)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null());
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Visit {
        dom: std::fs::read_to_string(&out_path).unwrap_or_default(),
        log: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Console messages and uncaught errors of the page, from Chromium's log.
fn console(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

fn skip(why: &str) {
    println!("skipped: {why}");
    eprintln!("skipped: {why}");
}

#[test]
fn browser_loads_the_page_without_errors() {
    let Some(bin) = chromium() else {
        return skip("no chromium found (apt-get install chromium, or set NETLENS_CHROMIUM)");
    };
    // Control: a page that logs and throws must show up in the log, or the checks below
    // could not fail.
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<!DOCTYPE html><p>x</p><script>console.log('CONTROL-LOG');throw new Error('CONTROL-THROW')</script>",
    )
    .unwrap();
    let v = browse(&bin, &control, &["--dump-dom".to_string()]);
    if !v.dom.contains("<p>x</p>") {
        return skip(&format!(
            "chromium at {} could not open a page here: {}",
            bin.display(),
            v.log.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let c = console(&v.log);
    assert!(c.iter().any(|l| l.contains("CONTROL-LOG")), "{}", v.log);
    assert!(
        c.iter()
            .any(|l| l.contains("Uncaught Error: CONTROL-THROW")),
        "{}",
        v.log
    );

    // Several fixtures read as one input (in recording order, so capture time runs
    // forward): connections of every kind, ARP and a MAC table.
    let files = [
        "tcp_graceful.pcap",
        "tcp_refused.pcap",
        "tcp_no_answer.pcap",
        "tcp_half_close.pcap",
        "tcp_rst_abort.pcap",
        "tcp_simultaneous_close.pcap",
        "udp_exchange.pcap",
    ];
    let p = render(files.iter().map(|f| fixture(f)).collect(), |_| {});
    let page = out_dir().join("fixtures.html");
    std::fs::copy(&p.path, &page).unwrap();
    let v = browse(&bin, &page, &["--dump-dom".to_string()]);
    assert!(console(&v.log).is_empty(), "console: {:?}", console(&v.log));
    let report_tcp = p.report.connection_stats.as_ref().unwrap().tcp as usize;
    // expected.json: one TCP connection in each of the six TCP fixtures.
    assert_eq!(report_tcp, 6);
    assert_eq!(
        count(&v.dom, "svg", "ladder"),
        report_tcp,
        "one ladder per connection"
    );
    let steps: usize = p
        .report
        .connections
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|c| Some(c.handshake.as_ref()?.steps.len() + c.teardown.as_ref()?.steps.len()))
        .sum();
    assert_eq!(count(&v.dom, "g", "step"), steps, "one arrow per step");
    assert_eq!(
        count_all(&v.dom, "g", &["step", "k-rst"]),
        2,
        "refused and aborted: two RSTs"
    );
    // The script ran: the controls are shown and the pager counted the cards.
    assert!(
        v.dom
            .contains("<div class=\"controls\" id=\"conn-controls\" data-list=\"conn-list\">"),
        "controls still hidden"
    );
    assert!(
        v.dom.contains(&format!("1–{report_tcp} of {report_tcp}")),
        "pager text missing"
    );
    assert_eq!(count(&v.dom, "g", "lane"), 2, "two MACs learned");

    let shot = out_dir().join("fixtures.png");
    let _ = std::fs::remove_file(&shot);
    let v = browse(
        &bin,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,3200".to_string(),
        ],
    );
    assert!(console(&v.log).is_empty(), "console: {:?}", console(&v.log));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    println!("screenshot: {}", shot.display());
}

/// A page built from hostile capture strings (file name, interface name, json-header
/// fields) runs no script but its own.
#[test]
fn hostile_strings_do_not_run_in_the_browser() {
    let Some(bin) = chromium() else {
        return skip("no chromium found (apt-get install chromium, or set NETLENS_CHROMIUM)");
    };
    let dir = tempfile::tempdir().unwrap();
    let files = vec![hostile_capture(dir.path()), hostile_json_header(dir.path())];
    let p = render(files, |c| framing(c, "9000=json-header"));
    let page = out_dir().join("hostile.html");
    std::fs::copy(&p.path, &page).unwrap();
    let v = browse(&bin, &page, &["--dump-dom".to_string()]);
    if v.dom.is_empty() {
        return skip("chromium produced no DOM");
    }
    assert!(
        !v.log.contains("XSS-"),
        "injected script ran: {:?}",
        console(&v.log)
    );
    assert!(console(&v.log).is_empty(), "console: {:?}", console(&v.log));
    assert!(
        v.dom.contains("XSS-IFNAME"),
        "the interface name is shown as text"
    );
    assert!(v.dom.contains("XSS-JSON"), "the file name is shown as text");
    assert!(
        v.dom.contains("\\x01\\x02&lt;script&gt;consol"),
        "the payload is shown as text"
    );
    assert_eq!(v.dom.matches("<img").count(), 0);
    assert_eq!(
        v.dom.matches("<h1>").count(),
        1,
        "only the page's own heading"
    );
}

/// The segment/message map of a real stream in the browser: one box per segment and per
/// message, the coalescing segments and split/coalesced messages highlighted as the
/// fixture's send log says (fixtures/README.md, frame_lines).
#[test]
fn browser_draws_the_stream_map() {
    let Some(bin) = chromium() else {
        return skip("no chromium found (apt-get install chromium, or set NETLENS_CHROMIUM)");
    };
    let p = render(vec![fixture("frame_lines.pcap")], |c| framing(c, "line"));
    let page = out_dir().join("frame_lines.html");
    std::fs::copy(&p.path, &page).unwrap();
    let v = browse(&bin, &page, &["--dump-dom".to_string()]);
    if v.dom.is_empty() {
        return skip("chromium produced no DOM");
    }
    assert!(console(&v.log).is_empty(), "console: {:?}", console(&v.log));
    // orig: 10 lines in 9 segments, 2 split, 5 coalesced, 2 coalescing segments;
    // resp: 10 lines = 10 segments.
    // The map part of the page (the legend draws sample boxes too).
    let start = v.dom.find("id=\"stream-list\"").expect("stream list");
    let end = start + v.dom[start..].find("</section>").unwrap();
    let maps = &v.dom[start..end];
    assert_eq!(count(maps, "svg", "smap"), 2);
    assert_eq!(count(maps, "g", "seg"), 19);
    assert_eq!(count(maps, "g", "msg"), 20);
    assert_eq!(count_all(maps, "g", &["seg", "coal"]), 2);
    assert_eq!(count_all(maps, "g", &["msg", "split"]), 2);
    assert_eq!(count_all(maps, "g", &["msg", "coal"]), 5);
    assert!(v.dom.contains("1–2 of 2"), "stream pager ran");
    let shot = out_dir().join("frame_lines.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &bin,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600".to_string(),
        ],
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000);
    println!("screenshot: {}", shot.display());
}

/// The script pages a long list and shows the card an address names (#c100 is on the
/// second page of 50).
#[test]
fn browser_pages_and_follows_links() {
    let Some(bin) = chromium() else {
        return skip("no chromium found (apt-get install chromium, or set NETLENS_CHROMIUM)");
    };
    let dir = tempfile::tempdir().unwrap();
    let p = render(vec![html_support::many_refused(dir.path(), 120)], |_| {});
    let page = out_dir().join("paging.html");
    std::fs::copy(&p.path, &page).unwrap();
    let v = browse(&bin, &page, &["--dump-dom".to_string()]);
    if v.dom.is_empty() {
        return skip("chromium produced no DOM");
    }
    assert!(console(&v.log).is_empty(), "console: {:?}", console(&v.log));
    assert!(v.dom.contains("1–50 of 120 · page 1/3"), "pager text");
    assert_eq!(
        v.dom.matches("<article class=\"conn\" id=").count(),
        50,
        "one page shown"
    );
    // Following a link to connection 100.
    let url = format!("{}#c100", page.display());
    let v = browse(&bin, Path::new(&url), &["--dump-dom".to_string()]);
    assert!(
        v.dom.contains("51–100 of 120 · page 2/3"),
        "pager moved to the card's page"
    );
    assert!(
        v.dom.contains("<article class=\"conn\" id=\"c100\""),
        "card 100 shown"
    );
}
