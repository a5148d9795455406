//! The process heap, warmed before a measurement: memory written once and handed back
//! to the allocator, so that what the run allocates later is already backed by the
//! kernel (and the hypervisor) instead of faulting in while requests are timed.
//!
//! Why: a page's first touch is the kernel's to back, and with transparent huge pages
//! it zeroes 2 MiB at once. On a virtual machine whose memory the host backs lazily,
//! one such fault took 7 ms (64 MiB in 220 ms, then 9 ms once backed). A client
//! whose heap grows with the requests in flight, or a mock with its streams, stalled
//! that long every few MiB of growth: the mock's first tokens came up to 17 ms late
//! and the client read batches of them 5–12 ms late, the whole of the ramp-up's
//! latency tail. Warming is a leaf: it knows nothing of what it is warmed for.

use std::time::{Duration, Instant};

/// The sizes of the blocks written, and the share of the bytes each gets. An
/// allocator keeps blocks of different sizes on different pages, and may keep those
/// pages apart (mimalloc 3 reserves each 32 MiB of its arenas for one page size once
/// used: a page freed there serves only that size again). So the heap is warmed in the
/// sizes a run allocates: most of it small (tasks, headers, read buffers, up to
/// mimalloc's 10 KiB small-object bound), the rest in medium blocks (grown vectors and
/// buffers). Warming in 64 KiB blocks alone left a mock's streams faulting as before.
const BLOCKS: [(usize, u64); 2] = [(8 * 1024, 3), (64 * 1024, 1)];

/// A page of every platform llmbench runs on, or a multiple of it: one write in each
/// is enough to make the kernel back it.
const PAGE: usize = 4096;

/// Writes `bytes` of heap (in whole blocks) through the global allocator, one byte per
/// page, then frees it all for the run to reuse. Returns how long it took: the cost of
/// every first touch, paid before the measurement.
pub fn warm(bytes: u64) -> Duration {
    let started = Instant::now();
    let shares: u64 = BLOCKS.iter().map(|(_, share)| share).sum();
    let mut held: Vec<Vec<u8>> = Vec::new();
    // Held until all are written: a block freed at once would be handed straight
    // back for the next, and only one block's pages would be touched.
    for (size, share) in BLOCKS {
        let count = (bytes / shares * share).div_ceil(size as u64);
        for _ in 0..count {
            let Some(block) = touched_block(size) else {
                break;
            };
            held.push(block);
        }
    }
    drop(held);
    started.elapsed()
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

    /// Resident memory of this process, from /proc (Linux only).
    #[cfg(target_os = "linux")]
    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * PAGE as u64
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_written_block_is_resident() {
        let before = resident_bytes();
        let blocks: Vec<Vec<u8>> = (0..64).map(|_| touched_block(64 * 1024).unwrap()).collect();
        // 4 MiB written; resident memory grows by at least most of it (other tests'
        // threads may free some meanwhile, hence the slack).
        let grown = resident_bytes().saturating_sub(before);
        assert!(
            grown >= 3 * 1024 * 1024,
            "{grown} bytes became resident for 4 MiB written"
        );
        assert!(blocks.iter().all(|b| b.capacity() >= 64 * 1024));
    }
}
