//! ARM PL011 UART: transmit only, polled. The register block is described with
//! `tock-registers`; the base address and clock come from the board.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields! [u32,
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    LCR_H [
        /// Word length: 8 bits.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// FIFOs enabled.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    CR [
        RXE OFFSET(9) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
];

#[repr(C)]
struct Registers {
    dr: ReadWrite<u32>,                     // 0x00
    _rsrecr: u32,                           // 0x04
    _reserved0: [u32; 4],                   // 0x08..0x18
    fr: ReadOnly<u32, FR::Register>,        // 0x18
    _reserved1: u32,                        // 0x1c
    _ilpr: u32,                             // 0x20
    ibrd: WriteOnly<u32>,                   // 0x24
    fbrd: WriteOnly<u32>,                   // 0x28
    lcr_h: WriteOnly<u32, LCR_H::Register>, // 0x2c
    cr: WriteOnly<u32, CR::Register>,       // 0x30
    _ifls: u32,                             // 0x34
    _imsc: u32,                             // 0x38
    _ris: u32,                              // 0x3c
    _mis: u32,                              // 0x40
    icr: WriteOnly<u32>,                    // 0x44
}

/// A PL011 at a fixed MMIO address.
pub struct Pl011 {
    regs: *const Registers,
}

// SAFETY: the device is only driven under the console lock (see `console`), which serialises
// all cores' accesses.
unsafe impl Send for Pl011 {}
// SAFETY: as above.
unsafe impl Sync for Pl011 {}

impl Pl011 {
    /// A driver for the PL011 at `base`.
    ///
    /// # Safety
    /// `base` must be the address of a PL011 register block, mapped as device memory (or with
    /// the MMU off), used by nobody else.
    pub const unsafe fn new(base: usize) -> Self {
        Pl011 { regs: base as *const Registers }
    }

    fn regs(&self) -> &Registers {
        // SAFETY: `new`'s contract: a valid register block for the whole run.
        unsafe { &*self.regs }
    }

    /// The baud-rate divisor (IBRD, FBRD) for `baud` from a reference clock of `clock_hz`:
    /// clock / (16 * baud) as 16.6 fixed point, rounded.
    pub const fn divisor(clock_hz: u32, baud: u32) -> (u32, u32) {
        let div64 = ((clock_hz as u64) * 4 + baud as u64 / 2) / baud as u64;
        ((div64 >> 6) as u32, (div64 & 0x3f) as u32)
    }

    /// 8N1 at `baud` from a UART reference clock of `clock_hz`, FIFOs on, TX and RX enabled.
    pub fn init(&self, clock_hz: u32, baud: u32) {
        let r = self.regs();
        r.cr.set(0);
        r.icr.set(0x7ff);
        let (ibrd, fbrd) = Self::divisor(clock_hz, baud);
        r.ibrd.set(ibrd);
        r.fbrd.set(fbrd);
        r.lcr_h.write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        r.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    #[inline]
    pub fn put(&self, b: u8) {
        let r = self.regs();
        while r.fr.is_set(FR::TXFF) {
            core::hint::spin_loop();
        }
        r.dr.set(b as u32);
    }

    /// Waits until every queued byte has left the UART.
    pub fn flush(&self) {
        while self.regs().fr.is_set(FR::BUSY) {
            core::hint::spin_loop();
        }
    }

    /// Waits until every queued byte has left the UART, but no longer than `max_ns` of the
    /// generic counter; returns whether it drained. For a UART someone else set up (the Pi's
    /// firmware): if its clock is stopped, BUSY never clears, and an unbounded wait would hang
    /// the boot before there is a console to say so.
    pub fn flush_within(&self, max_ns: u64) -> bool {
        // A counter frequency of 0 (firmware that did not set CNTFRQ) still gets a bound: the
        // Pi's 54 MHz.
        let freq = match crate::arch::counter_freq() {
            0 => 54_000_000,
            f => f,
        };
        let max_ticks = (max_ns as u128 * freq as u128 / 1_000_000_000) as u64;
        let start = crate::arch::counter();
        while self.regs().fr.is_set(FR::BUSY) {
            if crate::arch::counter().wrapping_sub(start) > max_ticks {
                return false;
            }
            core::hint::spin_loop();
        }
        true
    }
}
