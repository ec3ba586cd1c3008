//! Writes seed inputs for the `dissect` target from real captures: for each capture, its
//! first frames in that target's input format (link-type selector byte, then frames with
//! 2-byte little-endian lengths). Usage: make_dissect_seeds OUT_DIR CAPTURE...

use std::path::Path;

use netlens::capture::file::CaptureFile;
use netlens::capture::Next;

#[path = "../../tests/support/fuzz_dissect.rs"]
#[allow(dead_code)] // only LINK_TYPES is needed here
mod fuzz_dissect;

use fuzz_dissect::LINK_TYPES;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, captures)) = args.split_first() else {
        eprintln!("usage: make_dissect_seeds OUT_DIR CAPTURE...");
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).expect("create OUT_DIR");
    let mut written = 0;
    for c in captures {
        let Ok(mut f) = CaptureFile::open(Path::new(c), 0, 1 << 20) else {
            continue;
        };
        f.begin(0);
        let mut seed: Option<Vec<u8>> = None;
        let mut frames = 0;
        let mut frame = 1;
        while frames < 6 {
            match f.next_packet(frame) {
                Next::Packet(p) => {
                    let Some(sel) = LINK_TYPES.iter().position(|&l| l == p.link_type) else {
                        break;
                    };
                    let s = seed.get_or_insert_with(|| vec![sel as u8]);
                    let n = p.data.len().min(usize::from(u16::MAX));
                    s.extend_from_slice(&(n as u16).to_le_bytes());
                    s.extend_from_slice(&p.data[..n]);
                    frames += 1;
                }
                Next::Record { .. } => {}
                _ => break,
            }
            frame += 1;
        }
        if let Some(s) = seed {
            let name = Path::new(c)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            std::fs::write(Path::new(out).join(name.unwrap_or_default()), s).expect("write seed");
            written += 1;
        }
    }
    eprintln!("{written} seeds written to {out}");
}
