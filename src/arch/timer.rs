//! The EL1 virtual generic timer, register by register. The per-core tick built on it (its
//! rate, hooks and the GIC line) is `smp::tick`: this layer knows no interrupt controller.

use aarch64_cpu::registers::{CNTKCTL_EL1, CNTV_CTL_EL0, CNTV_CVAL_EL0};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

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

/// The event stream's target rate: Linux's `ARCH_TIMER_EVT_STREAM_FREQ`.
pub const EVENT_STREAM_HZ: u64 = 10_000;

/// CNTKCTL_EL1.EVNTI for a counter of `freq` Hz: the counter bit whose transitions give about
/// [`EVENT_STREAM_HZ`] events, chosen as Linux's `arch_timer_configure_evtstream` does. An
/// event fires on every 0->1 transition of the bit, once per 2^(EVNTI+1) ticks, so the
/// divisor is taken at half the rate, rounded to the nearest power of two by the bit below
/// the top one; clamped to the field's 0..15.
pub const fn event_stream_bit(freq: u64) -> u8 {
    let div = freq / EVENT_STREAM_HZ / 2;
    if div == 0 {
        return 0;
    }
    let mut lsb = 63 - div.leading_zeros() as u64;
    if lsb > 0 && div & (1 << (lsb - 1)) != 0 {
        lsb += 1;
    }
    if lsb > 15 {
        15
    } else {
        lsb as u8
    }
}

/// Enables this core's event stream from the virtual counter (CNTKCTL_EL1.EVNTEN, EVNTI from
/// CNTFRQ, on the 0->1 transition), as Linux does on every core: a `wfe` whose `sev` was lost
/// wakes within about 100 µs instead of sleeping for ever. QEMU treats WFE as a yield, a
/// Cortex-A72 really sleeps until an event arrives, so only the board shows the difference.
pub fn enable_event_stream() {
    let bit = event_stream_bit(super::counter_freq());
    CNTKCTL_EL1.modify(CNTKCTL_EL1::EVNTI.val(bit as u64) + CNTKCTL_EL1::EVNTDIR::CLEAR + CNTKCTL_EL1::EVNTEN::SET);
}

/// This core's CNTKCTL_EL1 (for the tests).
pub fn kernel_control() -> u64 {
    CNTKCTL_EL1.get()
}
