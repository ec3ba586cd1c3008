//! Capture time going back when a file begins.
//!
//! Files are read in order as one input, as `mergecap -a` joins them. When a file starts
//! well before the latest time the files before it reached (two captures of the same
//! period, or one file given twice), its packets would join the earlier file's
//! connections that share their 4-tuple, or meet timers set far in their future: the
//! result was phantom midstream (`OTH`) and reused-tuple entries that are in neither
//! file. So at such a file boundary the tracker closes out every open connection first
//! (`finalized_by` "rewound", pushed to `ctx.finalized` like any other, so the stream
//! analysis closes them too), restarts its clock at the new file's time, and reports a
//! warning. Each file of such a run is then analyzed as if alone, after the ones before
//! it; `mergecap` (without `-a`) interleaves overlapping captures instead.
//!
//! A step back of up to [`REWIND_NS`] is ordinary reordering where a capture was split
//! into files (`tcpdump -C`/`-G`) and changes nothing.

use super::{ConnTracker, Finalized};
use crate::dissect::Packet;
use crate::report::{Report, Warning};

/// How far capture time must go back at a file boundary to count as a new start.
pub const REWIND_NS: i64 = 1_000_000_000;

/// One file boundary where capture time went back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rewind {
    /// 0-based index of the file, its first packet's frame, how far back its time went.
    file_index: u16,
    frame: u64,
    back_ns: i64,
    /// Connections open then, closed out.
    closed: u64,
}

impl ConnTracker {
    /// Names the input files (in order), for the warnings.
    pub fn name_files(&mut self, names: Vec<String>) {
        self.file_names = names;
    }

    /// Called with the first packet of each file after the first.
    pub(super) fn check_rewind(&mut self, pkt: &Packet<'_>, out: &mut Vec<u64>) {
        if pkt.ts_ns >= self.now.saturating_sub(REWIND_NS) {
            return;
        }
        let closed = self.finalize_all(Finalized::Rewound, Some(out));
        self.table.restart_clock();
        self.rewinds.push(Rewind {
            file_index: pkt.file_index,
            frame: pkt.frame,
            back_ns: self.now.saturating_sub(pkt.ts_ns),
            closed,
        });
        self.now = pkt.ts_ns;
    }

    pub(super) fn rewind_warnings(&self, report: &mut Report) {
        for r in &self.rewinds {
            let path = self.file_names.get(usize::from(r.file_index)).cloned();
            report.warnings.push(Warning {
                kind: "time-rewound".into(),
                message: format!(
                    "{}input file {} starts {:.3} s before the latest packet of the files before it: \
                     the {} connection(s) open then were closed out (finalized_by \"rewound\") \
                     and it was analyzed after them as if alone; mergecap (without -a) \
                     interleaves overlapping captures",
                    path.as_deref().map(|p| format!("{p}: ")).unwrap_or_default(),
                    u32::from(r.file_index) + 1,
                    r.back_ns as f64 / 1e9,
                    r.closed
                ),
                path,
                offset: None,
                frame: Some(r.frame),
            });
        }
    }
}
