//! Fuzz target: the whole pipeline with every view and `--packets`: a capture in, the JSON
//! report and the terminal tables and per-frame lines out (to memory), `--streams` with a
//! framing kind chosen by the input, and `--extract --extract-messages` into a temporary
//! directory. As analyzers land they run here too, since `Views::all()` enables them.
//! How the input maps to options is in tests/support/fuzz_input.rs (shared with the
//! replay of findings in tests/regressions.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netlens::capture::file::CaptureFile;

#[path = "../../tests/support/fuzz_input.rs"]
mod fuzz_input;

fuzz_target!(|data: &[u8]| {
    for to_json in [true, false] {
        let Ok(file) = CaptureFile::from_reader(
            Box::new(std::io::Cursor::new(data.to_vec())),
            "fuzz".into(),
            0,
            1 << 16,
        ) else {
            return;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = fuzz_input::config(data, &dir.path().join("x"), to_json);
        let mut out = Vec::new();
        let mut err = Vec::new();
        let _ = netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err);
        if to_json && !out.is_empty() {
            // A report that was written must be valid JSON.
            serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
        }
        // Nothing but the extract directory appears in the temporary directory.
        for e in std::fs::read_dir(dir.path()).expect("read the temporary directory") {
            let name = e.expect("entry").file_name();
            assert_eq!(name, "x", "--extract wrote outside its directory");
        }
    }
});
