//! The ACT LED (GPIO 42, active high on the Pi 4 Model B and the Pi 400): the board's only
//! signal before the console exists.
//!
//! Codes, all timed from the generic counter (CNTFRQ read, never assumed):
//!
//! | what the LED does                          | meaning                                    |
//! |--------------------------------------------|--------------------------------------------|
//! | 1 short flash                              | Rust code runs on core 0 (MMU still off)   |
//! | 2 short flashes                            | the MMU and caches are on                  |
//! | 3 short flashes, then dark                 | the console is up: read the UART from here |
//! | fast flicker (5 Hz) for ever               | the run failed (a boot check, a fault, a panic: the UART says which) |
//!
//! A short flash is [`FLASH_MS`] on and as long off, and a code ends with a dark pause of
//! [`PAUSE_MS`], so the three codes take 2.4 s on the board. The QEMU build (the one with
//! semihosting, where nobody watches an LED) flashes for microseconds instead, so booting it
//! costs about a millisecond more; the GPIO registers it writes are the same.

use super::{GPIO_BASE, SEMIHOSTING};
use core::ptr::{read_volatile, write_volatile};

/// The ACT LED's GPIO.
pub const PIN: u32 = 42;
/// GPFSEL4: function select of GPIO40..49, three bits per pin (GPIO 42 at bit 6).
pub const GPFSEL4: usize = 0x10;
/// GPSET1: writing 1 to bit n drives GPIO 32+n high.
pub const GPSET1: usize = 0x20;
/// GPCLR1: writing 1 to bit n drives GPIO 32+n low.
pub const GPCLR1: usize = 0x2c;
/// GPLEV1: the level of GPIO 32..57.
pub const GPLEV1: usize = 0x38;
/// GPIO 42's bit in GPSET1/GPCLR1/GPLEV1.
pub const BIT: u32 = 1 << (PIN - 32);
const FSEL_SHIFT: u32 = (PIN - 40) * 3;
const FSEL_OUTPUT: u32 = 0b001;

/// One flash of a progress code, on the board.
pub const FLASH_MS: u64 = 100;
/// The dark pause closing a code, on the board.
pub const PAUSE_MS: u64 = 400;
/// One half-period of the failure flicker.
pub const FLICKER_MS: u64 = 100;

/// What the boot reached, as the LED tells it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Code {
    /// Rust runs on core 0, with the MMU off.
    ReachedRust = 1,
    /// The MMU and caches are on.
    MmuOn = 2,
    /// The console is up.
    ConsoleUp = 3,
}

fn reg(off: usize) -> *mut u32 {
    (GPIO_BASE + off) as *mut u32
}

/// GPIO 42 as an output, the other pins of GPFSEL4 as they were.
pub fn as_output() {
    // SAFETY: GPFSEL4 of the BCM2711's GPIO block, Device memory (or the MMU is off, which makes
    // every access Device-nGnRnE): plain 32-bit accesses, no exclusives. Only core 0 touches
    // GPFSEL4, at boot and in the failure path that ends the run.
    unsafe {
        let v = read_volatile(reg(GPFSEL4));
        write_volatile(reg(GPFSEL4), (v & !(0b111 << FSEL_SHIFT)) | (FSEL_OUTPUT << FSEL_SHIFT));
    }
}

/// Turns the LED on or off.
pub fn set(on: bool) {
    // SAFETY: GPSET1/GPCLR1 are write-1-to-act registers: writing only GPIO 42's bit changes no
    // other pin, so no read-modify-write (and no lock) is needed.
    unsafe { write_volatile(reg(if on { GPSET1 } else { GPCLR1 }), BIT) };
}

/// Whether GPIO 42 reads high.
pub fn is_on() -> bool {
    // SAFETY: a read of GPLEV1, which has no side effects.
    unsafe { read_volatile(reg(GPLEV1)) & BIT != 0 }
}

/// Counter ticks in `us` microseconds, from CNTFRQ (at least one tick, so a zero CNTFRQ, which
/// a boot check reports, still ends every wait).
fn ticks(us: u64) -> u64 {
    (crate::arch::counter_freq() * us / 1_000_000).max(1)
}

fn wait_ticks(t: u64) {
    let t0 = crate::arch::counter();
    while crate::arch::counter().wrapping_sub(t0) < t {
        crate::arch::cpu_relax();
    }
}

/// `n` flashes: LED on, `step()`, LED off, `step()`. `step` waits (the tests record the LED's
/// level there instead).
pub fn flashes_with(n: u32, mut step: impl FnMut()) {
    for _ in 0..n {
        set(true);
        step();
        set(false);
        step();
    }
}

/// Milliseconds of a flash on the board, microseconds in the QEMU build (see the module doc).
fn scaled(ms: u64) -> u64 {
    ticks(if SEMIHOSTING { ms } else { ms * 1000 })
}

/// Counter ticks [`show`] takes for `code`: its flashes and the closing pause.
pub fn code_ticks(code: Code) -> u64 {
    2 * code as u64 * scaled(FLASH_MS) + scaled(PAUSE_MS)
}

/// Shows `code` (see the table above). Safe with the MMU off: no atomics, no memory but the
/// stack.
pub fn show(code: Code) {
    let flash = scaled(FLASH_MS);
    show_with(code, || wait_ticks(flash));
    wait_ticks(scaled(PAUSE_MS));
}

/// Shows `code`'s flashes with `step` between each change of the LED (see [`flashes_with`]).
pub fn show_with(code: Code, step: impl FnMut()) {
    as_output();
    flashes_with(code as u32, step);
}

/// `cycles` periods of the failure flicker, `step` between each change of the LED.
pub fn flicker_with(cycles: u32, step: impl FnMut()) {
    as_output();
    flashes_with(cycles, step);
}

/// The failure signal for ever: the board build's last act after a failing run (the UART says
/// what failed, if it is up).
pub fn flicker_forever() -> ! {
    let half = scaled(FLICKER_MS);
    loop {
        flicker_with(u32::MAX, || wait_ticks(half));
    }
}
