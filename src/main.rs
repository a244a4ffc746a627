//! The `upledger` binary: everything lives in the library; see `upledger::cli`.

fn main() -> std::process::ExitCode {
    tune_malloc();
    upledger::cli::main()
}

/// glibc gives every thread that allocates its own malloc arena (up to 8 per core), and each
/// keeps the high-water mark of what it once held. A daemon whose checks run on a few worker
/// and blocking threads then carries several arenas of freed memory. Two arenas keep the
/// resident size of 10,000 probes several MiB lower at no measurable CPU cost.
///
/// glibc also raises its mmap threshold to the size of every large block freed (up to
/// 32 MiB), so after one big `/metrics` body or month computation, blocks that size come from
/// the heap and their pages stay resident when freed. A fixed threshold keeps large blocks in
/// their own mappings, returned whole on free: a few syscalls per scrape, MiBs less resident.
///
/// And glibc returns the free top of a heap to the system as soon as it exceeds 128 KiB, so
/// the memory a burst of checks uses is given back after every burst and faulted in again
/// for the next: 2.7 page faults per HTTP check at 1,000 checks/s. A higher trim threshold
/// keeps it; the daemon trims by itself after its rare big allocations (`daemon::memory`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    // `MALLOC_ARENA_MAX` in the environment still wins: glibc reads it at the first malloc,
    // which has already happened, so only set the limit when the user did not.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only adjusts allocator parameters; M_ARENA_MAX with a positive value
        // is always valid, and the call happens before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above; 128 KiB is glibc's own starting value, made fixed.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        }
    }
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
        // SAFETY: as above; any threshold is valid.
        unsafe {
            libc::mallopt(libc::M_TRIM_THRESHOLD, 4 * 1024 * 1024);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
