//! The platform under loom: what `arch`, `percpu` and the kernel services are on AArch64, here
//! loom's atomics, fences and threads. Each loom thread stands for one core and owns its per-core
//! slots; the model's main thread is core 0 and [`spawn_cpu`] starts the others. An interrupt is a handler the
//! model runs on a core's thread between the registered entry and exit hooks ([`irq`], or
//! [`raise_irq`] to take it at that core's next barrier). Where this differs from ARMv8 is below.
//!
//! Negative controls: a barrier the primitives label in code ([`smp_mb!`](crate::smp_mb!),
//! [`ordering!`](crate::ordering!), [`grace_period!`](crate::grace_period!)) records its label
//! and its caller's file (`#[track_caller]`), and [`omit_barrier`] / [`omit_grace_period`] name
//! one by file and label to be left out of the following model runs: a fence is skipped, an
//! Acquire/Release access becomes Relaxed, a grace period is empty.
//!
//! # Where the C11 model loom checks differs from ARMv8
//!
//! loom explores the C11 memory model, not ARMv8's. Each difference, and which way it errs:
//!
//! * `smp_mb` (`dmb ish`) is modelled as `fence(SeqCst)`. ARMv8's DMB ISH orders every earlier
//!   access before every later one, which for the store-buffering pairs (A/D, B/C) is what a
//!   SeqCst fence gives in C11. Faithful for the patterns used here.
//! * `smp_rmb` (`dmb ishld`) is modelled as `fence(Acquire)` and `smp_wmb` (`dmb ishst`) as
//!   `fence(Release)`. DMB ISHLD orders earlier loads before later loads *and stores*, like an
//!   acquire fence; DMB ISHST orders only stores before stores, weaker than a release fence
//!   (which also orders earlier loads before later stores). So the model errs on the permissive
//!   side for `smp_wmb`: a missing load->store order behind an `smp_wmb` is not caught.
//! * An address dependency (`rcu_dereference`: load a pointer, then load through it) orders the
//!   second load on ARMv8 for free. C11 has no dependency ordering (`consume` is promoted to
//!   acquire), so the model must make such a load Acquire, which is stronger than the hardware:
//!   a bug that only a plain (non-dependent) load would expose is not caught. percpu_ref's fast
//!   path is the same pattern: it adds to the counter whose address is the word it loaded
//!   (Relaxed), so the model's `this_cpu_add_u64` starts with an Acquire fence, which orders
//!   every earlier load, not only the word's.
//! * A release store (`stlr`) followed by an acquire load (`ldar`) of another location is
//!   ordered on ARMv8 (RCsc) but not in C11 (where only SeqCst is). The model errs weak here: it
//!   can report a reordering that ARMv8 forbids; none of the primitives relies on this order.
//! * loom does not model load buffering (a load reading a store that comes later in program
//!   order on another thread), which ARMv8 allows. A barrier whose only job is to forbid load
//!   buffering cannot be shown to be needed by the model.
//! * The per-core add (`this_cpu_add`) is a restartable load-add-store on the firmware, atomic
//!   against this core's interrupts but not an exclusive access. In the model it is a relaxed
//!   load and store (`PercpuBox::this_cpu_add`, percpu_ref's `this_cpu_add_u64`), since other
//!   cores zero these counters (percpu-rwsem's fold, percpu_ref's `switch_to_percpu`): an add
//!   that raced with the zeroing would lose one of them there as it would on the hardware.
//! * loom itself is stronger than C11 in one place: it makes each SeqCst fence synchronise with
//!   every SeqCst fence that ran before it, in the order it runs them (C11's SeqCst fences order
//!   which stores later loads may read, but create no happens-before). A barrier whose order
//!   another barrier on a later path gives again (transitively, through any core's SeqCst fence)
//!   cannot be shown to be needed; `model/tests/rcu.rs` names RCU's barriers this hides.
//! * loom switches threads only at its own operations where its search finds conflicting
//!   accesses, and a fence is neither: a fence right after a store would always run with it. The
//!   model's `smp_mb` therefore first stores to a word nothing reads (a switch point that
//!   conflicts with every other core's barriers, so loom runs two cores' barriers in both
//!   orders, and that synchronises with nothing).
//! * Interrupts: a handler runs on its core's loom thread between the registered entry and exit
//!   hooks, at a point the model chooses (between two statements, or at the core's next
//!   `smp_mb`, before or after the fence); loom does not inject them anywhere else.
//! * `wake_up_all` (`dsb ishst; sev`) and `wait_event` (`wfe`): the model's waiter reads a count
//!   of wake-ups, checks its condition, and sleeps on a loom condition variable until the count
//!   moves (WFE's event latch), so a change nobody wakes the waiter for is a deadlock loom
//!   reports. On the firmware the next interrupt would end such a `wfe`: a lost wake-up there is
//!   a delay, which the model treats as a bug.
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use core::panic::Location;
use loom::sync::atomic::fence;
use std::boxed::Box;
use std::vec::Vec;

pub use core::sync::atomic::Ordering;

// The execution contexts are the platform's own: a model's core thread makes its `Ctx`
// (`unsafe { Ctx::new() }` at the start of the thread), interrupt handlers and RCU callbacks get
// an `&AtomicCtx`.
pub use crate::ctx::{AtomicCtx, Ctx};

/// Cores in the model (the per-core slots; a core with no thread keeps its initial state).
pub const NR_CPUS: usize = 3;
/// The firmware's `MAX_CPUS`: the length of RCU's per-core arrays.
pub const MAX_CPUS: usize = NR_CPUS;

loom::thread_local! {
    static CPU: Cell<usize> = Cell::new(0);
    // IRQ masking depth (IrqGuard) and whether an interrupt handler runs, on this core.
    static IRQ_MASKED: Cell<u32> = Cell::new(0);
    static IN_IRQ: Cell<bool> = Cell::new(false);
    // An interrupt raised on this core, taken at its next barrier (before or after the fence).
    static PENDING_IRQ: RefCell<Option<(IrqAt, Box<dyn FnOnce(&AtomicCtx)>)>> = RefCell::new(None);
}

/// This thread's core.
pub fn cpu_id() -> usize {
    CPU.with(|c| c.get())
}

/// The cores in the model.
pub fn online_cpus() -> impl Iterator<Item = usize> {
    0..NR_CPUS
}

/// The number of cores in the model.
pub fn num_online() -> usize {
    NR_CPUS
}

/// The cores this run set up (the firmware's `smp::num_possible`): all of the model's.
pub fn num_possible() -> usize {
    NR_CPUS
}

/// Cores with per-core counters (the firmware's `percpu::nr_areas`): all of the model's.
pub fn nr_areas() -> usize {
    NR_CPUS
}

/// What the idle loop and the blocking waits call (the firmware's `smp::IdleHooks`).
pub struct IdleHooks {
    /// Between work items (given the core's context, as the idle loop lends it).
    pub quiescent_point: fn(&mut Ctx),
    /// Before the idle sleep: whether the core may sleep.
    pub idle_enter: fn() -> bool,
    /// Whether the tick keeps running through the sleep (the models have no tick).
    pub idle_needs_tick: fn() -> bool,
    /// After the sleep.
    pub idle_exit: fn(),
    /// A blocking wait: calls `cond` until it returns false.
    pub blocking_wait: fn(&mut dyn FnMut() -> bool),
    /// Names a blocking wait where none may be.
    pub might_block: fn(),
    /// This core comes online ([`spawn_cpu`], before `f`).
    pub cpu_online: fn(),
    /// This core stops for good ([`spawn_cpu`], after `f`).
    pub cpu_dead: fn(),
}

/// The interrupt entry and exit hooks (RCU's `irq_enter`, `irq_exit`).
type IrqHooks = (fn() -> bool, fn(bool));

std::thread_local! {
    // Registrations (plain function pointers, not loom state): loom runs all of a model's
    // threads on the test's own OS thread, and each model registers at its start.
    static HOOKS: Cell<Option<&'static IdleHooks>> = const { Cell::new(None) };
    static IRQ_HOOKS: Cell<Option<IrqHooks>> = const { Cell::new(None) };
}

/// Installs the idle/online hooks (RCU's `init`, or the stand-in's).
///
/// # Safety
/// As on the firmware: at the start of a model, before its other cores run (the hooks decide
/// whether grace periods wait for a core).
pub unsafe fn set_idle_hooks(hooks: &'static IdleHooks) {
    HOOKS.with(|h| h.set(Some(hooks)));
}

fn hooks() -> &'static IdleHooks {
    HOOKS.with(|h| h.get()).expect("the model registers an RCU (rcu::init) before it runs")
}

/// Registers what every interrupt runs before and after its handler.
///
/// # Safety
/// As on the firmware: at the start of a model, before any interrupt is taken; `enter` and
/// `exit` are RCU's interrupt entry and exit hooks.
pub unsafe fn set_irq_context_hooks(enter: fn() -> bool, exit: fn(bool)) {
    IRQ_HOOKS.with(|h| h.set(Some((enter, exit))));
}

/// The tick is not modelled (a model drives grace periods from its own threads).
pub fn add_tick_hook(_f: fn(&AtomicCtx)) {}

/// The tick's rate (not modelled; the stall detector's period, which no model reaches).
pub fn tick_hz() -> u32 {
    100
}

/// Starts core `cpu` running `f`, between the registered `cpu_online` and `cpu_dead` hooks.
/// `f` is that core's thread of execution: it makes the core's [`Ctx`] at its start (a model's
/// main thread, core 0, makes its own after [`boot_cpu_online`]).
pub fn spawn_cpu(cpu: usize, f: impl FnOnce() + 'static) -> loom::thread::JoinHandle<()> {
    assert!(cpu > 0 && cpu < NR_CPUS, "core 0 is the model's main thread");
    let h = hooks();
    loom::thread::spawn(move || {
        CPU.with(|c| c.set(cpu));
        (h.cpu_online)();
        f();
        (h.cpu_dead)();
    })
}

/// Core 0 (the model's main thread) comes online: the registered `cpu_online` hook.
pub fn boot_cpu_online() {
    (hooks().cpu_online)()
}

// ---------------------------------------------------------------------------------------------
// Interrupts.
// ---------------------------------------------------------------------------------------------

/// Whether this core runs an interrupt handler.
pub fn in_interrupt() -> bool {
    IN_IRQ.with(|c| c.get())
}

/// Masks interrupts on this core for its lifetime (they nest).
pub struct IrqGuard(PhantomData<*const ()>);

impl IrqGuard {
    /// Masks interrupts.
    pub fn new() -> Self {
        IRQ_MASKED.with(|m| m.set(m.get() + 1));
        IrqGuard(PhantomData)
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        IRQ_MASKED.with(|m| m.set(m.get() - 1));
    }
}

/// Takes an interrupt on this core now: the registered entry hook, `handler` (interrupts
/// masked, in interrupt context, given the handler's `&AtomicCtx`), the exit hook. Panics if
/// interrupts are masked.
pub fn irq(handler: impl FnOnce(&AtomicCtx)) {
    assert_eq!(IRQ_MASKED.with(|m| m.get()), 0, "an interrupt taken with interrupts masked");
    let (enter, exit) = IRQ_HOOKS.with(|h| h.get()).expect("irq hooks registered (rcu::init)");
    let _masked = IrqGuard::new();
    IN_IRQ.with(|c| c.set(true));
    let token = enter();
    // SAFETY: an interrupt handler, between the entry and exit hooks (RCU's `irq_enter` makes
    // it a reader); the handler is given no `Ctx`, so it cannot pass a quiescent point.
    handler(unsafe { AtomicCtx::new() });
    exit(token);
    IN_IRQ.with(|c| c.set(false));
}

/// Where a raised interrupt is taken, relative to the barrier it waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IrqAt {
    /// Before the fence executes (after the code before it, e.g. a `ctr` store and then C).
    BeforeBarrier,
    /// After the fence (before the code after it, e.g. A and then a `ctr` store).
    AfterBarrier,
}

/// Raises an interrupt on this core, taken (as [`irq`]) at its next `smp_mb` with interrupts
/// unmasked: an exception arrives between two instructions, and a barrier is where the model
/// can say which two. Barriers run in the handler itself do not take it again.
pub fn raise_irq(at: IrqAt, handler: impl FnOnce(&AtomicCtx) + 'static) {
    PENDING_IRQ.with(|p| *p.borrow_mut() = Some((at, Box::new(handler))));
}

/// Whether an interrupt raised with [`raise_irq`] is still pending.
pub fn irq_pending() -> bool {
    PENDING_IRQ.with(|p| p.borrow().is_some())
}

fn take_irq(at: IrqAt) {
    if IRQ_MASKED.with(|m| m.get()) != 0 || in_interrupt() {
        return;
    }
    let h = PENDING_IRQ.with(|p| {
        let mut p = p.borrow_mut();
        match p.take() {
            Some((a, h)) if a == at => Some(h),
            other => {
                *p = other;
                None
            }
        }
    });
    if let Some(h) = h {
        irq(h);
    }
}

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

// ---------------------------------------------------------------------------------------------
// Barriers, and leaving one out.
// ---------------------------------------------------------------------------------------------

std::thread_local! {
    // (file, label) of the barrier left out; loom runs all its threads on the test's own thread.
    static OMITTED: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
    // Whether a run reached the barrier or grace period left out (a label nothing carries would
    // leave nothing out, and a control expecting no failure would pass for nothing).
    static OMITTED_REACHED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the barrier or grace period left out ([`omit_barrier`], [`omit_grace_period`]) was
/// reached since.
pub fn omitted_reached() -> bool {
    OMITTED_REACHED.with(|r| r.get())
}

/// Leaves the barrier labelled `label` in `file` (a path suffix, `crates/rcu/src/qs.rs`) out of
/// the model runs on this thread until [`restore_barriers`]: an [`smp_mb!`](crate::smp_mb!) with
/// that label skips its fence, an access whose [`ordering!`](crate::ordering!) carries it becomes
/// Relaxed. A label names one site per file (`"A@rcu_qs"` where a letter recurs).
pub fn omit_barrier(file: &'static str, label: &'static str) {
    OMITTED.with(|o| o.set(Some((file, label))));
    OMITTED_REACHED.with(|r| r.set(false));
}

/// Puts every barrier back.
pub fn restore_barriers() {
    OMITTED.with(|o| o.set(None));
    restore_grace_periods();
}

fn omitted(at: &Location<'_>, label: &str) -> bool {
    let hit = OMITTED.with(|o| matches!(o.get(), Some((f, l)) if l == label && at.file().ends_with(f)));
    if hit {
        OMITTED_REACHED.with(|r| r.set(true));
    }
    hit
}

crate::global! {
    // Written (Relaxed) by every full barrier and never read: see smp_mb.
    static BARRIER_POINT: loom::sync::atomic::AtomicUsize = loom::sync::atomic::AtomicUsize::new(0);
}

/// `dmb ish`, modelled as a SeqCst fence. A raised interrupt ([`raise_irq`]) is taken here.
///
/// loom switches threads only at its own operations, and only where its exploration finds
/// accesses that conflict; a fence is no such operation. A fence right after a store would
/// then run together with it, so no other core could ever see the store before the fence, and
/// a missing barrier just before the store would be hidden by the one just after it (loom makes
/// a SeqCst fence synchronise with every SeqCst fence it ran earlier). So every full barrier
/// first stores to one shared word, a point where another core may run, and an access that
/// conflicts with every other core's barriers, so loom also runs two cores' barriers in both
/// orders. Nothing reads the word: a store alone synchronises with nothing (a read-modify-write
/// would, through the fences before it: C11's fence-to-fence synchronisation). A barrier a
/// negative control leaves out leaves out its point too, as the firmware without it has none.
pub fn smp_mb() {
    smp_mb_at(None);
}

/// [`smp_mb!`](crate::smp_mb!): a full barrier a negative control may leave out by its label.
#[track_caller]
pub fn smp_mb_labelled(label: &'static str) {
    smp_mb_at(Some((Location::caller(), label)));
}

fn smp_mb_at(labelled: Option<(&Location<'_>, &str)>) {
    take_irq(IrqAt::BeforeBarrier);
    if !labelled.is_some_and(|(at, l)| omitted(at, l)) {
        BARRIER_POINT.store(0, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }
    take_irq(IrqAt::AfterBarrier);
}

/// `dmb ishld`, modelled as an Acquire fence.
pub fn smp_rmb() {
    fence(Ordering::Acquire);
}

/// `dmb ishst`, modelled as a Release fence (stronger than the hardware: see the module docs).
pub fn smp_wmb() {
    fence(Ordering::Release);
}

/// [`ordering!`](crate::ordering!): `o`, or Relaxed if a negative control left this label out.
#[track_caller]
pub fn labelled_ordering(o: Ordering, label: &'static str) -> Ordering {
    if omitted(Location::caller(), label) {
        Ordering::Relaxed
    } else {
        o
    }
}

/// The ordering an access uses (a negative control degrades a labelled one at its call site,
/// through [`labelled_ordering`]).
fn order(o: Ordering, _at: &Location<'_>) -> Ordering {
    o
}

macro_rules! atomic {
    ($(#[$m:meta])* $name:ident, $t:ty) => {
        $(#[$m])*
        /// loom's atomic under the platform's name (a labelled access's ordering comes from
        /// [`ordering!`](crate::ordering!)).
        pub struct $name(loom::sync::atomic::$name);

        impl $name {
            /// A new atomic (inside a model execution).
            #[track_caller]
            pub fn new(v: $t) -> Self {
                $name(loom::sync::atomic::$name::new(v))
            }
            /// Load.
            #[track_caller]
            pub fn load(&self, o: Ordering) -> $t {
                self.0.load(order(o, Location::caller()))
            }
            /// Store.
            #[track_caller]
            pub fn store(&self, v: $t, o: Ordering) {
                self.0.store(v, order(o, Location::caller()))
            }
            /// Swap.
            #[track_caller]
            pub fn swap(&self, v: $t, o: Ordering) -> $t {
                self.0.swap(v, order(o, Location::caller()))
            }
            /// Compare and exchange.
            #[track_caller]
            pub fn compare_exchange(&self, c: $t, n: $t, s: Ordering, f: Ordering) -> Result<$t, $t> {
                let at = Location::caller();
                self.0.compare_exchange(c, n, order(s, at), order(f, at))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new(Default::default())
            }
        }
    };
}

macro_rules! atomic_int {
    ($name:ident, $t:ty) => {
        atomic!($name, $t);

        impl $name {
            /// Fetch-add.
            #[track_caller]
            pub fn fetch_add(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_add(v, order(o, Location::caller()))
            }
            /// Fetch-sub.
            #[track_caller]
            pub fn fetch_sub(&self, v: $t, o: Ordering) -> $t {
                self.0.fetch_sub(v, order(o, Location::caller()))
            }
        }
    };
}

atomic!(AtomicBool, bool);
atomic_int!(AtomicU32, u32);
atomic_int!(AtomicU64, u64);
atomic_int!(AtomicUsize, usize);
atomic_int!(AtomicIsize, isize);

/// loom's `AtomicPtr` under the firmware's name, with the firmware's `const fn new` (RCU's list
/// head is built in a `const fn`): the loom atomic is created at its first access, inside the
/// execution that uses it. loom counts that creation as a write, so a model accesses the pointer
/// once before other threads share it.
pub struct AtomicPtr<T> {
    init: *mut T,
    cell: std::sync::OnceLock<loom::sync::atomic::AtomicPtr<T>>,
}

// SAFETY: `init` is a pointer value only copied into the loom atomic (never dereferenced here),
// as `core::sync::atomic::AtomicPtr` is Send and Sync for any T.
unsafe impl<T> Send for AtomicPtr<T> {}
// SAFETY: as Send.
unsafe impl<T> Sync for AtomicPtr<T> {}

impl<T> AtomicPtr<T> {
    /// An atomic pointer holding `p`.
    pub const fn new(p: *mut T) -> Self {
        AtomicPtr { init: p, cell: std::sync::OnceLock::new() }
    }

    fn get(&self) -> &loom::sync::atomic::AtomicPtr<T> {
        self.cell.get_or_init(|| loom::sync::atomic::AtomicPtr::new(self.init))
    }

    /// The value, with exclusive access (a later access creates the loom atomic afresh).
    pub fn get_mut(&mut self) -> &mut *mut T {
        if let Some(a) = self.cell.take() {
            self.init = a.into_inner();
        }
        &mut self.init
    }

    /// Load.
    #[track_caller]
    pub fn load(&self, o: Ordering) -> *mut T {
        self.get().load(order(o, Location::caller()))
    }

    /// Store.
    #[track_caller]
    pub fn store(&self, v: *mut T, o: Ordering) {
        self.get().store(v, order(o, Location::caller()))
    }

    /// Swap.
    #[track_caller]
    pub fn swap(&self, v: *mut T, o: Ordering) -> *mut T {
        self.get().swap(v, order(o, Location::caller()))
    }

    /// Compare and exchange.
    #[track_caller]
    pub fn compare_exchange(&self, c: *mut T, n: *mut T, s: Ordering, f: Ordering) -> Result<*mut T, *mut T> {
        let at = Location::caller();
        self.get().compare_exchange(c, n, order(s, at), order(f, at))
    }
}

// ---------------------------------------------------------------------------------------------
// Spinning, waiting, locks.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Per-core data, statics, the counter.
// ---------------------------------------------------------------------------------------------

/// This core's per-core base (the firmware's TPIDR_EL1): here the core number.
#[derive(Clone, Copy)]
pub struct PercpuBase(usize);

/// Reads this core's base.
pub fn percpu_base() -> PercpuBase {
    PercpuBase(cpu_id())
}

/// The firmware's per-cpu allocation failure (never happens in the model).
#[derive(Debug)]
pub struct PercpuAllocError;

/// One `u32` slot per core. Only its own core adds to a slot, with the firmware's restartable
/// load-add-store: a relaxed load and store here, not a `fetch_add`, so that an add racing with
/// another core's `remote_set` (percpu-rwsem's fold, if the counts were not frozen) loses one
/// of the two, as it would on the hardware.
///
/// Use after free is a failure loom reports: every access to the slots is also a read of a loom
/// cell that dropping the box writes (as the allocator handing the memory to its next user
/// would), so loom fails an execution in which an access is not ordered before the drop by
/// happens-before (whichever ran first), and an access that runs after the drop fails the
/// "used after it was freed" check.
pub struct PercpuBox<T> {
    slots: Option<Box<Slots>>,
    _t: PhantomData<T>,
}

/// A box's memory: the per-core slots and the cell that stands for their allocation.
struct Slots {
    /// Read (shared) by every access to `ctr`, written by the drop (the free).
    alloc: loom::cell::UnsafeCell<()>,
    ctr: Vec<AtomicU64>,
}

// SAFETY: the cell holds nothing (`()`): it is only the allocation's access record, read and
// written through loom, which checks every access against the others; the slots are atomics.
unsafe impl Sync for Slots {}
// SAFETY: as Sync.
unsafe impl Send for Slots {}

impl Slots {
    /// Core `cpu`'s slot, for one access: fails if the box was freed before it (in the order
    /// the execution ran them), and records the access for loom's check against the free.
    fn at<R>(&self, cpu: usize, f: impl FnOnce(&AtomicU64) -> R) -> R {
        let me = self as *const Slots as usize;
        let freed = FREED_SLOTS.with(|f| f.borrow().contains(&me));
        assert!(!freed, "per-cpu counter used after it was freed");
        self.alloc.with(|_| f(&self.ctr[cpu]))
    }
}

impl<T> PercpuBox<T> {
    fn slots(&self) -> &Slots {
        self.slots.as_deref().expect("a box is only emptied by its drop")
    }
}

impl PercpuBox<u64> {
    /// Every core's slot set to `init`.
    pub fn new(init: u64) -> Result<Self, PercpuAllocError> {
        let ctr = (0..NR_CPUS).map(|_| AtomicU64::new(init)).collect();
        Ok(PercpuBox { slots: Some(Box::new(Slots { alloc: loom::cell::UnsafeCell::new(()), ctr })), _t: PhantomData })
    }

    /// `this_cpu_add`: no barrier.
    pub fn this_cpu_add(&self, delta: u64) {
        self.add_at(cpu_id(), delta);
    }

    /// The load-add-store on `cpu`'s slot (its own core's).
    fn add_at(&self, cpu: usize, delta: u64) {
        self.slots().at(cpu, |s| s.store(s.load(Ordering::Relaxed).wrapping_add(delta), Ordering::Relaxed));
    }

    /// `this_cpu_inc`.
    pub fn this_cpu_inc(&self) {
        self.this_cpu_add(1);
    }

    /// `this_cpu_dec`.
    pub fn this_cpu_dec(&self) {
        self.this_cpu_add(u64::MAX);
    }

    /// `this_cpu_inc` with the base already read.
    pub fn this_cpu_inc_at(&self, base: PercpuBase) {
        self.add_at(base.0, 1);
    }

    /// `this_cpu_dec` with the base already read.
    pub fn this_cpu_dec_at(&self, base: PercpuBase) {
        self.add_at(base.0, u64::MAX);
    }

    /// Wrapping sum over `cpus`, relaxed loads.
    pub fn sum(&self, cpus: impl Iterator<Item = usize>) -> u64 {
        cpus.fold(0u64, |s, c| s.wrapping_add(self.slots().at(c, |v| v.load(Ordering::Relaxed))))
    }
}

/// A static per-core variable (declared with [`percpu!`]): one slot per loom thread (= core),
/// fresh in every execution. Only its own core reaches it, as on the firmware.
pub struct Percpu<T: 'static>(pub &'static loom::thread::LocalKey<Cell<T>>);

impl<T: Copy + 'static> Percpu<T> {
    /// This core's value.
    pub fn get(&self) -> T {
        self.0.with(|c| c.get())
    }

    /// Sets this core's value.
    pub fn set(&self, v: T) {
        self.0.with(|c| c.set(v))
    }
}

/// The firmware's `percpu!`: each static becomes a [`Percpu`] over a loom thread-local.
#[macro_export]
macro_rules! percpu {
    ($($(#[$m:meta])* $vis:vis static $name:ident : $ty:ty = $init:expr;)+) => {$(
        $(#[$m])*
        $vis static $name: $crate::Percpu<$ty> = {
            $crate::__private::loom::thread_local! {
                static SLOT: core::cell::Cell<$ty> = core::cell::Cell::new($init);
            }
            $crate::Percpu(&SLOT)
        };
    )+};
}

/// The firmware's per-core statics that other cores read (`percpu_shared!`): one element per
/// modelled core, built afresh for each execution.
pub struct PercpuShared<T>(Vec<T>);

impl<T> PercpuShared<T> {
    /// One `init()` per core.
    pub fn new(init: impl Fn() -> T) -> Self {
        PercpuShared((0..NR_CPUS).map(|_| init()).collect())
    }

    /// This core's.
    pub fn local(&self) -> &T {
        &self.0[cpu_id()]
    }

    /// Core `cpu`'s.
    pub fn remote(&self, cpu: usize) -> &T {
        &self.0[cpu]
    }
}

/// Per-core statics other cores read: one element per modelled core, built afresh for each
/// execution.
#[macro_export]
macro_rules! percpu_shared {
    ($($(#[$m:meta])* static $name:ident : $ty:ty = $init:expr;)+) => {
        $crate::__private::loom::lazy_static! {
            $($(#[$m])* static ref $name: $crate::PercpuShared<$ty> =
                $crate::PercpuShared::new(|| $init);)+
        }
    };
}

/// The firmware's `static`, as a per-execution lazy value (loom atomics have no `const` new).
#[macro_export]
macro_rules! global {
    ($($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;)+) => {
        $crate::__private::loom::lazy_static! { $($(#[$m])* static ref $name: $t = $init;)+ }
    };
}

/// The firmware's per-core `static` array: a per-execution lazy array of `$init` per core.
#[macro_export]
macro_rules! global_array {
    ($(#[$m:meta])* static $name:ident: [$t:ty; $n:expr] = $init:expr;) => {
        $crate::__private::loom::lazy_static! { $(#[$m])* static ref $name: [$t; $n] = core::array::from_fn(|_| $init); }
    };
}

/// The counter is not modelled: it stands still.
pub fn counter_relaxed() -> u64 {
    0
}

/// The counter frequency (any non-zero value: the counter stands still).
pub fn counter_freq() -> u64 {
    1
}

/// Counter ticks to ns (the counter stands still).
pub fn ticks_to_ns(ticks: u64) -> u64 {
    ticks
}

/// A diagnostic line: the model prints it (the stall report, which no model reaches; the
/// misuse reports, which the models count instead).
pub fn log(_level: crate::Level, args: core::fmt::Arguments<'_>) {
    std::println!("{args}");
}

// ---------------------------------------------------------------------------------------------
// percpu_ref (`crates/sync/src/percpu_ref/`): the per-core counter reached through the word's template
// address, the atomic count, defmt, and leaving out the grace period of a labelled `call_rcu`.
// ---------------------------------------------------------------------------------------------

/// The firmware's TPIDR_EL1: here this thread's core number, as [`percpu_base`] is.
pub fn tpidr() -> usize {
    cpu_id()
}

impl PercpuBase {
    /// The value [`tpidr`] returns on this core.
    pub fn get(self) -> usize {
        self.0
    }
}

impl PercpuBox<u64> {
    /// The address the firmware's word holds: here the slots' address, which
    /// [`this_cpu_add_u64`] indexes with the running core.
    pub fn template_addr(&self) -> usize {
        self.slots() as *const Slots as usize
    }

    /// Core `cpu`'s slot.
    pub fn remote_get(&self, cpu: usize) -> u64 {
        self.slots().at(cpu, |s| s.load(Ordering::Relaxed))
    }

    /// Sets core `cpu`'s slot (a relaxed store, as the firmware's plain store).
    ///
    /// # Safety
    /// As on the firmware: core `cpu` is not adding to it meanwhile. The model checks what
    /// breaking that does (a lost add), not memory safety, which does not depend on it here.
    pub unsafe fn remote_set(&self, cpu: usize, v: u64) {
        self.slots().at(cpu, |s| s.store(v, Ordering::Relaxed));
    }
}

std::thread_local! {
    // Slot arrays of dropped boxes (kept allocated; loom runs all threads on this OS thread).
    static FREED_SLOTS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

impl<T> Drop for PercpuBox<T> {
    fn drop(&mut self) {
        // The firmware gives the slots back to its allocator. Here the memory is kept and its
        // address remembered, so that an add through a stale word (a broken variant's) is a
        // failure loom reports, not a use after free in the test process. The free itself is a
        // write of the allocation's cell (the allocator's next user writing the memory): loom
        // fails the execution if an access to the slots is not ordered before it.
        let Some(slots) = self.slots.take() else { return };
        slots.alloc.with_mut(|_| ());
        let slots = Box::leak(slots);
        FREED_SLOTS.with(|f| f.borrow_mut().push(slots as *const Slots as usize));
    }
}

/// The firmware's `this_cpu_add_u64`: adds `delta` to this core's copy of the per-cpu `u64`
/// whose template address is `ptr` ([`PercpuBox::template_addr`]). A relaxed load and store, as
/// the firmware's restartable `ldr`/`add`/`str` is (not an exclusive access): an add racing
/// with `remote_set` can lose either, as on the hardware.
///
/// # Safety
/// `ptr` is the template address of a `PercpuBox<u32>` (the model keeps dropped ones' slots
/// allocated and fails an add to them: "used after it was freed" if the drop ran first, loom's
/// causality check on the allocation's cell if the add and the drop are not ordered).
pub unsafe fn this_cpu_add_u64(ptr: *mut u64, delta: u64) {
    // The caller's counter address is the word it loaded (Relaxed); on ARMv8 the address
    // dependency orders this access after that load. C11 has no dependency ordering: an
    // Acquire fence stands for it (stronger: it orders every earlier load).
    fence(Ordering::Acquire);
    // SAFETY: by the caller's contract `ptr` is a box's `Slots` address; the model never frees
    // that memory (a dropped box's is leaked, and `at` fails the access).
    let slots = unsafe { &*(ptr as *const Slots) };
    slots.at(cpu_id(), |slot| {
        let v = slot.load(Ordering::Relaxed);
        slot.store(v.wrapping_add(delta), Ordering::Relaxed);
    });
}

impl Clone for PercpuAllocError {
    fn clone(&self) -> Self {
        *self
    }
}

impl Copy for PercpuAllocError {}

impl PartialEq for PercpuAllocError {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for PercpuAllocError {}

/// The firmware's array of atomics (`[const { T::new(v) }; N]` there): built at run time,
/// since loom's atomics have no `const` constructor.
#[macro_export]
macro_rules! atomic_array {
    ($t:ident::new($v:expr); $n:expr) => {
        core::array::from_fn(|_| $t::new($v))
    };
}

atomic_int!(AtomicI64, i64);

impl AtomicI64 {
    /// Compare and exchange, weak (loom's never fails spuriously).
    #[track_caller]
    pub fn compare_exchange_weak(&self, c: i64, n: i64, s: Ordering, f: Ordering) -> Result<i64, i64> {
        let at = Location::caller();
        self.0.compare_exchange_weak(c, n, order(s, at), order(f, at))
    }
}

std::thread_local! {
    // (file, label) of the grace period left out, and the label of the next `call_rcu` or
    // `synchronize_rcu` on this thread ([`label_grace_period`]).
    static NO_GRACE_PERIOD: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
}

loom::thread_local! {
    static NEXT_GP_LABEL: Cell<Option<(&'static Location<'static>, &'static str)>> = Cell::new(None);
}

/// Leaves out the grace period of the `call_rcu` or `synchronize_rcu` labelled `label` in `file`
/// ([`grace_period!`](crate::grace_period!)) in the model runs on this thread until
/// [`restore_barriers`]: the RCU stand-in queues that callback to run without one (percpu_ref's
/// G: the firmware's `ref-fold-no-gp` fault, per run), or returns at once (rcu_sync's G).
pub fn omit_grace_period(file: &'static str, label: &'static str) {
    NO_GRACE_PERIOD.with(|o| o.set(Some((file, label))));
    OMITTED_REACHED.with(|r| r.set(false));
}

/// [`grace_period!`](crate::grace_period!): labels the next grace period this core asks for.
#[track_caller]
pub fn label_grace_period(label: &'static str) {
    let at = Location::caller(); // here: inside the closure below it would be this file's
    NEXT_GP_LABEL.with(|n| n.set(Some((at, label))));
}

/// Whether the grace period this core asks for now was left out (and forgets its label).
pub fn grace_period_omitted() -> bool {
    let next = NEXT_GP_LABEL.with(|n| n.take());
    let hit = next.is_some_and(|(at, l)| {
        NO_GRACE_PERIOD.with(|o| matches!(o.get(), Some((f, label)) if label == l && at.file().ends_with(f)))
    });
    if hit {
        OMITTED_REACHED.with(|r| r.set(true));
    }
    hit
}

fn restore_grace_periods() {
    NO_GRACE_PERIOD.with(|o| o.set(None));
}
