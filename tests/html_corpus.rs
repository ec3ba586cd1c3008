//! The HTML page over every capture of the shared corpus (../shared/corpus, or
//! `NETLENS_CORPUS`): it is written, every element is closed in order, it holds one card
//! per TCP connection of the JSON report (ladders within the default budget), the only
//! script is the page's own, and in-page links resolve. Skipped with a note where the
//! corpus is absent.

mod html_support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use html_support::{count, ladders, outline, render, tokens, Tok};

fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NETLENS_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
    dir.join("captures").is_dir().then_some(dir)
}

#[test]
fn every_corpus_capture_gets_a_well_formed_page() {
    let Some(dir) = corpus_dir() else {
        eprintln!("note: ../shared/corpus not found; HTML corpus check skipped");
        return;
    };
    let mut captures: Vec<PathBuf> = std::fs::read_dir(dir.join("captures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    captures.sort();
    let mut pages = 0;
    for path in &captures {
        let p = render(vec![path.clone()], |_| {});
        let name = path.display();
        outline(&p.html);
        assert_eq!(p.html.matches("<script").count(), 1, "{name}");
        let tcp = p
            .report
            .connections
            .as_ref()
            .map_or(0, |c| c.iter().filter(|c| c.proto == "tcp").count());
        assert_eq!(count(&p.html, "article", "conn"), tcp, "{name}: cards");
        let budget = netlens::HtmlOptions::default().max_ladders;
        assert_eq!(ladders(&p.html).len(), tcp.min(budget), "{name}: ladders");
        let ids: HashSet<String> = tokens(&p.html)
            .into_iter()
            .filter_map(|t| match t {
                Tok::Start(tag) => tag.attr("id").map(str::to_string),
                _ => None,
            })
            .collect();
        for t in tokens(&p.html) {
            if let Tok::Start(tag) = t {
                if let Some(h) = tag.attr("href").and_then(|h| h.strip_prefix('#')) {
                    assert!(ids.contains(h), "{name}: link to #{h} has no target");
                }
            }
        }
        pages += 1;
    }
    println!("{pages} corpus pages checked");
    assert!(pages > 100);
}
