//! Regular files are read by a read-ahead thread, either in 1 MiB blocks whose buffers are
//! swapped into the record reader or as memory-mapped 4 MiB windows that overlap by the
//! 64 KiB headroom (capture/ahead.rs): records cut by block or window boundaries, records
//! bigger than the headroom and bigger than a block, and a file cut inside a record must give
//! exactly the frames the in-memory reader gives for the same bytes, both ways.

use std::io::{Cursor, Write};
use std::os::unix::fs::FileExt;

use netlens::capture::file::{CaptureFile, DEFAULT_MAX_RECORD};
use netlens::capture::Next;

/// A little-endian microsecond pcap (Ethernet) whose records have the given lengths; each
/// record's bytes encode its index so a misplaced byte shows.
fn pcap(lens: &[usize]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&(8u32 << 20).to_le_bytes()); // snaplen
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, &len) in lens.iter().enumerate() {
        f.extend_from_slice(&(i as u32).to_le_bytes());
        f.extend_from_slice(&(i as u32 % 1_000_000).to_le_bytes());
        f.extend_from_slice(&(len as u32).to_le_bytes());
        f.extend_from_slice(&(len as u32).to_le_bytes());
        f.extend((0..len).map(|j| (i * 31 + j / 7) as u8));
    }
    f
}

/// A frame's number, timestamp, hash of its bytes and length.
type Frame = (u64, i64, u64, usize);

/// Every frame, and the damage offset if any.
fn frames(mut c: CaptureFile) -> (Vec<Frame>, Option<u64>) {
    let mut out = Vec::new();
    let mut frame = 1;
    loop {
        match c.next_packet(frame) {
            Next::Packet(p) => {
                let h = p.data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                    (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                });
                out.push((p.frame, p.ts_ns, h, p.data.len()));
                frame += 1;
            }
            Next::Record { .. } => frame += 1,
            Next::Idle => {}
            Next::End => return (out, None),
            Next::Damaged(d) => return (out, Some(d.offset)),
        }
    }
}

fn compare(name: &str, bytes: &[u8]) -> usize {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("write capture");
    let in_memory = frames(
        CaptureFile::from_reader(
            Box::new(Cursor::new(bytes.to_vec())),
            name.into(),
            0,
            DEFAULT_MAX_RECORD,
        )
        .expect("reads"),
    );
    for map in [false, true] {
        let from_file = frames(open(&path, map));
        assert_eq!(
            from_file.1, in_memory.1,
            "{name} (mapped: {map}): damage offset"
        );
        check_file_offsets(name, &path, map);
        assert_eq!(
            from_file.0.len(),
            in_memory.0.len(),
            "{name} (mapped: {map}): frame count"
        );
        assert!(
            from_file.0 == in_memory.0,
            "{name} (mapped: {map}): frames differ"
        );
    }
    in_memory.0.len()
}

/// Opens `path`, read into blocks or mapped.
fn open(path: &std::path::Path, map: bool) -> CaptureFile {
    let mut c = CaptureFile::open(path, 0, DEFAULT_MAX_RECORD).expect("opens");
    c.map_file(map);
    c
}

/// Every frame that lies in a read-ahead block says where its bytes are in the file, and
/// the file holds exactly those bytes there (the stream history reads them back from
/// there instead of copying them). Returns how many frames were located.
fn check_file_offsets(name: &str, path: &std::path::Path, map: bool) -> usize {
    let file = std::fs::File::open(path).expect("reopen");
    let mut c = open(path, map);
    let (mut frame, mut located) = (1, 0);
    loop {
        match c.next_packet(frame) {
            Next::Packet(p) => {
                if let Some(block) = p.block {
                    assert!(
                        block.file().is_some(),
                        "{name}: a file's block has its file"
                    );
                    let pos = block
                        .file_offset(p.data)
                        .expect("a frame in a block has an offset");
                    let mut back = vec![0; p.data.len()];
                    file.read_exact_at(&mut back, pos).expect("read back");
                    assert!(back == p.data, "{name}: frame {frame} is not at {pos}");
                    // Bytes that are not the block's (a copy) have none.
                    assert_eq!(block.file_offset(&back), None);
                    located += 1;
                }
                frame += 1;
            }
            Next::Record { .. } => frame += 1,
            Next::Idle => {}
            Next::End | Next::Damaged(_) => return located,
        }
    }
}

#[test]
fn small_records_across_many_block_boundaries() {
    // 60..1514-byte records: 14,000 of them fill 10.6 MiB, so several block and window
    // edges fall inside records and inside record headers.
    let lens: Vec<usize> = (0..14_000).map(|i| 60 + (i * 337) % 1455).collect();
    assert_eq!(compare("small.pcap", &pcap(&lens)), 14_000);
    // Nearly all of them lie in read-ahead blocks (the first few are read before the
    // read-ahead thread starts).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("small.pcap");
    std::fs::write(&path, pcap(&lens)).expect("write capture");
    let read = check_file_offsets("small.pcap", &path, false);
    assert!(read > 13_900, "{read}");
    // Mapped, every frame after the first 4 KiB (read with the file header) is in a window.
    let mapped = check_file_offsets("small.pcap", &path, true);
    assert!(mapped >= read, "{mapped} < {read}");
}

#[test]
fn records_bigger_than_the_headroom_and_than_a_block() {
    // 100 KiB records (over the 64 KiB headroom) and 3 MiB records (over a 1 MiB block)
    // between small ones.
    let mut lens = Vec::new();
    for i in 0..40 {
        lens.push(60 + i);
        lens.push(100 << 10);
        if i % 10 == 3 {
            lens.push(3 << 20);
        }
        lens.push(1514);
    }
    assert_eq!(compare("big.pcap", &pcap(&lens)), lens.len());
}

#[test]
fn a_file_cut_inside_a_record_is_damaged_at_the_same_offset() {
    // 9.7 MiB: cuts at block (1 MiB) and window (4 MiB) edges and between them.
    let lens: Vec<usize> = (0..12_000).map(|i| 200 + (i * 911) % 1300).collect();
    let bytes = pcap(&lens);
    let cuts = [
        bytes.len() - 7,
        (1 << 20) + 5,
        (2 << 20) - 3,
        2_500_000,
        (4 << 20) + 5,
        (8 << 20) - 3,
    ];
    for cut in cuts {
        compare("cut.pcap", &bytes[..cut]);
    }
}

/// Without the stream thread holding blocks, a file is read with at most four blocks: two
/// waiting, one being filled, one being read. The record reader used to wait for the next
/// block while still holding the one it had read, so a reading thread that was not blocked
/// at that moment made a fifth: a race, so the file is read many times, half of them with
/// a slow consumer (the reading thread then always ahead), half as fast as it goes.
#[test]
fn a_file_is_read_with_at_most_four_blocks() {
    let lens: Vec<usize> = (0..14_000).map(|i| 60 + (i * 337) % 1455).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("blocks.pcap");
    std::fs::write(&path, pcap(&lens)).expect("write capture");
    for run in 0..40 {
        let mut c = open(&path, false);
        let (mut frame, mut most) = (1u64, 0);
        loop {
            match c.next_packet(frame) {
                Next::Packet(_) => frame += 1,
                Next::End | Next::Damaged(_) => break,
                _ => {}
            }
            if run % 2 == 0 && frame % 500 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            most = most.max(c.read_ahead_blocks());
        }
        assert_eq!(frame - 1, lens.len() as u64);
        assert!(most <= 4, "run {run}: {most} blocks made");
    }
}
