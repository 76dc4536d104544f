//! Demo scenario: percpu_ref on I/O contexts against a shared atomic refcount.
//!
//! From the aio change that first used percpu_ref (`kioctx->users`): an I/O-context table in an
//! RCU list. Every request looks its context up under `rcu::read`, takes a reference with
//! `tryget_live`, leaves the read-side section, and may block (a quiescent point) before it
//! completes and drops the reference, so only the reference keeps the context alive. Core 0 also
//! destroys contexts as it goes, as `io_destroy` does: unlink from the list, kill the reference;
//! the release callback marks the context released and frees it after a grace period (aio's
//! `free_ioctx` through RCU work). A request that finds its context released while holding a
//! reference is counted as a violation: there must be none.
//!
//! The same workload runs twice: with a percpu_ref, and with the pre-percpu_ref scheme, a shared
//! atomic count plus a `dead` flag (aio's old `atomic_t users` / `ctx->dead`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::{self, AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::{Mode, PercpuObj};
use quiescent::{arch, MAX_CPUS};

/// Context slots in the table.
const SLOTS: u64 = 8;
/// Run time of each variant, in ms of counter time.
const RUN_MS: u64 = 300;
/// Core 0 destroys and re-creates a context this often (µs of counter time).
const DESTROY_EVERY_US: u64 = 500;
/// Every this many requests, the request "blocks" while holding its reference.
const BLOCK_EVERY: u64 = 16;

/// The variant's name in the figures.
fn name(mode: Mode) -> &'static str {
    match mode {
        Mode::Percpu => "percpu_ref",
        Mode::Atomic => "shared atomic",
    }
}

/// An I/O context (aio's `kioctx`), owned by its reference count (`PercpuObj`).
struct IoCtx {
    /// Set by the release callback; a request holding a reference must never see it set.
    released: AtomicBool,
    stats: Arc<Stats>,
}

impl Drop for IoCtx {
    fn drop(&mut self) {
        self.stats.freed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A context in the table.
struct Entry {
    slot: u64,
    io: PercpuObj<IoCtx>,
}

/// Counters of one run.
#[derive(Default)]
struct Stats {
    created: AtomicU64,
    destroyed: AtomicU64,
    released: AtomicU64,
    freed: AtomicU64,
    violations: AtomicU64,
    not_found: AtomicU64,
}

/// Creates a context whose release marks it released; `PercpuObj` frees it a grace period
/// later (lookups that found it in the list before it was unlinked may still look at it).
fn create(mode: Mode, stats: &Arc<Stats>) -> PercpuObj<IoCtx> {
    let s2 = stats.clone();
    let io = IoCtx { released: AtomicBool::new(false), stats: stats.clone() };
    let io = PercpuObj::with_release(io, mode, move |io: &IoCtx| {
        io.released.store(true, Ordering::Release);
        s2.released.fetch_add(1, Ordering::Relaxed);
    })
    .expect("a reference count for an I/O context");
    stats.created.fetch_add(1, Ordering::Relaxed);
    io
}

/// Unlinks the context of `slot` (other than `keep`) and kills its count (aio's `kill_ioctx`).
fn destroy(ctx: &AtomicCtx, table: &RcuList<Entry>, stats: &Stats, slot: u64, keep: Option<&PercpuObj<IoCtx>>) {
    if let Some(e) = table.remove(|e| e.slot == slot && !keep.is_some_and(|k| PercpuObj::ptr_eq(k, &e.io))) {
        e.val().io.kill(ctx);
        e.free_rcu();
        stats.destroyed.fetch_add(1, Ordering::Relaxed);
    }
}

fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// One request: look up, take a reference, (maybe) block, check, drop the reference.
#[inline(always)]
fn request(ctx: &mut Ctx, table: &RcuList<Entry>, stats: &Stats, slot: u64, block: bool) -> bool {
    let found = {
        let g = rcu::read(ctx);
        table.iter(&g).find(|e| e.slot == slot).and_then(|e| e.io.tryget_live(&g))
    };
    let Some(io) = found else {
        stats.not_found.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    if block {
        // The request waits for I/O: a quiescent point. From here on only the reference keeps
        // the context alive.
        rcu::rcu_quiescent_state(ctx);
    }
    if io.released.load(Ordering::Acquire) {
        stats.violations.fetch_add(1, Ordering::Relaxed);
    }
    io.put(ctx);
    true
}

struct Run {
    per_core: Vec<u64>,
    secs: f64,
    stats: Arc<Stats>,
}

fn workload(ctx: &mut Ctx, mode: Mode) -> Run {
    let stats = Arc::new(Stats::default());
    let table: Arc<RcuList<Entry>> = Arc::new(RcuList::new());
    for slot in 0..SLOTS {
        table.add_head(Entry { slot, io: create(mode, &stats) });
    }
    let start = Arc::new(AtomicU64::new(0));
    let (t2, s2, st2) = (table.clone(), stats.clone(), start.clone());
    let t0 = arch::counter();
    start.store(t0, Ordering::Relaxed);
    let per_core = smp::on_each_cpu(ctx, move |cpu, ctx| {
        let (table, stats) = (&*t2, &*s2);
        let s2 = &s2;
        let t0 = st2.load(Ordering::Relaxed);
        let limit = arch::counter_freq() * RUN_MS / 1000;
        let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (cpu as u64 + 1);
        let mut done = 0u64;
        let mut i = 0u64;
        let destroy_ticks = arch::counter_freq() * DESTROY_EVERY_US / 1_000_000;
        let mut last_destroy = t0;
        while arch::counter().wrapping_sub(t0) < limit {
            for _ in 0..BLOCK_EVERY {
                i += 1;
                let slot = next(&mut x) % SLOTS;
                if request(ctx, table, stats, slot, i.is_multiple_of(BLOCK_EVERY)) {
                    done += 1;
                }
                if cpu == 0 && arch::counter().wrapping_sub(last_destroy) >= destroy_ticks {
                    last_destroy = arch::counter();
                    // io_destroy + io_setup: replace the context of a random slot.
                    let victim = next(&mut x) % SLOTS;
                    // The new context goes in first (lookups find the head-most match), so the
                    // slot is never empty.
                    let fresh = create(mode, s2);
                    table.add_head(Entry { slot: victim, io: fresh.clone() });
                    destroy(ctx, table, stats, victim, Some(&fresh));
                }
            }
            // Between batches, like an idle loop between work items (runs core 0's callbacks).
            rcu::rcu_quiescent_state(ctx);
        }
        done
    });
    let secs = arch::ticks_to_ns(arch::counter() - t0) as f64 / 1e9;
    // Tear down: destroy every context, then wait for all releases and frees.
    for slot in 0..SLOTS {
        destroy(ctx, &table, &stats, slot, None);
    }
    let t1 = arch::counter();
    while stats.freed.load(Ordering::Relaxed) < stats.created.load(Ordering::Relaxed)
        && arch::ticks_to_ns(arch::counter() - t1) < 2_000_000_000
    {
        rcu::rcu_barrier(ctx);
    }
    Run { per_core, secs, stats }
}

fn rate(r: &Run) -> u64 {
    (r.per_core.iter().sum::<u64>() as f64 / r.secs.max(1e-9)) as u64
}

fn mode() -> &'static str {
    match quiescent::board::bootarg("bench-mode") {
        Some("icount") => "icount",
        _ => "mttcg",
    }
}

/// Runs the scenario and prints its figures.
pub fn run(ctx: &mut Ctx) {
    let t0 = arch::counter();
    let m = mode();
    defmt::println!(
        "percpu_ref: I/O-context table ({} contexts in an RcuList), every request takes a reference (tryget_live), core 0 destroys and replaces one every {} us, {} ms per variant on {} cores (mode={=str})",
        SLOTS, DESTROY_EVERY_US, RUN_MS, smp::num_online(), m
    );
    let p = workload(ctx, Mode::Percpu);
    let a = workload(ctx, Mode::Atomic);
    for c in 0..p.per_core.len().min(MAX_CPUS) {
        defmt::println!(
            "  core {}: {} requests with percpu_ref, {} with a shared atomic",
            c,
            p.per_core[c],
            a.per_core[c]
        );
    }
    for (name, r) in [(name(Mode::Percpu), &p), (name(Mode::Atomic), &a)] {
        let s = &r.stats;
        defmt::println!(
            "  {=str}: contexts created {}, destroyed {}, released {}, freed {}; requests on a released context: {}; lookups that found no live context: {}",
            name,
            s.created.load(Ordering::Relaxed),
            s.destroyed.load(Ordering::Relaxed),
            s.released.load(Ordering::Relaxed),
            s.freed.load(Ordering::Relaxed),
            s.violations.load(Ordering::Relaxed),
            s.not_found.load(Ordering::Relaxed)
        );
    }
    let (rp, ra) = (rate(&p), rate(&a));
    defmt::println!(
        "  throughput: percpu_ref {} requests/s, shared atomic {} requests/s, ratio {}.{}x (counter time, mode={=str})",
        rp,
        ra,
        rp * 10 / ra.max(1) / 10,
        rp * 10 / ra.max(1) % 10,
        m
    );
    let ok = [&p, &a].iter().all(|r| {
        let s = &r.stats;
        s.violations.load(Ordering::Relaxed) == 0
            && s.released.load(Ordering::Relaxed) == s.created.load(Ordering::Relaxed)
    });
    defmt::println!(
        "  no request ran on a released context, every context was released exactly once: {=bool} ({} ms)",
        ok,
        arch::ticks_to_ns(arch::counter() - t0) / 1_000_000
    );
}
