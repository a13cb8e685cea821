//! Keeping a backup's or restore's resident memory flat.
//!
//! The pipeline holds a bounded number of buffers of a MiB or more (gzip members, upload and
//! download parts), allocated on one thread and freed on another. glibc's allocator raises its
//! mmap threshold to the size of the largest block freed (up to 32 MiB), after which such
//! buffers come from per-thread heaps that keep what is freed: resident memory then grew with
//! the amount of data (62-66 MiB for 256 MiB to 1 GiB through S3) although the live heap stays
//! under 40 MiB. A fixed threshold keeps every buffer of 128 KiB or more in its own mapping,
//! returned to the system when freed.

/// Allocations of at least this size get their own mapping.
pub const MMAP_THRESHOLD: usize = 128 << 10;

/// Makes glibc's allocator return large freed buffers to the system (see the module
/// documentation). Process-wide and idempotent; the `midplane backup` commands call it, and a
/// service running backups in its own process should call it once at start. Does nothing on
/// other C libraries.
#[allow(unsafe_code)] // mallopt, see SAFETY below
pub fn bound_allocator_growth() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Fixing M_MMAP_THRESHOLD also turns glibc's dynamic adjustment of it off.
        // SAFETY: mallopt only changes allocator tuning parameters; it is safe to call at any
        // time from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        }
    }
}
