//! Handing memory the allocator no longer uses back to the system.
//!
//! Loading a configuration is the daemon's one burst of allocation: parsing 10,000 probes
//! builds a TOML document and diagnostics many times the size of what stays. glibc returns
//! freed memory only from the top of the heap by itself; what was freed below live data
//! stays resident, so the daemon would carry its start-up high-water mark for good. After a
//! load, `malloc_trim` releases those free pages (several MiB with 10,000 probes); so does the
//! status page's figure refresh after its month computation.

/// Releases free heap pages to the system (glibc only; a no-op elsewhere).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns free memory of the allocator's own arenas to the
    // system; it touches no live allocation and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Releases free heap pages to the system (glibc only; a no-op elsewhere).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
