//! Exception reports and IRQ entry (the vector table is `boot/vectors.S`).
//!
//! Every synchronous exception and SError is fatal: the report names the core, the exception
//! class, ESR/ELR/FAR/SPSR, and `stack overflow on core N` when FAR lies in a guard page; the
//! other cores are stopped with an IPI and QEMU exits with [`EXIT_FAULT`].

use crate::percpu::cpu_id;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Run around every interrupt handler (see [`set_irq_context_hooks`]); 0 = none registered.
static IRQ_ENTER: AtomicUsize = AtomicUsize::new(0);
static IRQ_EXIT: AtomicUsize = AtomicUsize::new(0);

/// Registers the functions every IRQ runs before and after its handler: `enter` returns a
/// token that `exit` gets back. RCU registers its `irq_enter`/`irq_exit` here (Linux's
/// `ct_irq_enter`/`ct_irq_exit`), so a handler that interrupts a core in an extended quiescent
/// state runs as a reader that grace periods wait for. Called once, at boot, before interrupts
/// are unmasked.
pub fn set_irq_context_hooks(enter: fn() -> bool, exit: fn(bool)) {
    IRQ_EXIT.store(exit as usize, Ordering::Relaxed);
    // Release: `exit` is visible to whoever sees `enter`.
    IRQ_ENTER.store(enter as usize, Ordering::Release);
}

/// Exit code of an image that took a fatal exception.
pub const EXIT_FAULT: i32 = 102;

/// The registers `boot/vectors.S` saves.
#[repr(C)]
pub struct Frame {
    /// x0..x30.
    pub x: [u64; 31],
    /// ELR_EL1: where the exception was taken.
    pub elr: u64,
    /// SPSR_EL1.
    pub spsr: u64,
    /// SP_EL0: the interrupted code's stack pointer.
    pub sp_el0: u64,
    /// q0..q31, FPSR, FPCR.
    pub fp: [u128; 33],
}

/// Name of an ESR_EL1 exception class.
pub fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason / undefined instruction",
        0x01 => "WFI/WFE trap",
        0x07 => "FP/SIMD access trap",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x17 => "SMC",
        0x18 => "system register trap",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment",
        0x2c => "floating-point exception",
        0x2f => "SError",
        0x30 | 0x31 => "breakpoint",
        0x32 | 0x33 => "software step",
        0x34 | 0x35 => "watchpoint",
        0x3c => "BRK instruction",
        _ => "unexpected exception class",
    }
}

/// Name of a data/instruction fault status code (ESR ISS[5:0]).
pub fn fault_status_name(fsc: u64) -> &'static str {
    match fsc & 0x3c {
        0x00 => "address size fault",
        0x04 => "translation fault",
        0x08 => "access flag fault",
        0x0c => "permission fault",
        0x10 => "synchronous external abort",
        _ if fsc == 0x21 => "alignment fault",
        _ => "other fault",
    }
}

const VECTOR_NAMES: [&str; 16] = [
    "synchronous", "IRQ", "FIQ", "SError",
    "synchronous (inside an exception handler)", "IRQ (inside an exception handler)",
    "FIQ (inside an exception handler)", "SError (inside an exception handler)",
    "synchronous from a lower EL", "IRQ from a lower EL", "FIQ from a lower EL", "SError from a lower EL",
    "synchronous from AArch32", "IRQ from AArch32", "FIQ from AArch32", "SError from AArch32",
];

static REPORTING: AtomicUsize = AtomicUsize::new(0);

fn sysreg_esr_far() -> (u64, u64) {
    let (esr, far): (u64, u64);
    // SAFETY: reads of system registers; no memory effects.
    unsafe { core::arch::asm!("mrs {}, esr_el1", "mrs {}, far_el1", out(reg) esr, out(reg) far, options(nomem, nostack)) };
    (esr, far)
}

/// Called by `boot/vectors.S` for every fatal exception; never returns.
#[unsafe(no_mangle)]
extern "C" fn exception_fatal(frame: &Frame, kind: u64) -> ! {
    let (esr, far) = sysreg_esr_far();
    let me = cpu_id();
    if REPORTING.fetch_add(1, Ordering::AcqRel) > 0 {
        // Another core is already reporting (and exiting); stay out of its way.
        loop {
            super::wfe();
        }
    }
    // Stop the others first, so nothing they print interleaves with the report.
    crate::smp::ipi::stop_others();
    let ec = esr >> 26;
    let class = if kind == 3 || kind == 7 { "SError" } else { class_name(ec) };
    let abort = matches!(ec, 0x20 | 0x21 | 0x24 | 0x25);
    let detail = if abort { fault_status_name(esr & 0x3f) } else { "" };
    let write = ec == 0x24 || ec == 0x25;
    let wnr = if write && esr & (1 << 6) != 0 { " (write)" } else if write { " (read)" } else { "" };
    let sep = if detail.is_empty() { "" } else { " " };
    defmt::println!(
        "EXCEPTION on core {}: {=str}{=str}{=str}{=str} [{=str} vector]; ESR_EL1 {=u64:#010x} ELR_EL1 {=u64:#x} FAR_EL1 {=u64:#x} SPSR_EL1 {=u64:#x}",
        me, class, wnr, sep, detail, VECTOR_NAMES[kind as usize & 15], esr, frame.elr, far, frame.spsr
    );
    if let Some(owner) = crate::guard_page_owner(far as usize) {
        defmt::println!("stack overflow on core {} (FAR {=u64:#x} is in its guard page; SP_EL0 {=u64:#x})", owner, far, frame.sp_el0);
    }
    crate::test::report_fatal(class);
    crate::smp::exit(EXIT_FAULT)
}

/// Called by `boot/vectors.S` for an IRQ; returns to the interrupted code.
#[unsafe(no_mangle)]
extern "C" fn exception_irq(frame: &mut Frame) {
    // An interrupted restartable sequence (this_cpu_add) restarts from its load.
    if let Some(restart) = super::ras_restart_point(frame.elr) {
        frame.elr = restart;
    }
    let enter = IRQ_ENTER.load(Ordering::Acquire);
    if enter == 0 {
        crate::drivers::gic::handle_irq(frame);
        return;
    }
    // SAFETY: only `set_irq_context_hooks` stores these, always as `fn() -> bool` and
    // `fn(bool)` (the exit hook before the enter hook, with Release; read after it, Acquire).
    let (enter, exit) = unsafe {
        (
            core::mem::transmute::<usize, fn() -> bool>(enter),
            core::mem::transmute::<usize, fn(bool)>(IRQ_EXIT.load(Ordering::Relaxed)),
        )
    };
    let token = enter();
    crate::drivers::gic::handle_irq(frame);
    exit(token);
}
