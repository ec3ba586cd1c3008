//! Fuzz target: the capture reader. Any bytes in (as a pcap or pcapng file), records out;
//! never a panic, never an allocation beyond the record cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlens::capture::file::CaptureFile;
use netlens::capture::Next;

fuzz_target!(|data: &[u8]| {
    // A small record cap keeps the fuzzer's memory low; the logic is the same at 16 MiB.
    let Ok(mut f) = CaptureFile::from_reader(
        Box::new(std::io::Cursor::new(data.to_vec())),
        "fuzz".into(),
        0,
        1 << 16,
    ) else {
        return;
    };
    f.begin(0);
    let mut frame = 1;
    loop {
        match f.next_packet(frame) {
            Next::Packet(p) => {
                assert_eq!(p.frame, frame);
                assert!(p.ts_ns.unsigned_abs() <= netlens::capture::TS_LIMIT_NS as u64);
            }
            Next::Record { .. } => {}
            // "Ask again" (a file never stalls; were it to, the fuzzer reports a timeout).
            Next::Idle => continue,
            Next::End | Next::Damaged(_) => break,
        }
        frame += 1;
    }
});
