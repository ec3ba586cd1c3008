//! The progress bar for long file reads (indicatif, on the error stream): bytes read of the
//! total, packets per second, elapsed time and ETA. The binary enables it only when stderr
//! is a terminal, not with `--quiet`, and not when the JSON goes to stdout.
//!
//! Updating costs a clock read, so the pipeline calls [`Progress::update`] only every few
//! thousand frames.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar over `total` bytes (a spinner when the total is unknown), or nothing.
    pub fn new(enabled: bool, total: Option<u64>) -> Self {
        if !enabled {
            return Progress { bar: None };
        }
        let bar = match total {
            Some(t) => {
                let b =
                    ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr_with_hz(4));
                if let Ok(style) = ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {msg} elapsed {elapsed} eta {eta}",
                ) {
                    b.set_style(style);
                }
                b
            }
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4)),
        };
        Progress { bar: Some(bar) }
    }

    pub fn update(&mut self, bytes: u64, packets: u64) {
        if let Some(b) = &self.bar {
            b.set_position(bytes);
            let secs = b.elapsed().as_secs_f64();
            if secs > 0.0 {
                b.set_message(format!(
                    "{} pkts, {:.2} M pkt/s",
                    packets,
                    packets as f64 / secs / 1e6
                ));
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
