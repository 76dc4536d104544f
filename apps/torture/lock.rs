//! Lock torture, after Linux's `kernel/locking/locktorture.c`, on four locks at once:
//! percpu-rwsem (`percpu_rwsem_lock`), the classic rw_semaphore (`rwsem_lock`), `spin::RwLock`
//! (`rw_lock`) and `spin::Mutex` (`spin_lock`).
//!
//! Every core takes random locks as reader or writer and holds them for random times (mostly
//! short, sometimes long; long read holds of the sleeping locks pass quiescent points, as a
//! reader may). Readers release through the guard's fast path (`unlock(ctx)`, `up_read`) mostly,
//! and now and then by dropping it (`up_read_unwatched`, percpu-rwsem's slow path). Inside, a
//! checker verifies exclusion: a writer finds no other writer and no reader inside, a reader
//! finds no writer, and the two words every writer sets to one new value (with a delay between
//! them) read equal to a reader. A failed check counts in `Fail:` with `!!!`. Acquisitions are
//! counted per core and printed as locktorture does, with `???` when the busiest core took the
//! lock more than twice as often as the least busy one (starvation).

use super::common::{self, delay_ns, hold_ns, PerCore, Rng, Torture};
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use quiescent::rcu;
use quiescent::smp::Ctx;
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::{RwSemaphore, SpinRw};

/// What the torture holds. The reader-writer locks behind an `Arc<dyn RwSemaphore>`, which is
/// itself a (sized) `RwSemaphore`, so its guards apply.
enum Kind {
    Rw(Arc<dyn RwSemaphore>),
    Mutex(spin::Mutex<()>),
}

/// One tortured lock with its checker and counters.
struct Tortured {
    /// locktorture's name for the lock type.
    name: &'static str,
    kind: spin::Once<Kind>,
    /// Bit 63: a writer is inside; low bits: readers inside.
    inside: AtomicU64,
    /// Two words every writer sets to the same new value, one after the other.
    a: AtomicU64,
    b: AtomicU64,
    writes: PerCore,
    reads: PerCore,
    write_fail: PerCore,
    read_fail: PerCore,
    /// Whether long holds may pass quiescent points (the sleeping locks).
    may_pass_qs: bool,
}

const WRITER: u64 = 1 << 63;

impl Tortured {
    const fn new(name: &'static str, may_pass_qs: bool) -> Self {
        Tortured {
            name,
            kind: spin::Once::new(),
            inside: AtomicU64::new(0),
            a: AtomicU64::new(0),
            b: AtomicU64::new(0),
            writes: PerCore::new(),
            reads: PerCore::new(),
            write_fail: PerCore::new(),
            read_fail: PerCore::new(),
            may_pass_qs,
        }
    }

    fn kind(&self) -> &Kind {
        self.kind.get().expect("lock torture started")
    }

    fn hold(&self, ctx: &mut Ctx, rng: &mut Rng, short: u64, long: u64) {
        let ns = hold_ns(rng, short, long);
        if self.may_pass_qs && ns >= long / 4 && rng.pct(50) {
            // A long hold of a sleeping lock, as a reader or writer may do: quiescent points
            // inside (a percpu-rwsem writer's grace periods must not wait for the holder).
            let t0 = quiescent::arch::counter_relaxed();
            while quiescent::arch::ticks_to_ns(quiescent::arch::counter_relaxed().wrapping_sub(t0)) < ns {
                delay_ns(10_000);
                rcu::rcu_quiescent_state(ctx);
            }
        } else {
            delay_ns(ns);
        }
    }

    fn write(&self, ctx: &mut Ctx, rng: &mut Rng) {
        // The guard holds the lock across the checked section (its quiescent points included)
        // and releases it when dropped, at the end of the arm.
        match self.kind() {
            Kind::Rw(l) => {
                let _g = l.write(ctx);
                self.write_locked(ctx, rng);
            }
            Kind::Mutex(m) => {
                let _g = m.lock();
                self.write_locked(ctx, rng);
            }
        }
        self.writes.inc();
    }

    /// The writer's checked section, with the lock held exclusive.
    fn write_locked(&self, ctx: &mut Ctx, rng: &mut Rng) {
        // The checker word's RMWs are totally ordered among themselves, so two holders inside
        // at once see each other's bits whatever the lock's own ordering.
        let prev = self.inside.fetch_or(WRITER, Ordering::AcqRel);
        if prev != 0 {
            self.write_fail.inc();
            common::fail();
        }
        let v = self.a.load(Ordering::Relaxed) + 1;
        self.a.store(v, Ordering::Relaxed);
        self.hold(ctx, rng, 20_000, 1_000_000);
        self.b.store(v, Ordering::Relaxed);
        let now = self.inside.fetch_and(!WRITER, Ordering::AcqRel);
        if now != WRITER {
            self.write_fail.inc();
            common::fail();
        }
    }

    fn read(&self, ctx: &mut Ctx, rng: &mut Rng) {
        let Kind::Rw(l) = self.kind() else {
            return self.write(ctx, rng); // a mutex has no readers
        };
        let g = l.read(ctx);
        let prev = self.inside.fetch_add(1, Ordering::AcqRel);
        let a = self.a.load(Ordering::Relaxed);
        self.hold(ctx, rng, 10_000, 500_000);
        let b = self.b.load(Ordering::Relaxed);
        if prev & WRITER != 0 || a != b {
            self.read_fail.inc();
            common::fail();
        }
        let now = self.inside.fetch_sub(1, Ordering::AcqRel);
        if now & WRITER != 0 {
            self.read_fail.inc();
            common::fail();
        }
        if rng.pct(12) {
            drop(g); // up_read_unwatched: the slow path a guard dropped anywhere takes
        } else {
            g.unlock(ctx); // up_read: the fast path
        }
        self.reads.inc();
    }

    fn print(&self, what: &str, c: &PerCore, fail: &PerCore) -> bool {
        let (mx, mn) = c.max_min();
        let f = fail.total();
        // locktorture: `???` when max / 2 > min (starvation), `!!!` on a failed check.
        defmt::println!(
            "{=str}-torture: {=str}:  Total: {}  Max/Min: {}/{} {=str}  Fail: {} {=str}",
            self.name,
            what,
            c.total(),
            mx,
            mn,
            if mx / 2 > mn { "???" } else { "" },
            f,
            if f != 0 { "!!!" } else { "" }
        );
        if f != 0 {
            defmt::println!("{=str}-torture: !!! exclusion violated: {} failed checks ({=str})", self.name, f, what);
        }
        f == 0
    }
}

static LOCKS: [Tortured; 4] = [
    Tortured::new("percpu_rwsem_lock", true),
    Tortured::new("rwsem_lock", true),
    Tortured::new("rw_lock", false),
    Tortured::new("spin_lock", false),
];

/// The percpu-rwsem again, for its debug-build walk count in the statistics.
static PERCPU: spin::Once<Arc<PercpuRwSem>> = spin::Once::new();

pub struct LockTorture;

pub static LOCK_TORTURE: LockTorture = LockTorture;

impl Torture for LockTorture {
    fn name(&self) -> &'static str {
        "lock-torture"
    }

    fn start(&self) {
        let percpu: Arc<PercpuRwSem> = PercpuRwSem::new().expect("percpu-rwsem: per-cpu space");
        PERCPU.call_once(|| percpu.clone());
        LOCKS[0].kind.call_once(|| Kind::Rw(percpu));
        LOCKS[1].kind.call_once(|| Kind::Rw(Arc::new(RwSem::new())));
        LOCKS[2].kind.call_once(|| Kind::Rw(Arc::new(SpinRw::new())));
        LOCKS[3].kind.call_once(|| Kind::Mutex(spin::Mutex::new(())));
    }

    fn weight(&self) -> u64 {
        40
    }

    fn op(&self, ctx: &mut Ctx, rng: &mut Rng, pick: u64) {
        let l = &LOCKS[(pick % 4) as usize];
        // locktorture's default mix: writers are a minority.
        if rng.pct(20) {
            l.write(ctx, rng);
        } else {
            l.read(ctx, rng);
        }
    }

    fn irq(&self, _ctx: &quiescent::smp::AtomicCtx, _rng: &mut Rng) {}

    fn finish(&self, _ctx: &mut Ctx) {
        for l in &LOCKS {
            if l.inside.load(Ordering::Relaxed) != 0 {
                defmt::println!("{=str}-torture: !!! still held at the end", l.name);
                l.write_fail.inc();
                common::fail();
            }
        }
    }

    fn stats(&self) -> bool {
        let mut ok = true;
        for l in &LOCKS {
            ok &= l.print("Writes", &l.writes, &l.write_fail);
            if matches!(l.kind(), Kind::Rw(_)) {
                ok &= l.print("Reads ", &l.reads, &l.read_fail);
            }
        }
        // Debug builds: how many times the percpu-rwsem's writers walked the per-core counts
        // (once per down_write; nothing else here walks them).
        if let Some(walks) = PERCPU.get().and_then(|p| p.debug_walks()) {
            defmt::println!(
                "percpu_rwsem_lock-torture: per-core count walks: {} over {} writes",
                walks,
                LOCKS[0].writes.total()
            );
        }
        ok
    }

    fn params(&self) -> String {
        alloc::format!(
            "torture_type=percpu_rwsem_lock,rwsem_lock,rw_lock,spin_lock nwriters_stress={} nreaders_stress={} long_hold=1",
            quiescent::smp::num_online(),
            quiescent::smp::num_online()
        )
    }
}
