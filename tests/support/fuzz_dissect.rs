//! The `dissect` fuzz target's input format, shared by the target
//! (fuzz/fuzz_targets/dissect.rs, which includes this file by path), its seed maker
//! (fuzz/src/make_dissect_seeds.rs) and the replay of its findings (tests/regressions.rs):
//! one byte choosing the link type (bit 7: verify checksums; bit 6: claim 100 more bytes
//! on the wire than captured), then frames, each prefixed by a 2-byte little-endian length.

use netlens::capture::{linktype, RawPacket};
use netlens::dissect::{DissectOptions, Dissector};

/// Link types the selector byte picks from (modulo its length).
pub const LINK_TYPES: [u32; 14] = [
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

/// Dissects every frame of `data` and renders it as a JSON entry and a text line; an
/// error is a renderer that failed on a dissected packet (a bug).
pub fn run(data: &[u8]) -> Result<(), String> {
    let Some((&sel, mut rest)) = data.split_first() else {
        return Ok(());
    };
    let link_type = LINK_TYPES[usize::from(sel) % LINK_TYPES.len()];
    let mut dissector = Dissector::new(DissectOptions {
        verify_checksums: sel & 0x80 != 0,
        ..DissectOptions::default()
    });
    let mut frame = 1u64;
    let mut sink = Vec::new();
    while rest.len() >= 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let bytes = &rest[2..2 + n];
        rest = &rest[2 + n..];
        let raw = RawPacket {
            frame,
            ts_ns: frame as i64 * 1_000_000,
            wire_len: n as u32 + u32::from(sel & 0x40 != 0) * 100,
            data: bytes,
            link_type,
            port: 0,
            file_index: 0,
            block: None,
        };
        let p = dissector.dissect(&raw);
        let entry = netlens::report::packets::entry(&p);
        serde_json::to_writer(&mut sink, &entry).map_err(|e| format!("frame {frame}: {e}"))?;
        netlens::report::packets::write_line(&mut sink, &p, 0)
            .map_err(|e| format!("frame {frame}: {e}"))?;
        sink.clear();
        frame += 1;
    }
    Ok(())
}
