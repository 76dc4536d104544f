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

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::{self, AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::{arch, MAX_CPUS};

/// Context slots in the table.
const SLOTS: u64 = 8;
/// Run time of each variant, in ms of counter time.
const RUN_MS: u64 = 300;
/// Core 0 destroys and re-creates a context this often (µs of counter time).
const DESTROY_EVERY_US: u64 = 500;
/// Every this many requests, the request "blocks" while holding its reference.
const BLOCK_EVERY: u64 = 16;

/// A context's reference count: what a request takes and drops.
trait Users: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// A live count holding the initial reference; `release` runs when it reaches zero after kill.
    fn new(release: impl Fn() + Send + Sync + 'static) -> Self;
    fn tryget_live(&self, ctx: &AtomicCtx) -> bool;
    fn put(&self, ctx: &AtomicCtx);
    fn kill(&self, ctx: &AtomicCtx);
}

impl Users for Arc<PercpuRef> {
    const NAME: &'static str = "percpu_ref";
    fn new(release: impl Fn() + Send + Sync + 'static) -> Self {
        PercpuRef::init(move |_| release(), Flags::NONE).expect("percpu_ref for an I/O context")
    }
    #[inline(always)]
    fn tryget_live(&self, ctx: &AtomicCtx) -> bool {
        PercpuRef::tryget_live(self, ctx)
    }
    #[inline(always)]
    fn put(&self, ctx: &AtomicCtx) {
        PercpuRef::put(self, ctx)
    }
    fn kill(&self, ctx: &AtomicCtx) {
        PercpuRef::kill(self, ctx)
    }
}

/// aio before percpu_ref: one shared atomic count and a `dead` flag.
struct AtomicUsers {
    count: AtomicU64,
    dead: AtomicBool,
    release: Box<dyn Fn() + Send + Sync>,
}

impl Users for AtomicUsers {
    const NAME: &'static str = "shared atomic";
    fn new(release: impl Fn() + Send + Sync + 'static) -> Self {
        AtomicUsers { count: AtomicU64::new(1), dead: AtomicBool::new(false), release: Box::new(release) }
    }
    #[inline(always)]
    fn tryget_live(&self, _ctx: &AtomicCtx) -> bool {
        if self.dead.load(Ordering::Relaxed) {
            return false;
        }
        let mut v = self.count.load(Ordering::Relaxed);
        while v != 0 {
            // Acquire on success, as atomic_inc_not_zero.
            match self.count.compare_exchange_weak(v, v + 1, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(x) => v = x,
            }
        }
        false
    }
    #[inline(always)]
    fn put(&self, _ctx: &AtomicCtx) {
        // Release: this holder's accesses before the decrement; Acquire: release() after all.
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            (self.release)();
        }
    }
    fn kill(&self, ctx: &AtomicCtx) {
        self.dead.store(true, Ordering::Relaxed);
        self.put(ctx);
    }
}

/// An I/O context (aio's `kioctx`).
struct IoCtx<U> {
    users: U,
    /// Set by the release callback; a request holding a reference must never see it set.
    released: AtomicBool,
}

/// A context pointer in the table.
struct Entry<U> {
    slot: u64,
    ctx: *const IoCtx<U>,
}

// SAFETY: the pointee is shared by design (its fields are atomics or Sync counts); it is freed
// only by the release path after a grace period, never through the entry.
unsafe impl<U: Send + Sync> Send for Entry<U> {}
// SAFETY: as above.
unsafe impl<U: Send + Sync> Sync for Entry<U> {}

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

/// Creates a context whose release marks it released and frees it after a grace
/// period (lookups that found it in the list before it was unlinked may still read it).
fn create<U: Users>(stats: &Arc<Stats>) -> *const IoCtx<U> {
    let cell = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (cell.clone(), stats.clone());
    let users = U::new(move || {
        // Acquire pairs with the Release store below: the context's address is published
        // before the context is in the list, hence before anyone can kill it.
        let p = c2.load(Ordering::Acquire) as *mut IoCtx<U>;
        // SAFETY: `p` is the live context this count belongs to: it is freed only below,
        // after this release (which runs once).
        unsafe { (*p).released.store(true, Ordering::Release) };
        s2.released.fetch_add(1, Ordering::Relaxed);
        let (addr, s3) = (p as usize, s2.clone());
        rcu::call_rcu(move |_| {
            // SAFETY: released, so no request holds a reference, and a grace period has
            // passed since, so no lookup or put still looks at it; allocated by Box in create.
            drop(unsafe { Box::from_raw(addr as *mut IoCtx<U>) });
            s3.freed.fetch_add(1, Ordering::Relaxed);
        });
    });
    let p = Box::into_raw(Box::new(IoCtx { users, released: AtomicBool::new(false) }));
    cell.store(p as usize, Ordering::Release);
    stats.created.fetch_add(1, Ordering::Relaxed);
    p
}

/// Unlinks the context of `slot` (other than `keep`) and kills its count (aio's `kill_ioctx`).
fn destroy<U: Users>(ctx: &AtomicCtx, table: &RcuList<Entry<U>>, stats: &Stats, slot: u64, keep: *const IoCtx<U>) {
    if let Some(e) = table.remove(|e| e.slot == slot && e.ctx != keep) {
        // SAFETY: the context lives until its release, which cannot run before this kill.
        unsafe { (*e.val().ctx).users.kill(ctx) };
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
fn request<U: Users>(ctx: &mut Ctx, table: &RcuList<Entry<U>>, stats: &Stats, slot: u64, block: bool) -> bool {
    let found = {
        let g = rcu::read(ctx);
        let mut found = None;
        for e in table.iter(&g) {
            if e.slot == slot {
                // SAFETY: reached through the list inside a read-side section: the context is
                // freed only a grace period after its release, which comes after its unlink.
                if unsafe { (*e.ctx).users.tryget_live(&g) } {
                    found = Some(e.ctx);
                }
                break;
            }
        }
        found
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
    // SAFETY: this request holds a reference: the context is not released, so not freed.
    let c = unsafe { &*io };
    if c.released.load(Ordering::Acquire) {
        stats.violations.fetch_add(1, Ordering::Relaxed);
    }
    c.users.put(ctx);
    true
}

struct Run {
    per_core: Vec<u64>,
    secs: f64,
    stats: Arc<Stats>,
}

fn workload<U: Users>(ctx: &mut Ctx) -> Run {
    let stats = Arc::new(Stats::default());
    let table: Arc<RcuList<Entry<U>>> = Arc::new(RcuList::new());
    for slot in 0..SLOTS {
        table.add_head(Entry { slot, ctx: create::<U>(&stats) });
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
                    let fresh = create::<U>(s2);
                    table.add_head(Entry { slot: victim, ctx: fresh });
                    destroy(ctx, table, stats, victim, fresh);
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
        destroy(ctx, &table, &stats, slot, core::ptr::null());
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
    let p = workload::<Arc<PercpuRef>>(ctx);
    let a = workload::<AtomicUsers>(ctx);
    for c in 0..p.per_core.len().min(MAX_CPUS) {
        defmt::println!(
            "  core {}: {} requests with percpu_ref, {} with a shared atomic",
            c,
            p.per_core[c],
            a.per_core[c]
        );
    }
    for (name, r) in [(<Arc<PercpuRef> as Users>::NAME, &p), (AtomicUsers::NAME, &a)] {
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
