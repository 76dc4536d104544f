//! Cores and their threads: a loom thread per core, the idle and online hooks they run, and the
//! machine's services that are not modelled (the counter stands still, a log line is printed).

use crate::IdleHooks;
use core::cell::Cell;

/// Cores in the model (the per-core slots; a core with no thread keeps its initial state).
pub const NR_CPUS: usize = 3;
/// The firmware's `MAX_CPUS`: the length of RCU's per-core arrays.
pub const MAX_CPUS: usize = NR_CPUS;

loom::thread_local! {
    static CPU: Cell<usize> = Cell::new(0);
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

std::thread_local! {
    // Registrations (plain function pointers, not loom state): loom runs all of a model's
    // threads on the test's own OS thread, and each model registers at its start.
    static HOOKS: Cell<Option<&'static IdleHooks>> = const { Cell::new(None) };
}

/// Installs the idle/online hooks (RCU's `init`, or the stand-in's).
///
/// # Safety
/// As on the firmware: at the start of a model, before its other cores run (the hooks decide
/// whether grace periods wait for a core).
pub unsafe fn set_idle_hooks(hooks: &'static IdleHooks) {
    HOOKS.with(|h| h.set(Some(hooks)));
}

pub(super) fn hooks() -> &'static IdleHooks {
    HOOKS.with(|h| h.get()).expect("the model registers an RCU (rcu::init) before it runs")
}

/// Starts core `cpu` running `f`, between the registered `cpu_online` and `cpu_dead` hooks.
/// `f` is that core's thread of execution: it makes the core's [`Ctx`](crate::Ctx) at its start (a model's
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
