//! The host machine: threads that stand for cores, so the primitives run under `cargo test` on
//! an ordinary (ELF) host, as liburcu's QSBR flavour runs on registered threads.
//!
//! [`boot`] starts the cores: one thread each, running an idle loop as the firmware's cores do
//! (work items, a quiescent point between them, an extended quiescent state while asleep). Code
//! reaches a core through [`on_cpu`] or [`on_each_cpu`], which run a closure there as a work
//! item, with the core's [`Ctx`], and wait for it. The thread that calls them is not a core:
//! per-cpu data on it is a named panic, and it cannot make a context.
//!
//! ```
//! use quiescent_platform::{host, percpu, Ctx};
//!
//! percpu! {
//!     static HITS: u32 = 0;
//! }
//!
//! host::boot(4, || {}); // a kernel registers its RCU here (`quiescent_rcu::init`)
//! let seen = host::on_each_cpu(|_ctx: &mut Ctx| {
//!     HITS.this_cpu_add(1);
//!     (quiescent_platform::cpu_id(), HITS.get())
//! });
//! assert_eq!(seen, [(0, 1), (1, 1), (2, 1), (3, 1)]);
//! ```
//!
//! What is the same as on the firmware: the per-cpu areas and their allocator (the template is
//! the `quiescent_percpu` section, copied per core), the online mask, the registered hooks, the
//! waits, and the primitives' code, barriers and all. What differs, and why it does not weaken
//! what the primitives rely on:
//!
//! * Barriers are C11 fences ([`arch`](mod@crate::arch)): the compiler and the host CPU keep at
//!   least the order the firmware's DMBs give (on x86-64 more: stores are not reordered with
//!   stores).
//! * Interrupts are taken only where a core waits (`wfe` in a blocking wait, the idle sleep),
//!   spins (`cpu_relax`) or unmasks: a call from another core ([`Kernel::call_on`], which
//!   `rcu_barrier` uses) waits until the target core gets there, as it waits on the firmware for
//!   a core with interrupts masked. The tick is taken at the same points, `HZ` times a second at
//!   most, so RCU's stall detector runs.
//! * The per-core add is a relaxed load and store (no interrupt can fall between them).
//! * Cores never leave: they idle when no work is queued, for the rest of the process.
//! * Panics unwind: a panic in a work item goes back to the caller of `on_cpu`, and one in a
//!   `call_function_single` closure to the caller of that (the cores go on); one in another
//!   interrupt handler (a tick hook), an RCU callback or elsewhere on a core ends the process by
//!   name, as any panic ends the run on the firmware (the core's state could not be trusted).
//!
//! One machine per process: the first [`boot`] starts it and later calls (other tests in the
//! same binary) find it running. [`on_cpu`] and [`on_each_cpu`] are serialised, so tests that
//! run in parallel take turns on the machine.

pub(crate) mod irq;

use crate::ctx::{AtomicCtx, Ctx};
use crate::{arch, cpu, percpu, Kernel, Level};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

/// Ticks per second on each core that takes interrupts.
pub const HZ: u64 = 100;

/// How long an idle core sleeps without an event before it looks again.
const IDLE_SLEEP: Duration = Duration::from_millis(20);

type Work = Box<dyn FnOnce(&mut Ctx) + Send>;
type Call = Box<dyn FnOnce(&AtomicCtx) + Send>;

/// One core's queues: work items for its idle loop, calls for its interrupt context.
pub(crate) struct Core {
    work: Mutex<VecDeque<Work>>,
    calls: Mutex<VecDeque<Call>>,
    /// Calls queued: one load for the check at every interrupt point.
    ncalls: AtomicU64,
}

impl Core {
    fn push_work(&self, w: Work) {
        lock(&self.work).push_back(w);
        irq::signal_event();
    }

    fn pop_work(&self) -> Option<Work> {
        lock(&self.work).pop_front()
    }

    fn push_call(&self, c: Call) {
        lock(&self.calls).push_back(c);
        self.ncalls.fetch_add(1, Ordering::SeqCst);
        irq::signal_event();
    }

    pub(crate) fn has_calls(&self) -> bool {
        self.ncalls.load(Ordering::SeqCst) != 0
    }

    pub(crate) fn pop_call(&self) -> Option<Call> {
        let c = lock(&self.calls).pop_front()?;
        self.ncalls.fetch_sub(1, Ordering::SeqCst);
        Some(c)
    }

    fn idle(&self) -> bool {
        lock(&self.work).is_empty() && !self.has_calls()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in a work item is the caller's (on_cpu re-raises it); the queues stay usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The cores' queues, made before any core starts.
static CORES: OnceLock<Box<[Core]>> = OnceLock::new();
/// The number of cores, once all of them run.
static BOOTED: OnceLock<usize> = OnceLock::new();
/// Serialises the callers of `on_cpu` and `on_each_cpu`.
static TURN: Mutex<()> = Mutex::new(());

pub(crate) fn core_of(cpu: usize) -> &'static Core {
    &CORES.get().expect("quiescent_platform::host: boot() first")[cpu]
}

/// Starts the host machine with `cores` cores (1..=[`MAX_CPUS`](crate::MAX_CPUS)), running
/// `init` on core 0 first, before the other cores start and with interrupts masked: where a
/// kernel registers its RCU (`|| unsafe { quiescent_rcu::init(Default::default()) }`, whose
/// contract this is). Returns once every core runs its idle loop.
///
/// One machine per process: a later call finds it running and returns (its `init` is dropped);
/// it panics if `cores` differs from the running machine's.
///
/// Context: a thread that is not a core; may block.
pub fn boot(cores: usize, init: impl FnOnce() + Send + 'static) {
    assert!(!arch::is_core(), "host::boot called on a core");
    assert!((1..=crate::MAX_CPUS).contains(&cores), "host::boot: {} cores (1..={})", cores, crate::MAX_CPUS);
    let running = *BOOTED.get_or_init(|| {
        CORES
            .set(
                (0..cores)
                    .map(|_| Core { work: Mutex::default(), calls: Mutex::default(), ncalls: AtomicU64::new(0) })
                    .collect(),
            )
            .unwrap_or_else(|_| unreachable!("CORES is set only here, once"));
        let (tx, rx) = std::sync::mpsc::channel();
        spawn_core(0, move || boot_core0(cores, init, tx));
        rx.recv().expect("host: core 0 failed to boot the machine");
        cores
    });
    assert_eq!(running, cores, "host::boot: the machine already runs {} cores", running);
}

fn spawn_core(cpu: usize, f: impl FnOnce() + Send + 'static) {
    let core = move || {
        // A panic outside a work item (whose panics go back to its caller) would end this
        // core's thread while it counts as online: grace periods and calls would wait for it.
        if let Err(p) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)) {
            fatal("a core panicked outside a work item", &*p);
        }
    };
    std::thread::Builder::new().name(std::format!("core {cpu}")).spawn(core).expect("host: cannot start a core thread");
}

/// Ends the process after a panic the machine cannot survive (on the firmware every panic ends
/// the run), whose payload is `p`. The panic hook has printed its message, but under libtest
/// into a test's output capture that an abort discards (see [`reraise`]): the line says it again.
pub(crate) fn fatal(what: &str, p: &(dyn core::any::Any + Send)) -> ! {
    use std::io::Write;
    let why = payload_message(p).map(|m| std::format!(" ({m})")).unwrap_or_default();
    // One write, so that other cores' panic messages cannot split the line.
    let line =
        std::format!("host: {what} on {}: fatal, aborting{why}\n", std::thread::current().name().unwrap_or("a thread"));
    let _ = std::io::stderr().write_all(line.as_bytes());
    std::process::abort()
}

/// A panic payload's message, if it is text (`panic!`'s payloads).
fn payload_message(p: &(dyn core::any::Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<std::string::String>().map(|s| s.as_str()))
}

/// Waits, on a thread that is not a core, until the per-cpu areas of every core exist (a
/// dynamic per-cpu allocation initialises the areas that exist when it is made); a named panic
/// before `boot`. Cores need no wait: the areas exist before any core runs.
pub(crate) fn wait_for_areas() {
    if arch::is_core() {
        return;
    }
    assert!(CORES.get().is_some(), "per-cpu allocation before host::boot: the per-cpu areas do not exist yet");
    BOOTED.wait();
}

/// Core 0: the per-cpu areas, `init`, then the other cores; then its idle loop.
fn boot_core0(cores: usize, init: impl FnOnce(), booted: std::sync::mpsc::Sender<()>) {
    // SAFETY: this thread runs alone on the machine (the other cores start below), before any
    // per-cpu access or dynamic per-cpu allocation; each area is a fresh allocation of the
    // size and alignment `add_area` asks for, leaked (cores never leave).
    unsafe {
        cpu::set_possible(cores);
        percpu::init_areas();
        for c in 1..cores {
            let layout = core::alloc::Layout::from_size_align(percpu::AREA_SIZE, percpu::AREA_ALIGN)
                .expect("the per-cpu area's layout is valid");
            let area = std::alloc::alloc_zeroed(layout);
            assert!(!area.is_null(), "host: no memory for core {}'s per-cpu area", c);
            percpu::add_area(c, area);
        }
        percpu::set_local_area(0);
    }
    irq::mask(); // cores start with interrupts masked, as on the firmware
    init();
    crate::set_tick_hz(HZ as u32);
    // SAFETY: core 0 comes online (its bit is set from the start), interrupts masked.
    (unsafe { crate::idle_hooks() }.cpu_online)();
    irq::restore(0);
    let (tx, rx) = std::sync::mpsc::channel();
    for c in 1..cores {
        let tx = tx.clone();
        spawn_core(c, move || {
            // SAFETY: core 0 initialised this core's area; this thread is core `c` and no other.
            unsafe { percpu::set_local_area(c) };
            irq::mask();
            // SAFETY: bring-up, on core `c`, interrupts masked: the online hook, then the bit
            // (set_online's contract: after the hook, before the first reader).
            unsafe {
                (crate::idle_hooks().cpu_online)();
                cpu::set_online(c);
            }
            irq::restore(0);
            tx.send(()).expect("core 0 waits for every core");
            idle_loop(c)
        });
    }
    for _ in 1..cores {
        rx.recv().expect("host: a core failed to come online");
    }
    booted.send(()).expect("boot waits for core 0");
    idle_loop(0)
}

/// The idle loop of a host core (the firmware's `smp::idle_loop`): run work, pass a quiescent
/// point after each item, sleep as an extended quiescent state when there is none.
fn idle_loop(me: usize) -> ! {
    let core = core_of(me);
    // SAFETY: this loop is the core's thread of execution: RCU watches it (the online hook ran,
    // and `idle_exit` runs after every sleep), and nothing else on this core holds a context.
    let ctx = &mut unsafe { Ctx::new() };
    // SAFETY: this is the kernel's idle loop: the quiescent point between work items, and
    // `idle_enter`/`idle_exit` around the sleep with interrupts masked.
    let hooks = unsafe { crate::idle_hooks() };
    loop {
        if let Some(w) = core.pop_work() {
            w(ctx);
            (hooks.quiescent_point)(ctx);
            continue;
        }
        // The event count before `idle_enter` and the queue checks: a wake-up sent after any
        // of them (work queued, a grace period RCU wakes this core for) ends the sleep.
        let seen = irq::events();
        let flags = irq::mask();
        if (hooks.idle_enter)() && core.idle() {
            irq::sleep_while(seen, IDLE_SLEEP);
        }
        (hooks.idle_exit)();
        irq::restore(flags); // pending calls are taken here
        (hooks.quiescent_point)(ctx);
    }
}

/// The result slot a caller of `on_cpu`/`on_each_cpu` waits on.
struct Slot<R> {
    result: Mutex<Option<std::thread::Result<R>>>,
    filled: Condvar,
}

impl<R> Slot<R> {
    fn new() -> Arc<Self> {
        Arc::new(Slot { result: Mutex::new(None), filled: Condvar::new() })
    }

    fn fill(&self, r: std::thread::Result<R>) {
        *lock(&self.result) = Some(r);
        self.filled.notify_all();
    }

    fn wait(&self) -> std::thread::Result<R> {
        let mut g = lock(&self.result);
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = self.filled.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Queues `f` on core `cpu` as a work item that fills `slot` once `f` has returned (or
/// panicked) and been dropped.
///
/// # Safety
/// The caller waits for `slot` before anything `f` borrows goes away (the work item's type
/// says `'static`; `f` need not be).
unsafe fn submit<'a, R: Send + 'a>(cpu: usize, slot: Arc<Slot<R>>, f: impl FnOnce(&mut Ctx) -> R + Send + 'a) {
    let w: Box<dyn FnOnce(&mut Ctx) + Send + 'a> = Box::new(move |ctx: &mut Ctx| {
        let r = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| f(ctx)));
        slot.fill(r);
    });
    // SAFETY: only the lifetime changes; the caller's contract keeps what `f` borrows alive
    // until the item has run (`f` is consumed before the slot is filled).
    let w: Work = unsafe { core::mem::transmute::<Box<dyn FnOnce(&mut Ctx) + Send + 'a>, Work>(w) };
    core_of(cpu).push_work(w);
}

fn check_caller(cpu: usize) -> usize {
    let cores = *BOOTED.get().expect("quiescent_platform::host: boot() first");
    assert!(
        !arch::is_core(),
        "host::on_cpu/on_each_cpu called on a core: a core waits through the platform (wait_event, call_function_single)"
    );
    assert!(cpu < cores, "host::on_cpu: core {} of {}", cpu, cores);
    cores
}

/// Runs `f` on core `cpu` as a work item of its idle loop, with the core's [`Ctx`], and returns
/// its result (a panic in `f` is raised again here). `f` may borrow from the caller.
///
/// Context: a thread that is not a core; blocks until `f` has run.
pub fn on_cpu<R: Send>(cpu: usize, f: impl FnOnce(&mut Ctx) -> R + Send) -> R {
    check_caller(cpu);
    let _turn = lock(&TURN);
    let slot = Slot::new();
    // SAFETY: the slot is waited for below, before `f`'s borrows can end; nothing between the
    // two can unwind.
    unsafe { submit(cpu, slot.clone(), f) };
    match slot.wait() {
        Ok(r) => r,
        Err(p) => reraise(cpu, p),
    }
}

/// Runs `f` on every core at once, each as a work item with that core's [`Ctx`], and returns
/// the results in core order (a panic on any core is raised again here, after all have run).
///
/// Context: a thread that is not a core; blocks until every core has run `f`.
pub fn on_each_cpu<R: Send>(f: impl Fn(&mut Ctx) -> R + Sync) -> Vec<R> {
    let cores = check_caller(0);
    let _turn = lock(&TURN);
    let slots: Vec<_> = (0..cores).map(|_| Slot::new()).collect();
    let f = &f;
    for (c, s) in slots.iter().enumerate() {
        // SAFETY: every slot is waited for below, before `f` (borrowed) goes away; nothing
        // between the two can unwind.
        unsafe { submit(c, s.clone(), f) };
    }
    let results: Vec<_> = slots.iter().map(|s| s.wait()).collect();
    results.into_iter().enumerate().map(|(c, r)| r.unwrap_or_else(|p| reraise(c, p))).collect()
}

/// Raises a work item's panic (`p`, from core `cpu`) again on the caller of `on_cpu` or
/// `on_each_cpu`, after printing its message there. The panic hook printed it on the core, but
/// under libtest into the output capture of the test whose `boot` started the cores (threads
/// inherit it), which libtest prints only if that test fails: the failing test's own output would
/// not say why it failed.
fn reraise(cpu: usize, p: Box<dyn core::any::Any + Send>) -> ! {
    if let Some(msg) = payload_message(&*p) {
        std::eprintln!("host: a work item on core {cpu} panicked: {msg}");
    }
    std::panic::resume_unwind(p)
}

/// The number of cores of the running machine (0 before [`boot`]).
///
/// Context: any.
pub fn cores() -> usize {
    BOOTED.get().copied().unwrap_or(0)
}

static WARNINGS: AtomicU64 = AtomicU64::new(0);
static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Warning and error lines logged so far ([`Level::Warn`], [`Level::Error`]): the misuse reports
/// a test can count.
///
/// Context: any.
pub fn log_counts() -> (u64, u64) {
    (WARNINGS.load(Ordering::Relaxed), ERRORS.load(Ordering::Relaxed))
}

/// The host as the primitives' kernel.
struct Host;

impl Kernel for Host {
    fn wake(_cpu: usize) {
        irq::signal_event();
    }

    fn call_on(ctx: &mut Ctx, cpu: usize, f: Box<dyn FnOnce(&AtomicCtx) + Send>) {
        // A panic in `f` is the caller's: caught where `f` runs and raised again here, once the
        // call is over. Unwinding out of the handler instead would leave the target core with
        // interrupts masked and in a handler for good (it would take no call or tick again),
        // skip RCU's `irq_exit`, and leave the caller waiting for ever.
        let panicked: Arc<Mutex<Option<Box<dyn core::any::Any + Send>>>> = Arc::default();
        let p = panicked.clone();
        let f = move |a: &AtomicCtx| {
            if let Err(e) = std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| f(a))) {
                *lock(&p) = Some(e);
            }
        };
        if cpu == crate::cpu_id() {
            irq::run_handler(f);
        } else {
            // As the firmware asserts: a caller with interrupts masked takes no call meanwhile,
            // so two cores calling each other would wait for ever.
            assert!(!irq::masked(), "call_function_single with interrupts masked could deadlock");
            assert!(cpu < cores() && cpu::is_online(cpu), "call_function_single: core {} is not online", cpu);
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            core_of(cpu).push_call(Box::new(move |a: &AtomicCtx| {
                f(a);
                // Release: what `f` did before the caller sees it done; pairs with the Acquire below.
                d.store(true, Ordering::Release);
                crate::wake_up_all();
            }));
            crate::wait_event(ctx, || done.load(Ordering::Acquire));
        }
        let caught = lock(&panicked).take();
        if let Some(e) = caught {
            std::panic::resume_unwind(e);
        }
    }

    fn report_pc(_cpu: usize, _timeout_ms: u64) -> Option<u64> {
        None
    }

    fn log(level: Level, args: core::fmt::Arguments<'_>) {
        let tag = match level {
            Level::Info => "info",
            Level::Warn => {
                WARNINGS.fetch_add(1, Ordering::Relaxed);
                "warn"
            }
            Level::Error => {
                ERRORS.fetch_add(1, Ordering::Relaxed);
                "error"
            }
        };
        std::eprintln!("[{tag}] {args}");
    }
}

crate::kernel!(Host);
