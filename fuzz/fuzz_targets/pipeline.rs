//! Fuzz target: the whole pipeline with every view and `--packets`: a capture in, the JSON
//! report and the terminal tables and per-frame lines out (to memory). As analyzers land
//! they run here too, since `Views::all()` enables them.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use netlens::capture::file::CaptureFile;

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
        let mut config = netlens::Config::for_files(vec![PathBuf::from("fuzz")]);
        config.views = netlens::Views::all();
        config.views.packets = true;
        config.quiet = true;
        config.max_record = 1 << 16;
        if to_json {
            config.json = Some(PathBuf::from("-"));
        }
        let mut out = Vec::new();
        let mut err = Vec::new();
        let _ = netlens::pipeline::run_captures(&config, vec![file], &mut out, &mut err);
        if to_json {
            // A report that was written must be valid JSON.
            if !out.is_empty() {
                serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
            }
        }
    }
});
