//! The read sides the benchmarks compare, and one shared instance of each.

use super::common::{consume, per_op, window, CoreRun};
use alloc::boxed::Box;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use quiescent::rcu;
use quiescent::smp::Ctx;
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rwsem::RwSem;
use quiescent::sync::{RwSemaphore, SpinRw};

/// One instance of every primitive, shared by all cores.
pub struct Subjects {
    /// percpu-rwsem.
    pub prw: Arc<PercpuRwSem>,
    /// The classic rw_semaphore.
    pub rw: RwSem,
    /// `spin::RwLock`.
    pub srw: SpinRw,
    /// `spin::Mutex`.
    pub mx: spin::Mutex<()>,
    /// percpu_ref (live: get/put take the per-core path).
    pub pref: Arc<PercpuRef>,
    /// A shared atomic reference count.
    pub shared: AtomicU64,
    /// An RCU-protected pointer.
    pub rcu_ptr: AtomicPtr<u64>,
}

impl Subjects {
    /// Creates them (the percpu_ref and percpu-rwsem take 4 bytes of per-cpu memory each).
    pub fn new() -> Arc<Subjects> {
        Arc::new(Subjects {
            prw: PercpuRwSem::new().expect("per-cpu read counts"),
            rw: RwSem::new(),
            srw: SpinRw::new(),
            mx: spin::Mutex::new(()),
            pref: PercpuRef::init(|_| {}, Flags::NONE).expect("per-cpu counter"),
            shared: AtomicU64::new(1),
            rcu_ptr: AtomicPtr::new(Box::into_raw(Box::new(42u64))),
        })
    }
}

/// A read side: what a reader pays to enter and leave.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReadSide {
    /// `rcu_read_lock`, `rcu_dereference`, `rcu_read_unlock`.
    Rcu,
    /// percpu-rwsem `down_read` + `up_read`.
    PercpuRwSem,
    /// The classic rw_semaphore's `down_read` + `up_read`.
    Rwsem,
    /// `spin::RwLock` read + unlock.
    SpinRw,
    /// `spin::Mutex` lock + unlock.
    SpinMutex,
    /// percpu_ref `get` + `put`.
    PercpuRef,
    /// A shared atomic count: `fetch_add` + `fetch_sub`.
    SharedAtomic,
}

/// Runs `$body` with `$op` bound to the read side's operation as a closure of its own type, so
/// each read side gets its own inlined loop. The closure takes the core's context: the sleeping
/// locks' `read` takes it `&mut` (it may wait), the rest a shared borrow of it. Every pair goes
/// through the safe API (a guard released with `unlock(ctx)`, the fast path): the context is
/// empty, so after inlining it costs what the raw `down_read`/`up_read` pair did.
macro_rules! with_op {
    ($side:expr, $s:expr, |$op:ident| $body:expr) => {{
        let s: &Subjects = $s;
        match $side {
            ReadSide::Rcu => {
                let $op = |ctx: &mut Ctx| {
                    let g = rcu::read(ctx);
                    consume(rcu::rcu_dereference(&s.rcu_ptr, &g) as u64);
                    drop(g);
                };
                $body
            }
            ReadSide::PercpuRwSem => {
                let $op = |ctx: &mut Ctx| {
                    let g = s.prw.read(ctx);
                    g.unlock(ctx);
                };
                $body
            }
            ReadSide::Rwsem => {
                let $op = |ctx: &mut Ctx| {
                    let g = s.rw.read(ctx);
                    g.unlock(ctx);
                };
                $body
            }
            ReadSide::SpinRw => {
                let $op = |ctx: &mut Ctx| {
                    let g = s.srw.read(ctx);
                    g.unlock(ctx);
                };
                $body
            }
            ReadSide::SpinMutex => {
                let $op = |_: &mut Ctx| drop(s.mx.lock());
                $body
            }
            ReadSide::PercpuRef => {
                let $op = |ctx: &mut Ctx| {
                    s.pref.get(ctx);
                    s.pref.put(ctx);
                };
                $body
            }
            ReadSide::SharedAtomic => {
                let $op = |_: &mut Ctx| {
                    // Relaxed increment; the decrement as a refcount's put needs it (AcqRel).
                    s.shared.fetch_add(1, Ordering::Relaxed);
                    consume(s.shared.fetch_sub(1, Ordering::AcqRel));
                };
                $body
            }
        }
    }};
}

impl ReadSide {
    /// Every read side, in report order.
    pub const ALL: [ReadSide; 7] = [
        ReadSide::Rcu,
        ReadSide::PercpuRwSem,
        ReadSide::PercpuRef,
        ReadSide::Rwsem,
        ReadSide::SpinRw,
        ReadSide::SpinMutex,
        ReadSide::SharedAtomic,
    ];

    /// The id in `BENCH` lines.
    pub fn id(self) -> &'static str {
        match self {
            ReadSide::Rcu => "rcu",
            ReadSide::PercpuRwSem => "percpu_rwsem",
            ReadSide::Rwsem => "rwsem",
            ReadSide::SpinRw => "spin_rwlock",
            ReadSide::SpinMutex => "spin_mutex",
            ReadSide::PercpuRef => "percpu_ref",
            ReadSide::SharedAtomic => "shared_atomic",
        }
    }

    /// The readable name.
    pub fn label(self) -> &'static str {
        match self {
            ReadSide::Rcu => "RCU read lock + dereference + unlock",
            ReadSide::PercpuRwSem => "percpu-rwsem down_read + up_read",
            ReadSide::Rwsem => "rw_semaphore down_read + up_read",
            ReadSide::SpinRw => "spin::RwLock read + unlock",
            ReadSide::SpinMutex => "spin::Mutex lock + unlock",
            ReadSide::PercpuRef => "percpu_ref get + put",
            ReadSide::SharedAtomic => "shared atomic get + put",
        }
    }

    /// Whether a reader touches only its own core's data (it should scale with cores), as
    /// opposed to one shared word (it should not).
    pub fn per_core(self) -> bool {
        matches!(self, ReadSide::Rcu | ReadSide::PercpuRwSem | ReadSide::PercpuRef)
    }

    /// The one-core cost row (see `common::per_op`).
    pub fn cost(self, ctx: &mut Ctx, s: &Subjects, n: u64) -> f64 {
        with_op!(self, s, |op| per_op(n, || op(ctx)))
    }

    /// One core's part of a scaling window (see `common::window`).
    pub fn window(self, ctx: &mut Ctx, s: &Subjects, start: u64, end: u64, chunk: u32) -> CoreRun {
        with_op!(self, s, |op| window(ctx, start, end, chunk, op))
    }
}
