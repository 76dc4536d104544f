//! get/put/tryget_live in interrupt handlers on a core in a blocking wait, across kills.

use super::{settle, wait_until};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering};
use quiescent::percpu;
use quiescent::smp::{self, ipi, Ctx};
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::{arch, rcu};

const LIVE: u64 = 0x4c49_5645; // "LIVE"
const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b;

/// An aio-style context (Linux's `kioctx`): found through an RCU-protected slot, pinned with
/// `tryget_live` on its `users` ref, released after `kill`, then freed a grace period later.
/// "Freed" here means poisoned and leaked, so a late reader reads the poison rather than memory
/// the allocator handed out again.
struct IoCtx {
    magic: AtomicU64,
    releases: AtomicU32,
    users: spin::Once<Arc<PercpuRef>>,
}

impl IoCtx {
    fn users(&self) -> &PercpuRef {
        self.users.get().expect("users initialised before publication")
    }
}

/// A few microseconds of busy time, varied by `seed`.
fn dawdle(seed: &mut u64) {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let ns = (*seed >> 33) % 30_000;
    let t0 = arch::counter();
    while arch::ticks_to_ns(arch::counter() - t0) < ns {
        arch::cpu_relax();
    }
}

/// Review hazard 1: percpu_ref get/put/tryget_live in interrupt handlers (call_function_single
/// closures) on a core that sits in a blocking wait, across repeated kills: the handler looks the
/// context up under RCU and pins it, as aio's `lookup_ioctx` does. `release` must run exactly
/// once per context, never while a handler holds a reference, and no handler may see a context
/// freed after its release. Before the IRQ entry left the extended quiescent state, the kill's
/// grace period and the free's did not wait for the handler.
pub(super) fn get_put_in_interrupt_handlers_on_a_quiescent_waiting_core_across_kill(ctx: &mut Ctx) {
    const CYCLES: usize = 30;
    let o: Vec<usize> = smp::online_cpus().filter(|&c| c != percpu::cpu_id()).collect();
    if o.len() < 2 {
        return; // needs a waiting core and a core to interrupt it
    }
    let waiter = o[0];
    static SLOT: AtomicPtr<IoCtx> = AtomicPtr::new(core::ptr::null_mut());
    static HANDLED: AtomicU64 = AtomicU64::new(0);
    static PINNED: AtomicU64 = AtomicU64::new(0);
    static ERRORS: AtomicU32 = AtomicU32::new(0);
    let stop = Arc::new(AtomicBool::new(false));
    // The waiter: a work item in a blocking wait (interrupts enabled) until the end.
    let waiting = Arc::new(AtomicBool::new(false));
    let (w2, s2) = (waiting.clone(), stop.clone());
    smp::queue_work(waiter, move |ctx| {
        w2.store(true, Ordering::Release);
        rcu::wait_quiescent(ctx, || !s2.load(Ordering::Acquire));
    });
    wait_until(ctx, "the waiter's blocking wait", || waiting.load(Ordering::Acquire));
    // The senders: every other core interrupts the waiter with lookups until stopped.
    let senders = Arc::new(AtomicU32::new(0));
    for &c in &o[1..] {
        let (s3, n3) = (stop.clone(), senders.clone());
        n3.fetch_add(1, Ordering::Relaxed);
        smp::queue_work(c, move |ctx| {
            let mut seed = c as u64 + 1;
            while !s3.load(Ordering::Acquire) {
                let sd = seed;
                seed = ipi::call_function_single(ctx, waiter, move |actx| {
                    let mut seed = sd;
                    let g = rcu::read(actx);
                    let p = rcu::rcu_dereference(&SLOT, &g);
                    if !p.is_null() {
                        // SAFETY: contexts are leaked, never freed (see IoCtx).
                        let io = unsafe { &*p };
                        dawdle(&mut seed); // between the lookup and the pin
                        if io.magic.load(Ordering::Acquire) != LIVE {
                            defmt::error!("a handler's context was freed after its lookup");
                            ERRORS.fetch_add(1, Ordering::Relaxed);
                        } else if io.users().tryget_live(&g) {
                            io.users().get(&g);
                            io.users().put(&g);
                            dawdle(&mut seed);
                            if io.releases.load(Ordering::Acquire) != 0 || io.magic.load(Ordering::Acquire) != LIVE {
                                defmt::error!("release ran while a handler held a reference");
                                ERRORS.fetch_add(1, Ordering::Relaxed);
                            }
                            io.users().put(&g); // may be the last: release in interrupt context
                            PINNED.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    drop(g);
                    HANDLED.fetch_add(1, Ordering::Relaxed);
                    seed
                });
            }
            n3.fetch_sub(1, Ordering::Release);
        });
    }
    let mut ctxs: Vec<&'static IoCtx> = Vec::new();
    for _ in 0..CYCLES {
        let io: &'static IoCtx = alloc::boxed::Box::leak(alloc::boxed::Box::new(IoCtx {
            magic: AtomicU64::new(LIVE),
            releases: AtomicU32::new(0),
            users: spin::Once::new(),
        }));
        let users = PercpuRef::init(
            move |_| {
                io.releases.fetch_add(1, Ordering::Release);
                // Free the context a grace period after its release (aio's free_ioctx); this
                // may run in a handler, so call_rcu must be interrupt-safe too.
                rcu::call_rcu(move |_| io.magic.store(POISON, Ordering::Release));
            },
            Flags::NONE,
        )
        .expect("init");
        io.users.call_once(|| users);
        ctxs.push(io);
        rcu::rcu_assign_pointer(&SLOT, io as *const IoCtx as *mut IoCtx);
        // Let a few handlers find it, then unpublish and kill while they keep coming.
        let h = HANDLED.load(Ordering::Relaxed);
        wait_until(ctx, "handlers finding the context", || HANDLED.load(Ordering::Relaxed) >= h + 3);
        rcu::rcu_assign_pointer(&SLOT, core::ptr::null_mut());
        io.users().kill(ctx);
        wait_until(ctx, "release after kill", || io.releases.load(Ordering::Acquire) == 1);
    }
    stop.store(true, Ordering::Release);
    wait_until(ctx, "the senders to stop", || senders.load(Ordering::Acquire) == 0);
    settle(ctx);
    for (i, io) in ctxs.iter().enumerate() {
        assert_eq!(io.releases.load(Ordering::Acquire), 1, "context {} released more than once", i);
        assert_eq!(io.magic.load(Ordering::Acquire), POISON, "context {} never freed", i);
        assert_eq!(io.users().misuses(), 0, "context {}: misuse reported", i);
    }
    assert_eq!(ERRORS.load(Ordering::Relaxed), 0, "a handler used a released or freed context");
    assert!(PINNED.load(Ordering::Relaxed) > 0, "no handler ever pinned a context");
    defmt::info!(
        "{} handlers, {} pinned a context, over {} kills",
        HANDLED.load(Ordering::Relaxed),
        PINNED.load(Ordering::Relaxed),
        CYCLES
    );
}
