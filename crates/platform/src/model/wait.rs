//! Waits and IPIs: spinning, `wait_event` and `wake_up_all` (WFE's event latch), `Completion`, the
//! firmware's spin mutex, and the IPIs (a wake-up is recorded).

use super::cores::hooks;
use super::{AtomicBool, AtomicCtx, Ctx, Ordering, NR_CPUS};

/// IPIs: a wake-up is recorded (a model checks that a sleeper was woken); a function call on
/// another core and a PC report are not modelled.
pub mod ipi {
    /// The firmware's IPI kinds.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Ipi {
        /// Ends a WFI sleep.
        Wake,
    }

    crate::global! {
        static WOKEN: [super::AtomicBool; super::NR_CPUS] = core::array::from_fn(|_| super::AtomicBool::new(false));
    }

    /// Sends `ipi` to core `cpu`: the model records the wake-up.
    pub fn send(cpu: usize, ipi: Ipi) {
        match ipi {
            Ipi::Wake => WOKEN[cpu].store(true, super::Ordering::Relaxed),
        }
    }

    /// Whether core `cpu` has been sent a Wake IPI in this execution.
    pub fn woken(cpu: usize) -> bool {
        WOKEN[cpu].load(super::Ordering::Relaxed)
    }

    /// Not modelled (`rcu_barrier` is not among the models).
    pub fn call_function_single<R: Send + 'static>(
        _ctx: &mut super::Ctx,
        _cpu: usize,
        _f: impl FnOnce(&super::AtomicCtx) -> R + Send + 'static,
    ) -> R {
        unimplemented!("call_function_single is not modelled")
    }

    /// Not modelled (the stall detector is not among the models).
    pub fn report_pc(_cpu: usize, _timeout_ms: u64) -> Option<u64> {
        None
    }
}

/// A spin-wait hint: under loom, let another thread run (loom requires it in every spin loop).
pub fn cpu_relax() {
    loom::thread::yield_now();
}

crate::global! {
    // WFE's event register, machine-wide: a count of `sev`s, and the waiters sleeping on it.
    static EVENTS: loom::sync::Mutex<u64> = loom::sync::Mutex::new(0);
    static SEV: loom::sync::Condvar = loom::sync::Condvar::new();
}

/// Waits until `done()`, as the registered blocking wait (an RCU extended quiescent state, as
/// the firmware's is). The firmware re-checks after each `wfe`; here the waiter sleeps until a
/// [`wake_up_all`] comes after the `sev` count it read before its check (WFE's event latch: a
/// `sev` between the check and the `wfe` is not lost). A wake-up that is never sent leaves the
/// waiter asleep, which loom reports as a deadlock: the model checks that every change a waiter
/// waits for is followed by a wake-up (on the firmware a missed one would only wait for the
/// next interrupt).
pub fn wait_event(_ctx: &mut Ctx, mut done: impl FnMut() -> bool) {
    if done() {
        return;
    }
    (hooks().blocking_wait)(&mut || {
        let seen = *EVENTS.lock().unwrap();
        if done() {
            return false;
        }
        let mut n = EVENTS.lock().unwrap();
        while *n == seen {
            n = SEV.wait(n).unwrap();
        }
        true
    });
}

/// `dsb ishst; sev`: wakes every waiter in [`wait_event`]. (Through a loom mutex, which also
/// orders; the firmware's `dsb ishst` orders the waker's earlier stores before the `sev` alone.)
pub fn wake_up_all() {
    *EVENTS.lock().unwrap() += 1;
    SEV.notify_all();
}

/// The firmware's `Completion` (smp). It blocks on a loom condition variable (inside the
/// registered blocking wait, so as an RCU extended quiescent state) instead of polling like
/// [`wait_event`]: with two or more waiters polling at once, loom explores schedules in which
/// they take turns forever and gives up on the model. A completion that is never signalled
/// leaves its waiter blocked, which loom reports as a deadlock (a lost hand-off).
pub struct Completion {
    done: loom::sync::Mutex<bool>,
    signalled: loom::sync::Condvar,
}

impl Completion {
    /// Done after one `complete`.
    pub fn new() -> Self {
        Completion { done: loom::sync::Mutex::new(false), signalled: loom::sync::Condvar::new() }
    }

    /// Signals it: the mutex orders what the signaller did before it for the waiter (the
    /// firmware's Release, paired with the waiter's Acquire).
    pub fn complete(&self) {
        *self.done.lock().unwrap() = true;
        self.signalled.notify_all();
    }

    /// Waits until it has been signalled (a blocking wait: it takes the context `&mut`).
    pub fn wait(&self, _ctx: &mut Ctx) {
        if *self.done.lock().unwrap() {
            return;
        }
        (hooks().blocking_wait)(&mut || {
            let mut done = self.done.lock().unwrap();
            while !*done {
                done = self.signalled.wait(done).unwrap();
            }
            false
        });
    }
}

impl Default for Completion {
    fn default() -> Self {
        Self::new()
    }
}

/// The firmware's `spin::Mutex`, as a loom mutex with the same `lock` and `try_lock` (a waiter
/// blocks in loom instead of spinning).
pub struct Mutex<T>(loom::sync::Mutex<T>);

/// The guard of [`Mutex`].
pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// An unlocked mutex.
    pub fn new(v: T) -> Self {
        Mutex(loom::sync::Mutex::new(v))
    }

    /// Takes it.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }

    /// Takes it if it is free.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.0.try_lock().ok()
    }
}
