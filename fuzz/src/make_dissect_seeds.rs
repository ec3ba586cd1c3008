//! Writes seed inputs for the `dissect` target from real captures: for each capture, its
//! first frames in that target's input format (link-type selector byte, then frames with
//! 2-byte little-endian lengths). Usage: make_dissect_seeds OUT_DIR CAPTURE...

use std::path::Path;

use netlens::capture::file::CaptureFile;
use netlens::capture::{linktype, Next};

/// Must match `LINK_TYPES` in fuzz_targets/dissect.rs.
const LINK_TYPES: [u32; 14] = [
    linktype::ETHERNET,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::RAW,
    linktype::IPV4,
    linktype::IPV6,
    linktype::NULL,
    linktype::LOOP,
    linktype::NFLOG,
    linktype::IPOIB,
    linktype::PKTAP,
    linktype::RAW_OPENBSD,
    105,
    0xffff,
];

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
