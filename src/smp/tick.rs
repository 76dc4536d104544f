//! The per-core periodic tick, on the virtual generic timer ([`arch::timer`]).
//!
//! Each tick sets the next compare value one period after the previous one (not after "now"),
//! so a late tick does not drift the rate. Hooks registered with [`add_hook`] run on every tick
//! on every core that is not asleep (the RCU stall detector uses this).
//!
//! No tick while a core sleeps in its idle loop (Linux's NO_HZ_IDLE): the idle loop stops the
//! timer before its WFI (`idle_stop`) and restarts it one period after waking
//! (`idle_restart`), unless the layer above asks to keep it (RCU: callbacks waiting for a grace
//! period, whose stall a tick must be able to name). Nothing else needs an idle core's tick: its
//! wake-ups are IPIs. Idle cores that ticked cost a wake-up, an interrupt and a trip round the
//! idle loop each, 100 times a second: under QEMU's single-threaded TCG (past 128 cores) every
//! vCPU shares one host thread and the counter follows the host's clock, and 512 idle cores'
//! 51,200 ticks a second took more than a second to emulate, so core 0, bringing the others up,
//! got ever less of the host (at 512 it reached about 290 cores in 100 s, each batch slower).

use crate::arch::{self, exception::Frame, timer};
use crate::drivers::gic::{self, IntId};
use core::sync::atomic::{AtomicU64, Ordering};

/// The tick's interrupt.
pub const TICK_IRQ: IntId = IntId::ppi(timer::VIRTUAL_TIMER_PPI);

crate::percpu_shared! {
    /// Ticks this core has taken (other cores read it).
    static TICKS: AtomicU64 = AtomicU64::new(0);
}

crate::percpu! {
    static PERIOD: u64 = 0;
    /// Between [`start_tick`] and [`stop_tick`]: the idle loop restarts the timer after a sleep
    /// only then.
    static RUNNING: bool = false;
}

/// Installs the tick's interrupt handler (once, on core 0, before any core starts its tick).
pub(crate) fn init() {
    gic::set_handler(TICK_IRQ, handle);
}

/// Starts (or restarts at a new rate) this core's tick at `hz` ticks per second.
pub fn start_tick(hz: u32) {
    let period = arch::counter_freq() / hz.max(1) as u64;
    quiescent_platform::set_tick_hz(hz);
    PERIOD.set(period);
    RUNNING.set(true);
    timer::set_compare(arch::counter() + period);
    timer::enable();
    gic::enable(TICK_IRQ);
}

/// Stops this core's tick (also across idle sleeps, until [`start_tick`]).
pub fn stop_tick() {
    RUNNING.set(false);
    timer::disable();
}

/// The idle loop, interrupts masked, just before WFI: stops the timer (a tick pending but not
/// taken is dropped with it; the level-sensitive PPI falls when the timer is disabled). No ISB
/// before the WFI: a tick that still ends it costs one more trip round the idle loop, no more.
pub(crate) fn idle_stop() {
    if RUNNING.get() {
        timer::disable();
    }
}

/// The idle loop, interrupts still masked, after WFI: the next tick one period from now, not
/// the ones the sleep skipped (from the old compare value the handler would take them all, one
/// after another).
pub(crate) fn idle_restart() {
    if RUNNING.get() {
        timer::set_compare(arch::counter() + PERIOD.get());
        timer::enable();
    }
}

/// The configured tick rate.
pub fn hz() -> u32 {
    quiescent_platform::tick_hz()
}

/// Ticks core `cpu` has taken.
pub fn ticks(cpu: usize) -> u64 {
    TICKS.remote(cpu).load(Ordering::Relaxed)
}

/// Registers `f` to run on every tick on every core (interrupt context, IRQs masked). It gets an
/// [`AtomicCtx`](super::AtomicCtx): it may read under RCU but not block.
pub use quiescent_platform::add_tick_hook as add_hook;

/// The tick interrupt.
fn handle(_id: IntId, _frame: &Frame) {
    timer::set_compare(timer::compare() + PERIOD.get());
    let t = TICKS.local();
    // Only this core writes it.
    t.store(t.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    // SAFETY: an interrupt handler, between the IRQ context hooks (RCU watches this core until
    // it returns); the hooks get no blocking context.
    quiescent_platform::run_tick_hooks(unsafe { super::AtomicCtx::new() });
}
