//! Demo scenario: the block-device change that introduced percpu-rwsem.
//!
//! A "block device" whose block size is protected by a reader-writer lock: every core performs
//! simulated reads, writes and mmaps under `down_read` (each checks that the block size does
//! not change under it), while core 0 now and then calls `set_blocksize` under `down_write`,
//! which refuses with a named error while the device is mapped. The same workload runs with the
//! percpu-rwsem, the classic rw_semaphore and `spin::RwLock`.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use quiescent::smp::{self, Ctx};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::{RwSemaphore, SpinRw};
use quiescent::{arch, rcu};

const RUN_MS: u64 = 500;

/// Why `set_blocksize` refused.
#[derive(Debug, defmt::Format, PartialEq, Eq)]
pub enum BlkError {
    /// The device is mapped: its block size cannot change (Linux returns EBUSY).
    DeviceMapped,
}

/// The device: its block size, how many mappings exist, and its lock.
pub struct BlockDev<L: RwSemaphore> {
    lock: L,
    blocksize: AtomicU32,
    mapped: AtomicU32,
}

impl<L: RwSemaphore> BlockDev<L> {
    /// One simulated operation under the read lock: a read or write of one block (kind 0, 1),
    /// or mmap/munmap of the device (kind 2, toggling this core's mapping). Returns false if
    /// the block size changed under it. Releases with `unlock`, the fast path (a drop would
    /// take percpu-rwsem's slow path).
    fn io(&self, ctx: &mut Ctx, kind: u64, x: &mut u64, mapping: &mut bool) -> bool {
        let g = self.lock.read(ctx);
        let bs = self.blocksize.load(Ordering::Relaxed);
        if kind == 2 {
            if *mapping {
                self.mapped.fetch_sub(1, Ordering::Relaxed);
            } else {
                self.mapped.fetch_add(1, Ordering::Relaxed);
            }
            *mapping = !*mapping;
        } else {
            for _ in 0..(bs / 512) {
                *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            }
            core::hint::black_box(*x);
        }
        let same = self.blocksize.load(Ordering::Relaxed) == bs;
        g.unlock(ctx);
        same
    }

    /// Changes the block size under the write lock, unless the device is mapped.
    fn set_blocksize(&self, ctx: &mut Ctx, bs: u32) -> Result<(), BlkError> {
        let _g = self.lock.write(ctx);
        self.lock.assert_write_held();
        if self.mapped.load(Ordering::Relaxed) != 0 {
            return Err(BlkError::DeviceMapped);
        }
        self.blocksize.store(bs, Ordering::Relaxed);
        Ok(())
    }
}

struct Figures {
    ops: Vec<u64>,
    secs: f64,
    writes: u64,
    refused: u64,
    write_ns: u64,
    torn: u64,
}

fn workload<L: RwSemaphore + 'static>(ctx: &mut Ctx, lock: L) -> Figures {
    let dev = Arc::new(BlockDev { lock, blocksize: AtomicU32::new(4096), mapped: AtomicU32::new(0) });
    let stop = Arc::new(AtomicBool::new(false));
    let cpus: Vec<usize> = crate::scenario_cores();
    let ops: Arc<Vec<AtomicU64>> = Arc::new((0..quiescent::MAX_CPUS).map(|_| AtomicU64::new(0)).collect());
    let torn = Arc::new(AtomicU64::new(0));
    let pending = Arc::new(AtomicU64::new(cpus.len() as u64 - 1));
    for &c in cpus.iter().filter(|&&c| c != 0) {
        let (d, s, o, t, p) = (dev.clone(), stop.clone(), ops.clone(), torn.clone(), pending.clone());
        smp::queue_work(c, move |ctx| {
            let (mut n, mut x, mut m) = (0u64, c as u64 + 1, false);
            while !s.load(Ordering::Relaxed) {
                // Mostly reads and writes; a short-lived mapping (mmap, one op, munmap) now and then.
                let kind = if n % 512 >= 509 && n % 512 != 510 { 2 } else { n % 2 };
                if !d.io(ctx, kind, &mut x, &mut m) {
                    t.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                if n % 32 == 0 {
                    rcu::rcu_quiescent_state(ctx);
                }
            }
            if m {
                d.io(ctx, 2, &mut x, &mut m);
            }
            o[c].store(n, Ordering::Relaxed);
            p.fetch_sub(1, Ordering::Release);
        });
    }
    // Core 0: I/O too, and a set_blocksize every 100 ms.
    let t0 = arch::counter();
    let (mut n, mut x, mut writes, mut refused, mut write_ns, mut m) = (0u64, 1u64, 0u64, 0u64, 0u64, false);
    let mut next_write = 0;
    loop {
        let ms = arch::ticks_to_ns(arch::counter() - t0) / 1_000_000;
        if ms >= RUN_MS {
            break;
        }
        if ms >= next_write {
            next_write = ms + 100;
            let w0 = arch::counter();
            match dev.set_blocksize(ctx, if writes % 2 == 0 { 1024 } else { 4096 }) {
                Ok(()) => writes += 1,
                Err(BlkError::DeviceMapped) => refused += 1,
            }
            write_ns += arch::ticks_to_ns(arch::counter() - w0);
        }
        if !dev.io(ctx, n % 2, &mut x, &mut m) {
            torn.fetch_add(1, Ordering::Relaxed);
        }
        n += 1;
        if n % 32 == 0 {
            rcu::rcu_quiescent_state(ctx);
        }
    }
    let secs = arch::ticks_to_ns(arch::counter() - t0) as f64 / 1e9;
    stop.store(true, Ordering::Release);
    ops[0].store(n, Ordering::Relaxed);
    rcu::wait_quiescent(ctx, || pending.load(Ordering::Acquire) != 0);
    Figures {
        ops: cpus.iter().map(|&c| ops[c].load(Ordering::Relaxed)).collect(),
        secs,
        writes,
        refused,
        write_ns: write_ns / (writes + refused).max(1),
        torn: torn.load(Ordering::Relaxed),
    }
}

fn report(name: &str, f: &Figures) -> f64 {
    let total: u64 = f.ops.iter().sum();
    defmt::println!(
        "  {=str}: {} ops/s in all, set_blocksize {} done + {} refused (device mapped), writer avg {} us, block size changed under an op: {}",
        name, (total as f64 / f.secs) as u64, f.writes, f.refused, f.write_ns / 1000, f.torn
    );
    for (c, n) in f.ops.iter().enumerate() {
        defmt::println!("    core {}: {} ops/s", c, (*n as f64 / f.secs) as u64);
    }
    assert_eq!(f.torn, 0, "the block size changed under a reader");
    total as f64 / f.secs
}

/// Runs the scenario and prints its figures.
pub fn run(ctx: &mut Ctx) {
    let dev = BlockDev {
        lock: PercpuRwSem::new().expect("per-cpu counts"),
        blocksize: AtomicU32::new(4096),
        mapped: AtomicU32::new(0),
    };
    let (mut x, mut m) = (1, false);
    dev.io(ctx, 2, &mut x, &mut m); // mmap
    defmt::println!("rwsem: set_blocksize(1024) while the device is mapped: {}", dev.set_blocksize(ctx, 1024));
    dev.io(ctx, 2, &mut x, &mut m); // munmap
    defmt::println!("rwsem: set_blocksize(1024) after munmap: {}", dev.set_blocksize(ctx, 1024));
    defmt::println!("rwsem: block device, reads/writes/mmaps under down_read on every core, set_blocksize on core 0 every 100 ms, {} ms each (mode=mttcg)", RUN_MS);
    let p = report("percpu-rwsem", &workload(ctx, PercpuRwSem::new().expect("per-cpu counts")));
    let c = report("rw_semaphore", &workload(ctx, RwSem::new()));
    let s = report("spin::RwLock", &workload(ctx, SpinRw::new()));
    defmt::println!(
        "  throughput, same run: percpu-rwsem / rw_semaphore = {=f64}x, percpu-rwsem / spin::RwLock = {=f64}x",
        ((p / c.max(1.0)) * 100.0) as u64 as f64 / 100.0,
        ((p / s.max(1.0)) * 100.0) as u64 as f64 / 100.0
    );
}
