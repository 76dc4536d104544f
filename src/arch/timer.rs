//! The per-core periodic tick on the EL1 virtual generic timer (PPI 27 on both boards).
//!
//! Each tick sets the next compare value one period after the previous one (not after "now"),
//! so a late tick does not drift the rate. Hooks registered with [`add_hook`] run on every tick
//! on every core (the RCU stall detector uses this).

use aarch64_cpu::registers::{CNTV_CTL_EL0, CNTV_CVAL_EL0};
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use tock_registers::interfaces::{Readable, Writeable};

/// GIC interrupt ID of the EL1 virtual timer.
pub const TIMER_PPI: u32 = 27;

crate::percpu! {
    static TICKS: u64 = 0;
    static PERIOD: u64 = 0;
}

static HZ: AtomicU32 = AtomicU32::new(0);
const MAX_HOOKS: usize = 4;
static HOOKS: [AtomicUsize; MAX_HOOKS] = [const { AtomicUsize::new(0) }; MAX_HOOKS];

/// Starts (or restarts at a new rate) this core's tick at `hz` ticks per second.
pub fn start_tick(hz: u32) {
    let period = super::counter_freq() / hz.max(1) as u64;
    HZ.store(hz, Ordering::Relaxed);
    PERIOD.set(period);
    CNTV_CVAL_EL0.set(super::counter() + period);
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
    crate::drivers::gic::enable(TIMER_PPI);
}

/// Stops this core's tick.
pub fn stop_tick() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
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
    panic!("timer: more than {} tick hooks", MAX_HOOKS);
}

/// The tick interrupt.
pub fn handle() {
    let period = PERIOD.get();
    CNTV_CVAL_EL0.set(CNTV_CVAL_EL0.get() + period);
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
