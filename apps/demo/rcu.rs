//! Demo scenario: RCU lockless lookup (aio's `lookup_ioctx()`) against `spin::RwLock`.
//!
//! An "I/O context" table: every other core looks up context IDs in an RCU list under
//! `rcu::read` (the read-mostly path), passing a quiescent state every few lookups as a
//! long-running work item must; core 0 sets up and destroys contexts (the update path, under the
//! list's spinlock, freeing through `call_rcu`). Each context is marked dead before it is freed,
//! and readers check the mark: a lookup that saw a freed context is counted as a violation.
//! The table's limits (which IDs a lookup may ask for) sit in an [`RcuCell`]: every lookup reads
//! them (one load), and core 0 replaces them every few updates, the old limits freed through
//! the cell's allocation-free `kfree_rcu` path.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use quiescent::arch;
use quiescent::rcu::{self, cell::RcuCell, list::RcuList};
use quiescent::smp::{self, Ctx};

const IDS: u64 = 64;
const RUN_MS: u64 = 300;

/// An I/O context: `live` is cleared when it is destroyed, just before it is freed.
pub struct IoCtx {
    id: u64,
    live: AtomicBool,
}

impl Drop for IoCtx {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Relaxed);
    }
}

/// The lookups' limits: IDs below `ids` exist. `live` is cleared when they are freed.
struct Limits {
    ids: u64,
    live: AtomicBool,
}

impl Limits {
    fn new(ids: u64) -> Self {
        Limits { ids, live: AtomicBool::new(true) }
    }
}

impl Drop for Limits {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Relaxed);
    }
}

/// xorshift64: a cheap per-core pseudo-random sequence.
pub fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn ms_since(t0: u64) -> u64 {
    arch::ticks_to_ns(arch::counter() - t0) / 1_000_000
}

struct Totals {
    lookups: Vec<u64>,
    updates: u64,
    violations: u64,
    secs: f64,
}

/// Runs `reader(cpu, stop, ctx) -> (lookups, violations)` on every other core and
/// `update(seed, ctx)` in a loop on core 0 for RUN_MS, all at once.
fn workload(
    ctx: &mut Ctx,
    reader: impl Fn(usize, &AtomicBool, &mut Ctx) -> (u64, u64) + Send + Sync + 'static,
    mut update: impl FnMut(&mut u64, &mut Ctx),
) -> Totals {
    let stop = Arc::new(AtomicBool::new(false));
    let results: Arc<Vec<AtomicU64>> = Arc::new((0..quiescent::MAX_CPUS * 2).map(|_| AtomicU64::new(0)).collect());
    let readers: Vec<usize> = crate::scenario_cores().into_iter().filter(|&c| c != 0).collect();
    let pending = Arc::new(AtomicU64::new(readers.len() as u64));
    let reader = Arc::new(reader);
    for &c in &readers {
        let (s, r, p, f) = (stop.clone(), results.clone(), pending.clone(), reader.clone());
        smp::queue_work(c, move |ctx| {
            let (n, bad) = f(c, &s, ctx);
            r[2 * c].store(n, Ordering::Relaxed);
            r[2 * c + 1].store(bad, Ordering::Relaxed);
            p.fetch_sub(1, Ordering::Release);
        });
    }
    let t0 = arch::counter();
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let mut updates = 0;
    while ms_since(t0) < RUN_MS {
        update(&mut seed, ctx);
        updates += 1;
    }
    stop.store(true, Ordering::Release);
    let secs = arch::ticks_to_ns(arch::counter() - t0) as f64 / 1e9;
    rcu::wait_quiescent(ctx, || pending.load(Ordering::Acquire) != 0);
    Totals {
        lookups: readers.iter().map(|&c| results[2 * c].load(Ordering::Relaxed)).collect(),
        violations: readers.iter().map(|&c| results[2 * c + 1].load(Ordering::Relaxed)).sum(),
        updates,
        secs,
    }
}

/// Runs the scenario and prints its figures.
pub fn run(ctx: &mut Ctx) {
    defmt::println!(
        "rcu: I/O-context lookups on cores 1..{}, set-up/destroy on core 0, {} ms each (mode=mttcg)",
        crate::scenario_cores().len() - 1,
        RUN_MS
    );
    if smp::num_online() < 2 {
        defmt::println!("  (needs two cores)");
        return;
    }
    // --- RCU ---
    let table: Arc<RcuList<IoCtx>> = Arc::new(RcuList::new());
    for id in 0..IDS / 2 {
        table.add_head(IoCtx { id: id * 2, live: AtomicBool::new(true) });
    }
    let limits: Arc<RcuCell<Limits>> = Arc::new(RcuCell::with(Limits::new(IDS)));
    let (gp0, (_, cb0)) = (rcu::stats::completed(), rcu::stats::callback_counts());
    rcu::stats::set_gp_timing(true);
    let (t2, l2) = (table.clone(), limits.clone());
    let created = AtomicU64::new(0);
    let destroyed = AtomicU64::new(0);
    let limit_changes = AtomicU64::new(0);
    let r = workload(
        ctx,
        move |cpu, stop, ctx| {
            let (mut n, mut bad, mut x) = (0u64, 0u64, 0x1234_5678 + cpu as u64);
            while !stop.load(Ordering::Relaxed) {
                let g = rcu::read(ctx);
                let ids = match l2.read(&g) {
                    Some(l) => {
                        if !l.live.load(Ordering::Relaxed) {
                            bad += 1;
                        }
                        l.ids
                    }
                    None => IDS,
                };
                let id = next(&mut x) % ids;
                if let Some(io) = t2.iter(&g).find(|c| c.id == id) {
                    if !io.live.load(Ordering::Relaxed) {
                        bad += 1;
                    }
                }
                drop(g);
                n += 1;
                if n % 64 == 0 {
                    rcu::rcu_quiescent_state(ctx);
                }
            }
            (n, bad)
        },
        |seed, ctx| {
            let id = next(seed) % IDS;
            match table.remove(|c| c.id == id) {
                Some(old) => {
                    old.free_rcu();
                    destroyed.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    table.add_head(IoCtx { id, live: AtomicBool::new(true) });
                    created.fetch_add(1, Ordering::Relaxed);
                }
            }
            if id.is_multiple_of(16) {
                // New limits: all IDs, or the lower half. Dropping the old ones queues them for
                // freeing after a grace period (lookups may still hold them).
                let n = limit_changes.fetch_add(1, Ordering::Relaxed);
                drop(limits.replace(Limits::new(if n.is_multiple_of(2) { IDS / 2 } else { IDS })));
            }
            rcu::rcu_quiescent_state(ctx);
        },
    );
    let avg_gp = rcu::stats::average_gp_ns();
    rcu::rcu_barrier(ctx);
    rcu::stats::set_gp_timing(false);
    let rcu_total: u64 = r.lookups.iter().sum();
    let rcu_rate = rcu_total as f64 / r.secs;
    for (i, n) in r.lookups.iter().enumerate() {
        defmt::println!("  RCU       core {}: {} lookups", i + 1, n);
    }
    let (_, cb1) = rcu::stats::callback_counts();
    defmt::println!(
        "  RCU       {} lookups/s, {} updates ({} created, {} destroyed, limits replaced {} times), {} callbacks run, {} grace periods (avg {} us), lookups that saw a freed context or freed limits: {}",
        rcu_rate as u64, r.updates, created.load(Ordering::Relaxed), destroyed.load(Ordering::Relaxed),
        limit_changes.load(Ordering::Relaxed), cb1 - cb0, rcu::stats::completed() - gp0, avg_gp / 1000, r.violations
    );

    // --- spin::RwLock baseline: the same table as a Vec behind a reader-writer spinlock ---
    let locked: Arc<spin::RwLock<Vec<IoCtx>>> =
        Arc::new(spin::RwLock::new((0..IDS / 2).map(|id| IoCtx { id: id * 2, live: AtomicBool::new(true) }).collect()));
    let l2 = locked.clone();
    let w = workload(
        ctx,
        move |cpu, stop, ctx| {
            let (mut n, mut bad, mut x) = (0u64, 0u64, 0x1234_5678 + cpu as u64);
            while !stop.load(Ordering::Relaxed) {
                let id = next(&mut x) % IDS;
                let t = l2.read();
                if let Some(io) = t.iter().find(|c| c.id == id) {
                    if !io.live.load(Ordering::Relaxed) {
                        bad += 1;
                    }
                }
                drop(t);
                n += 1;
                if n % 64 == 0 {
                    rcu::rcu_quiescent_state(ctx);
                }
            }
            (n, bad)
        },
        {
            let start = arch::counter();
            move |seed, _| {
                let id = next(seed) % IDS;
                // spin::RwLock prefers readers: with more vCPUs than host cores a reader is often
                // descheduled holding it, and the writer could wait past the run; it gives up at
                // the run's end instead (the figures count only lookups).
                let mut t = loop {
                    if let Some(t) = locked.try_write() {
                        break t;
                    }
                    if ms_since(start) >= RUN_MS {
                        return;
                    }
                    core::hint::spin_loop();
                };
                match t.iter().position(|c| c.id == id) {
                    Some(i) => drop(t.swap_remove(i)),
                    None => t.push(IoCtx { id, live: AtomicBool::new(true) }),
                }
            }
        },
    );
    let rw_total: u64 = w.lookups.iter().sum();
    let rw_rate = rw_total as f64 / w.secs;
    defmt::println!("  RwLock    {} lookups/s, {} updates", rw_rate as u64, w.updates);
    defmt::println!(
        "  RCU / spin::RwLock lookup throughput: {=f64}x (same run)",
        ((rcu_rate / rw_rate.max(1.0)) * 100.0) as u64 as f64 / 100.0
    );
    assert_eq!(r.violations + w.violations, 0, "a lookup saw a freed context or freed limits");
    sync_latency(ctx);
}

/// `synchronize_rcu` latency with every other core idle, then with every other core busy
/// (looping work that passes a quiescent state between short read-side sections).
fn sync_latency(ctx: &mut Ctx) {
    const N: u64 = 2000;
    for &c in smp::online_cpus().collect::<Vec<_>>().iter().filter(|&&c| c != 0) {
        smp::call_on(ctx, c, |_| ());
    }
    let t0 = arch::counter();
    for _ in 0..N {
        rcu::synchronize_rcu(ctx);
    }
    let idle_ns = arch::ticks_to_ns(arch::counter() - t0) / N;
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<usize> = crate::scenario_cores().into_iter().filter(|&c| c != 0).collect();
    let running = Arc::new(AtomicU64::new(0));
    for &c in &busy {
        let (s, r) = (stop.clone(), running.clone());
        smp::queue_work(c, move |ctx| {
            r.fetch_add(1, Ordering::Release);
            let mut x = c as u64 + 1;
            while !s.load(Ordering::Relaxed) {
                let g = rcu::read(ctx);
                for _ in 0..20 {
                    core::hint::black_box(next(&mut x));
                }
                drop(g);
                rcu::rcu_quiescent_state(ctx);
            }
        });
    }
    rcu::wait_quiescent(ctx, || running.load(Ordering::Acquire) < busy.len() as u64);
    let t0 = arch::counter();
    for _ in 0..N / 10 {
        rcu::synchronize_rcu(ctx);
    }
    let busy_ns = arch::ticks_to_ns(arch::counter() - t0) / (N / 10);
    stop.store(true, Ordering::Release);
    for &c in &busy {
        smp::call_on(ctx, c, |_| ());
    }
    defmt::println!(
        "  synchronize_rcu: {} ns with the other cores idle, {} ns with them busy (counter time, mode=mttcg)",
        idle_ns,
        busy_ns
    );
}
