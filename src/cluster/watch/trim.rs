//! Keeps the process's memory close to what the cluster view holds, on glibc.
//!
//! Decoding a listing allocates and frees much more than the cache keeps (list pages of a few
//! MiB, spec text, index growth), spread over the worker threads' arenas. Two glibc habits would
//! keep that memory mapped for as long as the process runs:
//! - freeing a large block raises the mmap and trim thresholds to its size (up to 32 and 64 MiB),
//!   so later list pages come from the arenas instead of their own mappings, and the top of a
//!   thread's heap is no longer given back;
//! - free memory inside an arena is reused but not returned.
//!
//! [`fix_thresholds`] pins both thresholds at glibc's defaults (128 KiB), so large transient
//! buffers stay separate mappings that are unmapped when freed; [`release_free_memory`]
//! (`malloc_trim(0)`) returns the free pages of every arena once a large listing is cached.
//! BENCHMARKS.md, "Webhook process memory", has the figures.
#![allow(unsafe_code)]

/// Listings smaller than this leave too little behind to be worth walking the arenas for.
pub const MIN_OBJECTS: usize = 1_000;

/// Pins glibc's mmap and trim thresholds at their defaults; once per process, before the first
/// watch starts. A no-op outside glibc.
pub fn fix_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            const DEFAULT: libc::c_int = 128 * 1024;
            // SAFETY: `mallopt` has no preconditions; it takes the allocator's lock itself and
            // changes only when memory is mapped or returned, never memory in use.
            let ok = unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, DEFAULT) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, DEFAULT) == 1
            };
            tracing::debug!(ok, "glibc mmap and trim thresholds pinned");
        });
    }
}

/// Returns free heap pages to the system; a no-op outside glibc.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: `malloc_trim` has no preconditions: it takes each arena's lock itself and only
        // releases memory that no allocation holds.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released != 0, took = ?started.elapsed(), "heap trimmed");
    }
}
