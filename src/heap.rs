//! The process heap, warmed before a measurement: memory written once and handed back
//! to the allocator, so that what the run allocates later is already backed by the
//! kernel (and the hypervisor) instead of faulting in while requests are timed.
//!
//! Why: a page's first touch is the kernel's to back, and with transparent huge pages
//! it zeroes 2 MiB at once. On a virtual machine whose memory the host backs lazily,
//! one such fault took up to 8 ms (64 MiB in 220 ms, then 9 ms once backed). A client
//! whose heap grows with the requests in flight, or a mock with its streams, stalled
//! that long every few MiB of growth: the mock's first tokens came up to 17 ms late
//! and the client read batches of them 5–12 ms late, the whole of the ramp-up's
//! latency tail. Warming is a leaf: it knows nothing of what it is warmed for, only
//! how much memory the process may still take, of which it uses a quarter at most.

use std::time::{Duration, Instant};

/// The sizes of the blocks written, and the share of the bytes each gets. An
/// allocator keeps blocks of different sizes on different pages, and may keep those
/// pages apart (mimalloc 3 reserves each 32 MiB of its arenas for one page size once
/// used: a page freed there serves only that size again). So the heap is warmed in the
/// sizes a run allocates: most of it small (tasks, headers, read buffers, up to
/// mimalloc's 10 KiB small-object bound), the rest in medium blocks (grown vectors and
/// buffers). Warming in 64 KiB blocks alone left a mock's streams faulting as before.
const BLOCKS: [(usize, u64); 2] = [(8 * 1024, 3), (64 * 1024, 1)];

/// A size that divides the page size of every platform llmbench runs on (4 KiB, or 16
/// or 64 KiB on some ARM kernels): one write every `PAGE` bytes touches every page.
const PAGE: usize = 4096;

/// What [`warm`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warmed {
    /// Bytes written (and freed for reuse).
    pub bytes: u64,
    pub took: Duration,
}

/// Writes `bytes` of heap (in whole blocks) through the global allocator, one byte per
/// page, then frees it all for the run to reuse; never more than a quarter of the
/// memory the process may still take ([`room`]), so that warming cannot be what runs
/// a container out of memory. The time it took is the cost of every first touch, paid
/// before the measurement.
pub fn warm(bytes: u64) -> Warmed {
    let started = Instant::now();
    let bytes = room().map_or(bytes, |room| bytes.min(room / 4));
    let shares: u64 = BLOCKS.iter().map(|(_, share)| share).sum();
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut written = 0;
    // Held until all are written: a block freed at once would be handed straight
    // back for the next, and only one block's pages would be touched.
    for (size, share) in BLOCKS {
        let count = (bytes / shares * share).div_ceil(size as u64);
        for _ in 0..count {
            let Some(block) = touched_block(size) else {
                break;
            };
            held.push(block);
            written += size as u64;
        }
    }
    drop(held);
    Warmed {
        bytes: written,
        took: started.elapsed(),
    }
}

/// The memory this process may still take: what the system has available, or less
/// where its cgroup (a container's limit) has less left. `None` where neither can be
/// read (outside Linux).
pub fn room() -> Option<u64> {
    let available = meminfo_kib("MemAvailable:").map(|kib| kib * 1024);
    let in_cgroup = cgroup_room();
    match (available, in_cgroup) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}

/// A `/proc/meminfo` line's figure, in KiB.
fn meminfo_kib(key: &str) -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// What the process's cgroup (v2) may still charge before its `memory.max`; `None`
/// without a limit ("max") or a cgroup v2 to read.
fn cgroup_room() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = std::path::Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let max: u64 = read("memory.max")?.trim().parse().ok()?;
    let current: u64 = read("memory.current")?.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// A block of `size` bytes, a zero written into each of its pages (a volatile write,
/// which the compiler may not drop as dead), or `None` when the allocator has no more.
fn touched_block(size: usize) -> Option<Vec<u8>> {
    let mut block: Vec<u8> = Vec::new();
    block.try_reserve_exact(size).ok()?;
    let start = block.as_mut_ptr();
    for offset in (0..size).step_by(PAGE) {
        // SAFETY: `offset < size <= capacity`, so the write stays inside the
        // allocation; a `u8` needs no alignment and any byte pattern is valid.
        unsafe { start.add(offset).write_volatile(0) };
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether every page of `block`'s capacity is resident, by `mincore`: a question
    /// about these pages alone, whatever other tests' threads allocate meanwhile.
    #[cfg(target_os = "linux")]
    fn resident(block: &[u8], size: usize) -> bool {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        let start = block.as_ptr() as usize;
        let first = start - start % page;
        let pages = (start + size - first).div_ceil(page);
        let mut flags = vec![0u8; pages];
        // SAFETY: the range is page-aligned and covers mapped memory (the block's own
        // allocation and the pages it shares), and `flags` has one byte per page.
        let ok = unsafe {
            libc::mincore(
                first as *mut libc::c_void,
                pages * page,
                flags.as_mut_ptr().cast(),
            )
        };
        ok == 0 && flags.iter().all(|f| f & 1 == 1)
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn every_page_of_a_written_block_is_resident() {
        for size in [8 * 1024, 64 * 1024] {
            let block = touched_block(size).unwrap();
            assert!(block.capacity() >= size);
            assert!(resident(&block, size), "a {size}-byte block not resident");
        }
    }

    #[test]
    fn warming_writes_whole_blocks_in_both_sizes_within_the_room() {
        // 1 MiB: three quarters in 8 KiB blocks (96), a quarter in 64 KiB ones (4).
        let warmed = warm(1 << 20);
        let asked = room().map_or(1 << 20, |room| (1u64 << 20).min(room / 4));
        assert_eq!(warmed.bytes, asked, "{warmed:?}");
        assert_eq!(warm(0).bytes, 0);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_room_is_known_on_linux() {
        assert!(room().is_some_and(|bytes| bytes > 0));
    }
}
