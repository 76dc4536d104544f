//! Seed 004's workload, after Linux's i_mmap_mutex -> i_mmap_rwsem conversion: a shared
//! interval list (the file's mappings, as `i_mmap`), walked by most operations (rmap walks,
//! unmaps: "which mappings cover this page?") and changed by a few (a mapping inserted or
//! removed). Four ways to protect it: `spin::Mutex` (the old i_mmap_mutex), the classic
//! rw_semaphore (the i_mmap_rwsem), percpu-rwsem (every write waits for a grace period), and
//! RCU readers with a lock for updaters (seed 001's pattern). Each runs at 1, 2, 4 and 8 cores
//! with 0%, 1%, 10% and 50% of operations exclusive; the seed reported about +60% throughput
//! from sharing at high concurrency.

use super::common::{consume, f, first_cores, line, next_window, on_cores, sliced, throughput, yn, CoreRun, Table};
use super::scaling::{median, CORES};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use quiescent::rcu::list::RcuList;
use quiescent::smp::{AtomicCtx, Ctx};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::RwSemaphore;
use quiescent::{arch, rcu};

/// Shares of exclusive operations, in per mille.
pub const SHARES: [u32; 4] = [0, 10, 100, 500];
const WINDOW_MS: u64 = 100;
const REPS: usize = 5;
/// Operations between two counter reads (a walk costs about a microsecond under mttcg).
const CHUNK: u32 = 8;
/// The file's page range, the mappings present at the start, and their lengths.
const SPAN: u32 = 4096;
const MAPPINGS: u32 = 32;

/// A mapping of pages `start..end` of the file, by core `owner` (u32::MAX: present at start).
struct Interval {
    start: u32,
    end: u32,
    owner: u32,
}

/// How the list is protected. Taking it may wait (the sleeping locks), so both take the
/// context `&mut`; the shared side's `f` gets a shared borrow of it, for its RCU walk.
trait Protect: Send + Sync + 'static {
    /// Whether `exclusive` keeps walkers out, so a removed mapping may be freed at once (else
    /// it is freed after a grace period, as with `kfree_rcu`).
    const EXCLUDES_READERS: bool;
    fn shared<R>(&self, ctx: &mut Ctx, f: impl FnOnce(&AtomicCtx) -> R) -> R;
    fn exclusive<R>(&self, ctx: &mut Ctx, f: impl FnOnce() -> R) -> R;
}

impl Protect for spin::Mutex<()> {
    const EXCLUDES_READERS: bool = true;
    fn shared<R>(&self, ctx: &mut Ctx, f: impl FnOnce(&AtomicCtx) -> R) -> R {
        let _g = self.lock();
        f(ctx)
    }
    fn exclusive<R>(&self, _ctx: &mut Ctx, f: impl FnOnce() -> R) -> R {
        let _g = self.lock();
        f()
    }
}

/// A reader-writer semaphore (the rw_semaphore or percpu-rwsem).
struct Rw<L>(L);

impl<L: RwSemaphore + 'static> Protect for Rw<L> {
    const EXCLUDES_READERS: bool = true;
    fn shared<R>(&self, ctx: &mut Ctx, f: impl FnOnce(&AtomicCtx) -> R) -> R {
        let g = self.0.read(ctx);
        let r = f(ctx);
        g.unlock(ctx); // up_read's fast path
        r
    }
    fn exclusive<R>(&self, ctx: &mut Ctx, f: impl FnOnce() -> R) -> R {
        let _g = self.0.write(ctx); // up_write when dropped, after f
        f()
    }
}

/// RCU readers; updaters serialised by a spinlock (seed 001's pattern).
struct RcuReaders(spin::Mutex<()>);

impl Protect for RcuReaders {
    const EXCLUDES_READERS: bool = false;
    fn shared<R>(&self, ctx: &mut Ctx, f: impl FnOnce(&AtomicCtx) -> R) -> R {
        f(ctx) // the walk is its own RCU read-side section
    }
    fn exclusive<R>(&self, _ctx: &mut Ctx, f: impl FnOnce() -> R) -> R {
        let _g = self.0.lock();
        f()
    }
}

/// The list and its protection.
struct Mapping<P> {
    prot: P,
    list: RcuList<Interval>,
}

/// A small xorshift generator per core.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

impl<P: Protect> Mapping<P> {
    fn new(prot: P) -> Self {
        let list = RcuList::new();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..MAPPINGS {
            list.add_head(interval(&mut rng, u32::MAX));
        }
        Mapping { prot, list }
    }

    /// The shared walk: how many mappings cover page `pgoff`.
    #[inline(always)]
    fn walk(&self, ctx: &mut Ctx, pgoff: u32) -> u64 {
        self.prot.shared(ctx, |ctx| {
            let g = rcu::read(ctx);
            self.list.iter(&g).filter(|iv| iv.start <= pgoff && pgoff < iv.end).count() as u64
        })
    }

    /// The exclusive change: this core maps a range, or unmaps the one it mapped.
    #[inline(always)]
    fn change(&self, ctx: &mut Ctx, me: u32, mine: &mut bool, rng: &mut Rng) {
        self.prot.exclusive(ctx, || {
            if *mine {
                if let Some(r) = self.list.remove(|iv| iv.owner == me) {
                    if P::EXCLUDES_READERS {
                        // SAFETY: walkers are excluded while this runs, and none started before
                        // it still runs, so none can stand on the unlinked node. Not a safe
                        // form (`drop(r)`: a callback after a grace period; `free_after_sync`:
                        // a grace period inside the lock) because freeing at once under the
                        // exclusive lock is what the lock-based protections in this workload
                        // do (i_mmap's pattern); that the lock keeps walkers out is a fact about
                        // `P` the type system does not see.
                        unsafe { r.free_now() };
                    } else {
                        drop(r); // freed after a grace period
                    }
                }
            } else {
                self.list.add_head(interval(rng, me));
            }
            *mine = !*mine;
        });
    }

    /// One core's part of a window.
    fn run(&self, ctx: &mut Ctx, me: u32, share: u32, start: u64, end: u64) -> CoreRun {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ ((me as u64 + 1) << 32) ^ start);
        let mut mine = false;
        rcu::wait_quiescent(ctx, || arch::counter_relaxed() < start);
        let t0 = arch::counter();
        let mut ops = 0u64;
        loop {
            for _ in 0..CHUNK {
                let r = rng.next();
                if ((r >> 20) % 1000) < share as u64 {
                    self.change(ctx, me, &mut mine, &mut rng);
                } else {
                    consume(self.walk(ctx, (r % SPAN as u64) as u32));
                }
                rcu::rcu_quiescent_state(ctx);
            }
            ops += CHUNK as u64;
            let t = arch::counter();
            if t >= end {
                if mine {
                    self.change(ctx, me, &mut mine, &mut rng);
                }
                return CoreRun { ops, ticks: t - t0 };
            }
        }
    }
}

fn interval(rng: &mut Rng, owner: u32) -> Interval {
    let start = (rng.next() % SPAN as u64) as u32;
    let len = 64 + (rng.next() % 448) as u32;
    Interval { start, end: start + len, owner }
}

/// Throughput of one window on a fresh list (operations per second, all cores).
fn window<P: Protect>(ctx: &mut Ctx, make: impl Fn() -> P, k: usize, share: u32) -> f64 {
    let m = Arc::new(Mapping::new(make()));
    let (start, end) = next_window(WINDOW_MS);
    let m2 = m.clone();
    let work = move |i: usize, ctx: &mut Ctx| m2.run(ctx, i as u32, share, start, end);
    let runs = on_cores(ctx, k, Arc::new(work));
    // Mappings removed under RCU are freed by callbacks: let them run before the list goes.
    rcu::rcu_barrier(ctx);
    throughput(&runs)
}

/// The protections, in report order: id, label.
pub const PRIMS: [(&str, &str); 4] = [
    ("spin_mutex", "spin::Mutex (i_mmap_mutex)"),
    ("rwsem", "rw_semaphore (i_mmap_rwsem)"),
    ("percpu_rwsem", "percpu-rwsem"),
    ("rcu", "RCU readers + spinlock for updaters"),
];

fn window_of(ctx: &mut Ctx, i: usize, k: usize, share: u32) -> f64 {
    match i {
        0 => window(ctx, || spin::Mutex::new(()), k, share),
        1 => window(ctx, || Rw(RwSem::new()), k, share),
        2 => window(ctx, || Rw(PercpuRwSem::new().expect("per-cpu read counts")), k, share),
        _ => window(ctx, || RcuReaders(spin::Mutex::new(())), k, share),
    }
}

/// Throughput of every protection at `share` on each of `cores`: the median of REPS windows,
/// the protections and core counts interleaved (each round runs every one once), so that a
/// change in the host's load touches them all alike.
fn measure_share(ctx: &mut Ctx, cores: &[usize], share: u32) -> Vec<Vec<f64>> {
    let mut v: Vec<Vec<Vec<f64>>> = alloc::vec![alloc::vec![Vec::new(); cores.len()]; PRIMS.len()];
    for _ in 0..REPS {
        for (i, per_prim) in v.iter_mut().enumerate() {
            for (c, &k) in cores.iter().enumerate() {
                per_prim[c].push(window_of(ctx, i, k, share));
            }
        }
    }
    v.into_iter().map(|p| p.into_iter().map(median).collect()).collect()
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) {
    let online = first_cores(usize::MAX).len();
    let cores: Vec<usize> = CORES.iter().copied().filter(|&k| k <= online).collect();
    let mut head: Vec<String> = alloc::vec!["protection (kops/s)".into()];
    head.extend(
        cores
            .iter()
            .map(|&k| alloc::format!("{k} core{}{}", if k > 1 { "s" } else { "" }, if sliced(k) { "*" } else { "" })),
    );
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    // gain[s][c]: rw_semaphore over spin::Mutex.
    let mut gains: Vec<Vec<f64>> = Vec::new();
    for share in SHARES {
        let title = alloc::format!("Seed 004 mixed workload: {}% exclusive operations", f(share as f64 / 10.0, 0));
        let mut table = Table::new(&title, &head_refs);
        let thr = measure_share(ctx, &cores, share);
        for (i, (id, label)) in PRIMS.iter().enumerate() {
            let mut row = alloc::vec![String::from(*label)];
            for (&k, &t) in cores.iter().zip(&thr[i]) {
                row.push(f(t / 1e3, 0));
                line(
                    "mixed",
                    &alloc::format!(
                        "op={id} share_permille={share} cores={k} ops_per_s={t:.0} sliced={} label=\"{label}\"",
                        yn(sliced(k))
                    ),
                );
            }
            table.row(row);
        }
        table.print();
        gains.push(
            cores
                .iter()
                .enumerate()
                .map(|(c, &k)| {
                    let g = (thr[1][c] / thr[0][c].max(1.0) - 1.0) * 100.0;
                    line(
                        "gain",
                        &alloc::format!("share_permille={share} cores={k} gain_pct={g:.1} sliced={}", yn(sliced(k))),
                    );
                    g
                })
                .collect(),
        );
    }
    let mut head: Vec<String> = alloc::vec!["exclusive share".into()];
    head.extend(
        cores
            .iter()
            .map(|&k| alloc::format!("{k} core{}{}", if k > 1 { "s" } else { "" }, if sliced(k) { "*" } else { "" })),
    );
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut table =
        Table::new("rw_semaphore vs spin::Mutex throughput gain (the seed reported about +60%)", &head_refs);
    for (s, share) in SHARES.iter().enumerate() {
        let mut row = alloc::vec![alloc::format!("{}%", f(*share as f64 / 10.0, 0))];
        row.extend(gains[s].iter().map(|g| alloc::format!("{}{}%", if *g >= 0.0 { "+" } else { "" }, f(*g, 0))));
        table.row(row);
    }
    table.print();
}
