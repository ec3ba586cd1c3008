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
//! Invariants: the handler only calls `write` and `_exit` (async-signal-safe) and reads
//! one atomic pointer to a message that is never freed; one message is kept per mapped
//! file (about 300 bytes and the path; at most 65,535 input files).

use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

/// Said when no file was named yet (cannot happen: `watch` names one before mapping).
const UNNAMED: &[u8] = b"netlens: a capture file was cut short while it was being read (SIGBUS); read a copy that is not being changed\n";

/// The line for the file most recently mapped: a leaked `&'static [u8]`.
static MESSAGE: AtomicPtr<&'static [u8]> = AtomicPtr::new(std::ptr::null_mut());

/// Names `path` as the file being mapped, and makes sure the handler is installed.
pub fn watch(path: &Path) {
    let line = format!(
        "netlens: {} was cut short while it was being read (its mapped bytes vanished: SIGBUS); \
         nothing after this can be reported. Read a copy that is not being changed, or read \
         it through standard input: netlens read - < {}\n",
        path.display(),
        path.display()
    );
    let cell: &'static &'static [u8] = Box::leak(Box::new(&*Box::leak(
        line.into_boxed_str().into_boxed_bytes(),
    )));
    MESSAGE.store(std::ptr::from_ref(cell).cast_mut(), Ordering::Release);
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
    let cell = MESSAGE.load(Ordering::Acquire);
    // SAFETY: a non-null pointer came from `Box::leak` in `watch` and is never freed.
    let line: &[u8] = if cell.is_null() {
        UNNAMED
    } else {
        unsafe { *cell }
    };
    // SAFETY: writing a valid buffer to fd 2 and exiting without unwinding or running
    // destructors are both async-signal-safe.
    unsafe {
        libc::write(2, line.as_ptr().cast(), line.len());
        libc::_exit(1);
    }
}
