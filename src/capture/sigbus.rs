//! A mapped capture file that shrinks while it is read: a clear error, not a crash.
//!
//! The read-ahead thread maps regular files ([`super::ahead::Window`]). If another process
//! truncates the file meanwhile, reading the bytes cut off raises SIGBUS, whose default
//! action kills the process with no word on what happened. [`watch`] installs a handler
//! (once per process) that writes one line naming the file most recently mapped and what
//! to do, and exits with status 1 (a runtime error, as an unreadable file). Nothing else
//! can be done from a signal handler: the report cannot be finished, since the bytes the
//! analysis was in the middle of no longer exist.
//!
//! Invariants: the handler only reads atomics and calls `write` and `_exit`
//! (async-signal-safe). The line lives in a fixed static buffer of atomic bytes, so
//! naming a file allocates nothing, and a line being rewritten while the handler reads it
//! can at worst come out garbled, never undefined. When several files are read, the line
//! names the last one mapped: a file still held by a later stage (the stream thread keeps
//! a few windows) and cut short would be misnamed.

use std::path::Path;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Once;

/// Room for the line; a longer one is cut (it still ends in a newline).
const ROOM: usize = 4096;

static LINE: [AtomicU8; ROOM] = [const { AtomicU8::new(0) }; ROOM];
static LEN: AtomicUsize = AtomicUsize::new(0);

/// Said when no file was named yet (cannot happen: `watch` names one before mapping).
const UNNAMED: &[u8] = b"netlens: a capture file was cut short while it was being read (SIGBUS); read a copy that is not being changed, or run again with --no-mmap\n";

/// Names `path` as the file being mapped, and makes sure the handler is installed.
pub fn watch(path: &Path) {
    let line = format!(
        "netlens: {} was cut short while it was being read (its mapped bytes vanished: SIGBUS); \
         nothing after this can be reported. Read a copy that is not being changed, or run \
         again with --no-mmap (netlens then reads the file instead of mapping it)\n",
        path.display()
    );
    let mut bytes = line.into_bytes();
    if bytes.len() > ROOM {
        bytes.truncate(ROOM);
        bytes[ROOM - 1] = b'\n';
    }
    LEN.store(0, Ordering::Release);
    for (cell, &b) in LINE.iter().zip(&bytes) {
        cell.store(b, Ordering::Relaxed);
    }
    LEN.store(bytes.len(), Ordering::Release);
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed `sigaction` with an empty mask and a plain handler is valid;
        // the handler is async-signal-safe (see the module invariants).
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&raw mut act.sa_mask);
            libc::sigaction(libc::SIGBUS, &raw const act, std::ptr::null_mut());
        }
    });
}

extern "C" fn on_sigbus(_signal: libc::c_int) {
    let len = LEN.load(Ordering::Acquire);
    let mut line = [0u8; ROOM];
    for (b, cell) in line.iter_mut().zip(&LINE).take(len) {
        *b = cell.load(Ordering::Relaxed);
    }
    let line: &[u8] = if len == 0 { UNNAMED } else { &line[..len] };
    // SAFETY: writing a valid buffer to fd 2 and exiting without unwinding or running
    // destructors are both async-signal-safe.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> String {
        let len = LEN.load(Ordering::Acquire);
        let bytes: Vec<u8> = LINE
            .iter()
            .take(len)
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn the_line_names_the_last_file_and_fits_its_buffer() {
        watch(Path::new("/captures/first.pcap"));
        watch(Path::new("/captures/second.pcap"));
        let line = current();
        assert!(
            line.starts_with("netlens: /captures/second.pcap was cut short"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "run again with --no-mmap (netlens then reads the file instead of mapping it)\n"
            ),
            "{line}"
        );
        let long = format!("/{}", "d".repeat(5000));
        watch(Path::new(&long));
        let line = current();
        assert_eq!(line.len(), ROOM);
        assert!(line.ends_with('\n'));
    }
}
