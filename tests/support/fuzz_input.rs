//! How the `pipeline` fuzz target reads its input, shared with tests/regressions.rs so a
//! saved finding replays with the options it was found with. The fuzz target includes this
//! file by path (`#[path]`); it uses only the netlens library.
//!
//! The whole input is the capture. Its last three bytes also pick the `--framing` rule
//! (every kind the command line accepts, with parameters): seeds are whole capture files,
//! and a changed tail only changes the last record.

use netlens::analyze::framing::{FramingConfig, FramingKind, FramingRule, LenSpec};

/// Every kind `--framing` accepts, parameters drawn from `p` and `q`; `None` = no
/// `--framing` (the default, auto).
fn kind(sel: u8, p: u8, q: u8) -> Option<FramingKind> {
    Some(match sel % 13 {
        0 => FramingKind::Len(LenSpec {
            off: u32::from(p % 8),
            width: [1, 2, 4, 8][usize::from(q & 3)],
            big_endian: q & 4 != 0,
            adj: i64::from(q >> 3) - 16,
        }),
        1 => FramingKind::Len32Le,
        2 => FramingKind::Len32Be,
        3 => FramingKind::Len16Be,
        4 => FramingKind::Delim(if q & 1 == 0 { vec![p] } else { vec![p, q] }),
        5 => FramingKind::JsonHeader,
        6 => FramingKind::Line,
        7 => FramingKind::Http,
        8 => FramingKind::Tls,
        9 => FramingKind::Dns,
        10 => FramingKind::Auto,
        11 => FramingKind::None,
        _ => return None,
    })
}

/// The `--framing` rules for input `data`.
pub fn framing(data: &[u8]) -> FramingConfig {
    let tail = |i: usize| data.len().checked_sub(i).map_or(0, |j| data[j]);
    let (sel, p, q) = (tail(1), tail(2), tail(3));
    let rules = match kind(sel, p, q) {
        // Half the time the kind applies to one port only (common service ports of the
        // seeds), so auto framing still runs on the other connections.
        Some(kind) if sel & 0x80 != 0 => vec![FramingRule {
            port: Some([80, 443, 53, 9000][usize::from(p & 3)]),
            kind,
        }],
        Some(kind) => vec![FramingRule { port: None, kind }],
        None => Vec::new(),
    };
    FramingConfig { rules }
}

/// The run's configuration: every view and `--packets`, the framing [`framing`] picks,
/// `--extract DIR --extract-messages`, and the JSON report on standard output or the
/// tables.
pub fn config(data: &[u8], extract: &std::path::Path, to_json: bool) -> netlens::Config {
    let mut config = netlens::Config::for_files(vec![std::path::PathBuf::from("fuzz")]);
    config.views = netlens::Views::all();
    config.views.packets = true;
    config.quiet = true;
    config.max_record = 1 << 16;
    config.streams.framing = framing(data);
    config.streams.extract = Some(extract.to_path_buf());
    config.streams.extract_messages = true;
    if to_json {
        config.json = Some(std::path::PathBuf::from("-"));
    }
    config
}
