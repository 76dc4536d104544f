//! The VideoCore firmware's mailbox property interface (channel 8), for the one question the
//! image asks: the UART's reference clock (tag 0x0003_0002 GET_CLOCK_RATE, clock id 2), as
//! circle does, instead of assuming the 48 MHz that `init_uart_clock` pins. QEMU's raspi4b
//! answers it too (with its fixed 3 MHz, the older Pis' figure; its PL011 ignores the divisor).
//!
//! Sources: the firmware wiki's "Mailbox property interface" (raspberrypi/firmware), Linux's
//! `drivers/mailbox/bcm2835-mailbox.c` (registers), QEMU `hw/misc/bcm2835_mbox.c` and
//! `bcm2835_property.c`.

use super::PERIPHERAL_BASE;
use core::ptr::{read_volatile, write_volatile};

/// ARM mailbox block: mailbox 0 (VideoCore to ARM) at +0x00, mailbox 1 (ARM to VideoCore) at
/// +0x20.
const BASE: usize = PERIPHERAL_BASE + 0xB880;
const READ0: usize = 0x00;
const STATUS0: usize = 0x18;
const WRITE1: usize = 0x20;
const STATUS1: usize = 0x38;
const FULL: u32 = 1 << 31;
const EMPTY: u32 = 1 << 30;
/// The property channel, ARM to VideoCore.
const PROPERTY: u32 = 8;
/// Where the VideoCore sees ARM RAM uncached on the BCM2711 (circle's `GPU_MEM_BASE`).
const BUS_ALIAS: u32 = 0xC000_0000;
/// A request's and a tag's "this is a response" bit, and a request's success code.
const RESPONSE: u32 = 0x8000_0000;

/// GET_CLOCK_RATE: value buffer = clock id, then the rate in Hz.
pub const TAG_GET_CLOCK_RATE: u32 = 0x0003_0002;
/// The UART's clock id.
pub const CLOCK_UART: u32 = 2;

/// How long the firmware may take to answer before the question is given up.
pub const TIMEOUT_NS: u64 = 10_000_000;

/// One property message: one cache line, so that cleaning and invalidating it touches nothing
/// else.
#[repr(C, align(64))]
struct Message([u32; 16]);

/// The message buffer: static, not on the stack, because a firmware that answers after the
/// wait gave up still writes it.
static mut MESSAGE: Message = Message([0; 16]);

fn reg(off: usize) -> *mut u32 {
    (BASE + off) as *mut u32
}

/// Waits until `(read(off) & bit) == 0`, at most until `deadline` (counter ticks).
fn wait_clear(off: usize, bit: u32, deadline: u64) -> bool {
    // SAFETY: a mailbox status register, Device memory; reads have no side effects.
    while unsafe { read_volatile(reg(off)) } & bit != 0 {
        if crate::arch::counter() > deadline {
            return false;
        }
        crate::arch::cpu_relax();
    }
    true
}

/// The rate of clock `id` in Hz as the firmware reports it, or `None` if it did not answer
/// within [`TIMEOUT_NS`] or refused. One caller at a time (core 0 at boot, a test): the
/// mailbox and its message buffer have no lock.
pub fn clock_rate(id: u32) -> Option<u32> {
    let m = core::ptr::addr_of_mut!(MESSAGE) as *mut u32;
    // size, request, tag, value buffer size, tag request code, clock id, rate, end tag
    for (i, v) in [32, 0, TAG_GET_CLOCK_RATE, 8, 0, id, 0, 0].into_iter().enumerate() {
        // SAFETY: word i < 16 of MESSAGE; only core 0 at boot (or a test on one core) asks,
        // one question at a time.
        unsafe { write_volatile(m.add(i), v) };
    }
    let addr = m as usize;
    assert!(addr < 0x4000_0000, "mailbox message at {:#x}: past the VideoCore's view of ARM RAM", addr);
    let bus = addr as u32 | BUS_ALIAS;
    // The VideoCore reads the message from RAM, not from this core's cache: clean the line to
    // the point of coherency (dc civac, with a dsb) before the Device write that hands it over.
    crate::arch::clean_dcache_line_poc(addr);
    let deadline = crate::arch::counter() + crate::arch::counter_freq() * TIMEOUT_NS / 1_000_000_000;
    if !wait_clear(STATUS1, FULL, deadline) {
        return None;
    }
    // SAFETY: mailbox 1's write register, Device memory.
    unsafe { write_volatile(reg(WRITE1), bus | PROPERTY) };
    loop {
        if !wait_clear(STATUS0, EMPTY, deadline) {
            return None;
        }
        // SAFETY: mailbox 0's read register: reading pops one answer, which is ours if it names
        // our channel and message.
        let got = unsafe { read_volatile(reg(READ0)) };
        if got == bus | PROPERTY {
            break;
        }
    }
    // The VideoCore wrote the answer to RAM: drop the stale line (nothing wrote it since the
    // clean above, so civac only invalidates) before reading it.
    crate::arch::clean_dcache_line_poc(addr);
    // SAFETY: words of MESSAGE, read after the invalidation.
    let w = |i: usize| unsafe { read_volatile(m.add(i)) };
    (w(1) == RESPONSE && w(4) & RESPONSE != 0 && w(5) == id && w(6) != 0).then(|| w(6))
}
