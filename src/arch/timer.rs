//! The EL1 virtual generic timer, register by register. The per-core tick built on it (its
//! rate, hooks and the GIC line) is `smp::tick`: this layer knows no interrupt controller.

use aarch64_cpu::registers::{CNTV_CTL_EL0, CNTV_CVAL_EL0};
use tock_registers::interfaces::{Readable, Writeable};

/// The interrupt id of the EL1 virtual timer: PPI 27 on every GIC-based Arm system (the Arm
/// Base System Architecture fixes it; both boards follow it).
pub const VIRTUAL_TIMER_PPI: u32 = 27;

/// Sets this core's compare value: the timer fires once the virtual counter reaches `cval`.
#[inline]
pub fn set_compare(cval: u64) {
    CNTV_CVAL_EL0.set(cval);
}

/// This core's compare value.
#[inline]
pub fn compare() -> u64 {
    CNTV_CVAL_EL0.get()
}

/// Enables this core's timer with its interrupt unmasked.
pub fn enable() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::CLEAR);
}

/// Disables this core's timer.
pub fn disable() {
    CNTV_CTL_EL0.write(CNTV_CTL_EL0::ENABLE::CLEAR);
}
