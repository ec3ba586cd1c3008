//! Fuzz target: the dissector and the per-frame renderers, for any link type and any
//! bytes. Input: one byte choosing the link type, then frames, each prefixed by a 2-byte
//! little-endian length (several frames exercise IPv4 reassembly state).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlens::capture::{linktype, RawPacket};
use netlens::dissect::{DissectOptions, Dissector};

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

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
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
        };
        let p = dissector.dissect(&raw);
        let entry = netlens::report::packets::entry(&p);
        let _ = serde_json::to_writer(&mut sink, &entry);
        let _ = netlens::report::packets::write_line(&mut sink, &p, 0);
        sink.clear();
        frame += 1;
    }
});
