//! The per-core periodic tick, on the virtual generic timer ([`arch::timer`]).
//!
//! Each tick sets the next compare value one period after the previous one (not after "now"),
//! so a late tick does not drift the rate. Hooks registered with [`add_hook`] run on every tick
//! on every core (the RCU stall detector uses this).

use crate::arch::{self, exception::Frame, timer};
use crate::drivers::gic::{self, IntId};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// The tick's interrupt.
pub const TICK_IRQ: IntId = IntId::ppi(timer::VIRTUAL_TIMER_PPI);

crate::percpu! {
    static TICKS: u64 = 0;
    static PERIOD: u64 = 0;
}

static HZ: AtomicU32 = AtomicU32::new(0);
const MAX_HOOKS: usize = 4;
static HOOKS: [AtomicUsize; MAX_HOOKS] = [const { AtomicUsize::new(0) }; MAX_HOOKS];

/// Installs the tick's interrupt handler (once, on core 0, before any core starts its tick).
pub(crate) fn init() {
    gic::set_handler(TICK_IRQ, handle);
}

/// Starts (or restarts at a new rate) this core's tick at `hz` ticks per second.
pub fn start_tick(hz: u32) {
    let period = arch::counter_freq() / hz.max(1) as u64;
    HZ.store(hz, Ordering::Relaxed);
    PERIOD.set(period);
    timer::set_compare(arch::counter() + period);
    timer::enable();
    gic::enable(TICK_IRQ);
}

/// Stops this core's tick.
pub fn stop_tick() {
    timer::disable();
}

/// The configured tick rate.
pub fn hz() -> u32 {
    HZ.load(Ordering::Relaxed)
}

/// Ticks core `cpu` has taken.
pub fn ticks(cpu: usize) -> u64 {
    TICKS.remote_get(cpu)
}

/// Registers `f` to run on every tick on every core (interrupt context, IRQs masked).
pub fn add_hook(f: fn()) {
    for h in &HOOKS {
        if h.compare_exchange(0, f as usize, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
    panic!("tick: more than {} tick hooks", MAX_HOOKS);
}

/// The tick interrupt.
fn handle(_id: IntId, _frame: &Frame) {
    timer::set_compare(timer::compare() + PERIOD.get());
    TICKS.set(TICKS.get() + 1);
    for h in &HOOKS {
        let f = h.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: only `add_hook` stores here, always a `fn()`.
            let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(f) };
            f();
        }
    }
}
