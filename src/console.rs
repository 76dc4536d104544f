//! The console: `defmt` frames over the board's PL011.
//!
//! `defmt` sends each log call as one rzcobs-encoded frame (indices into the ELF's `.defmt`
//! table plus the arguments); the host runner decodes them with the ELF's symbols. A frame is
//! written under one lock that also masks interrupts on the local core, so lines from different
//! cores never interleave and a handler can never deadlock against the code it interrupted.
//! Timestamps are CNTVCT_EL0 in microseconds, followed by the core number.

use crate::arch;
use crate::drivers::pl011::Pl011;
use crate::percpu::cpu_id;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// The UART in use (set once by the board).
static UART: AtomicPtr<Pl011> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the UART the console writes to.
pub fn set_uart(uart: &'static Pl011) {
    UART.store(uart as *const Pl011 as *mut Pl011, Ordering::Release);
}

fn put(bytes: &[u8]) {
    let p = UART.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: set_uart stored a &'static.
    let uart = unsafe { &*p };
    for &b in bytes {
        uart.put(b);
    }
}

/// Waits until the UART has sent everything (before QEMU exits).
pub fn flush() {
    let p = UART.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: set_uart stored a &'static.
        unsafe { (*p).flush() };
    }
}

/// Owner of the console lock: core number + 1, or 0 when free.
static OWNER: AtomicUsize = AtomicUsize::new(0);
/// DAIF of the owner before it took the lock (only the owner reads or writes it).
static SAVED_DAIF: AtomicUsize = AtomicUsize::new(0);
/// Core number + 1 of a core on its fault or panic path ([`take_over`]): its next frame may
/// take the console over from itself.
static TAKEOVER: AtomicUsize = AtomicUsize::new(0);
/// Frames the owner began while writing one (a `defmt::Format` impl that logs): dropped, and
/// the outer frame goes on (only the owner reads or writes it).
static NESTED: AtomicUsize = AtomicUsize::new(0);

/// The fault and panic paths call this before they log: if this core was in the middle of a
/// frame, its next frame ends the torn one and takes the console over. Any other frame begun
/// on the core that holds the console (a `Format` impl that logs) is dropped instead.
pub fn take_over() {
    TAKEOVER.store(cpu_id() + 1, Ordering::Relaxed);
}
static mut ENCODER: defmt::Encoder = defmt::Encoder::new();

#[defmt::global_logger]
struct Logger;

// SAFETY: acquire/release bracket every frame; the OWNER lock makes the encoder and the UART
// exclusive to one core, and masking interrupts keeps this core's handlers out.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        let daif = arch::local_irq_save();
        let me = cpu_id() + 1;
        if OWNER.load(Ordering::Relaxed) == me {
            if TAKEOVER.swap(0, Ordering::Relaxed) != me {
                // A frame begun inside this core's own frame (a `Format` impl that logs): the
                // outer frame owns the encoder, so this one is dropped (interrupts were masked
                // already: `daif` says so, and the outer release restores the outer state).
                NESTED.store(NESTED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                return;
            }
            // This core faulted or panicked in the middle of a frame: take the console over,
            // end the torn frame with a zero byte so the host's decoder resynchronises, and
            // start afresh. (The torn frame's saved DAIF is overwritten: that frame never ends.)
            NESTED.store(0, Ordering::Relaxed);
            put(&[0]);
        } else {
            while OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed).is_err() {
                arch::cpu_relax();
            }
            // Not in the middle of a frame: a take-over announced by this core has nothing to
            // take over.
            let _ = TAKEOVER.compare_exchange(me, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        SAVED_DAIF.store(daif as usize, Ordering::Relaxed);
        // SAFETY: this core owns the lock, so it is the only user of ENCODER.
        unsafe { (*core::ptr::addr_of_mut!(ENCODER)).start_frame(put) }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        let nested = NESTED.load(Ordering::Relaxed);
        if nested > 0 {
            NESTED.store(nested - 1, Ordering::Relaxed);
            return;
        }
        // SAFETY: called by the lock owner (defmt's contract).
        unsafe { (*core::ptr::addr_of_mut!(ENCODER)).end_frame(put) };
        let daif = SAVED_DAIF.load(Ordering::Relaxed) as u64;
        OWNER.store(0, Ordering::Release);
        arch::local_irq_restore(daif);
    }

    unsafe fn write(bytes: &[u8]) {
        if NESTED.load(Ordering::Relaxed) > 0 {
            return;
        }
        // SAFETY: called by the lock owner (defmt's contract).
        unsafe { (*core::ptr::addr_of_mut!(ENCODER)).write(bytes, put) }
    }
}

defmt::timestamp!("{=u64:us} c{=usize}", arch::now_ns() / 1000, cpu_id());
