//! Hints to the CPU that change no result: asking for memory before it is read.
//!
//! Why: the pipeline's stages run on different cores, so much of what a stage reads was
//! written on another core a moment before (a read-ahead block filled by the reader
//! thread, a batch of items filled by the pipeline thread for the stream thread). Each
//! first read of such a cache line waits for the other core; perf put over half of the
//! record reader's samples, and half of the MAC table's, on such first loads. Asking for
//! the lines a little ahead lets that wait overlap the work on what comes before.
//!
//! Invariant: these functions only hint; on targets without a prefetch instruction they
//! do nothing.

/// Asks for the cache line holding the start of `r`.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    prefetch_ptr((r as *const T).cast());
}

/// Asks for the cache line holding `bytes[at]`, if there is such a byte.
#[inline(always)]
pub fn prefetch_at(bytes: &[u8], at: usize) {
    if let Some(b) = bytes.get(at) {
        prefetch_ptr(b);
    }
}

#[inline(always)]
fn prefetch_ptr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and reads nothing into the program; callers pass
    // the address of a live value anyway. SSE is part of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
