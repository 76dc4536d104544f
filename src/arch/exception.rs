//! Exception entry: the vector table (`src/arch/boot/vectors.S`), IRQ dispatch and fatal reports.
//!
//! This layer knows no interrupt controller, scheduler or reporter: the layers above register
//! what runs on an IRQ (`set_irq_handler`, and the platform's interrupt context hooks around it) and on a
//! fatal exception ([`set_fatal_handler`]).
//!
//! Every synchronous exception and SError is fatal. [`Fault::print`] writes the report (the
//! exception class, ESR/ELR/FAR/SPSR); the registered fatal handler decides what else to say
//! (the core, a stack overflow, the test case) and how to stop.

use aarch64_cpu::registers::ESR_EL1;
use core::sync::atomic::{AtomicUsize, Ordering};
use tock_registers::interfaces::Readable;
use tock_registers::registers::InMemoryRegister;

/// The registers `src/arch/boot/vectors.S` saves.
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

// vectors.S takes the frame's size and layout from this type; `sub sp, sp, #FRAME_SIZE` needs
// it 16-byte aligned and within an immediate.
const _: () = assert!(core::mem::size_of::<Frame>().is_multiple_of(16) && core::mem::size_of::<Frame>() < 4096);
const _: () = assert!(core::mem::offset_of!(Frame, fp) == 34 * 8);

core::arch::global_asm!(
    include_str!("boot/vectors.S"),
    FRAME_GP = const core::mem::offset_of!(Frame, fp),
    FRAME_SIZE = const core::mem::size_of::<Frame>(),
);

/// Which of the sixteen vectors fired (its index in the table).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Vector(pub u64);

impl Vector {
    const NAMES: [&'static str; 16] = [
        "synchronous",
        "IRQ",
        "FIQ",
        "SError",
        "synchronous (inside an exception handler)",
        "IRQ (inside an exception handler)",
        "FIQ (inside an exception handler)",
        "SError (inside an exception handler)",
        "synchronous from a lower EL",
        "IRQ from a lower EL",
        "FIQ from a lower EL",
        "SError from a lower EL",
        "synchronous from AArch32",
        "IRQ from AArch32",
        "FIQ from AArch32",
        "SError from AArch32",
    ];

    /// The vector's name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self.0 as usize & 15]
    }

    /// Whether it is one of the SError vectors.
    pub fn is_serror(self) -> bool {
        self.0 & 3 == 3
    }
}

/// A fatal exception, as the vector table saw it.
pub struct Fault<'a> {
    /// The vector that fired.
    pub vector: Vector,
    /// ESR_EL1 (syndrome).
    pub esr: u64,
    /// FAR_EL1 (faulting address, for aborts).
    pub far: u64,
    /// The saved registers.
    pub frame: &'a Frame,
}

type Ec = ESR_EL1::EC::Value;

/// Name of an ESR_EL1 exception class.
pub fn class_name(esr: u64) -> &'static str {
    match InMemoryRegister::<u64, ESR_EL1::Register>::new(esr).read_as_enum(ESR_EL1::EC) {
        Some(Ec::Unknown) => "unknown reason / undefined instruction",
        Some(Ec::TrappedWFIorWFE) => "WFI/WFE trap",
        Some(Ec::TrappedFP) => "FP/SIMD access trap",
        Some(Ec::IllegalExecutionState) => "illegal execution state",
        Some(Ec::SVC64) => "SVC",
        Some(Ec::HVC64) => "HVC",
        Some(Ec::SMC64) => "SMC",
        Some(Ec::TrappedMsrMrs) => "system register trap",
        Some(Ec::InstrAbortLowerEL | Ec::InstrAbortCurrentEL) => "instruction abort",
        Some(Ec::PCAlignmentFault) => "PC alignment",
        Some(Ec::DataAbortLowerEL | Ec::DataAbortCurrentEL) => "data abort",
        Some(Ec::SPAlignmentFault) => "SP alignment",
        Some(Ec::TrappedFP64) => "floating-point exception",
        Some(Ec::SError) => "SError",
        Some(Ec::BreakpointLowerEL | Ec::BreakpointCurrentEL) => "breakpoint",
        Some(Ec::SoftwareStepLowerEL | Ec::SoftwareStepCurrentEL) => "software step",
        Some(Ec::WatchpointLowerEL | Ec::WatchpointCurrentEL) => "watchpoint",
        Some(Ec::Brk64) => "BRK instruction",
        _ => "unexpected exception class",
    }
}

/// Name of a data/instruction fault status code (ESR `ISS[5:0]`).
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

impl Fault<'_> {
    /// The exception class's name (SError for the SError vectors, whatever ESR says).
    pub fn class(&self) -> &'static str {
        if self.vector.is_serror() {
            "SError"
        } else {
            class_name(self.esr)
        }
    }

    fn ec(&self) -> Option<Ec> {
        InMemoryRegister::<u64, ESR_EL1::Register>::new(self.esr).read_as_enum(ESR_EL1::EC)
    }

    /// Prints the report line: core `core`, class, fault status, ESR/ELR/FAR/SPSR.
    pub fn print(&self, core: usize) {
        let ec = self.ec();
        let abort = matches!(
            ec,
            Some(Ec::InstrAbortLowerEL | Ec::InstrAbortCurrentEL | Ec::DataAbortLowerEL | Ec::DataAbortCurrentEL)
        );
        let detail = if abort { fault_status_name(self.esr & 0x3f) } else { "" };
        let write = matches!(ec, Some(Ec::DataAbortLowerEL | Ec::DataAbortCurrentEL));
        // ISS.WnR: the abort was caused by a write.
        let wnr = if write && self.esr & (1 << 6) != 0 {
            " (write)"
        } else if write {
            " (read)"
        } else {
            ""
        };
        let sep = if detail.is_empty() { "" } else { " " };
        defmt::println!(
            "EXCEPTION on core {}: {=str}{=str}{=str}{=str} [{=str} vector]; ESR_EL1 {=u64:#010x} ELR_EL1 {=u64:#x} FAR_EL1 {=u64:#x} SPSR_EL1 {=u64:#x}",
            core, self.class(), wnr, sep, detail, self.vector.name(), self.esr, self.frame.elr, self.far, self.frame.spsr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Registration. Each slot holds a function pointer as usize (0 = none registered).
// ---------------------------------------------------------------------------------------------

/// The IRQ handler (the interrupt controller's dispatcher).
static IRQ_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// What a fatal exception calls.
static FATAL: AtomicUsize = AtomicUsize::new(0);

/// Registers the IRQ handler (the interrupt controller's acknowledge-and-dispatch loop). Called
/// once, at boot, before interrupts are unmasked.
pub(crate) fn set_irq_handler(handler: fn(&Frame)) {
    // Release: the handler's own set-up is visible to a core that loads it.
    IRQ_HANDLER.store(handler as usize, Ordering::Release);
}

/// Registers what a fatal exception calls: it reports (see [`Fault::print`]) and stops. Until
/// one is registered, a fatal exception prints its report and parks the core.
pub fn set_fatal_handler(handler: fn(&Fault) -> !) {
    FATAL.store(handler as usize, Ordering::Release);
}

/// Called by `src/arch/boot/vectors.S` for every fatal exception; never returns.
#[unsafe(no_mangle)]
extern "C" fn exception_fatal(frame: &Frame, vector: u64) -> ! {
    let (esr, far): (u64, u64);
    // SAFETY: reads of system registers; no memory effects.
    unsafe {
        core::arch::asm!("mrs {}, esr_el1", "mrs {}, far_el1", out(reg) esr, out(reg) far, options(nomem, nostack))
    };
    let fault = Fault { vector: Vector(vector), esr, far, frame };
    let h = FATAL.load(Ordering::Acquire);
    if h == 0 {
        fault.print(usize::MAX);
        loop {
            super::wfe();
        }
    }
    // SAFETY: only `set_fatal_handler` stores here, always a `fn(&Fault) -> !`.
    let h = unsafe { core::mem::transmute::<usize, fn(&Fault) -> !>(h) };
    h(&fault)
}

/// Called by `src/arch/boot/vectors.S` for an IRQ; returns to the interrupted code.
#[unsafe(no_mangle)]
extern "C" fn exception_irq(frame: &mut Frame) {
    // An interrupted restartable sequence (this_cpu_add) restarts from its load.
    if let Some(restart) = super::ras_restart_point(frame.elr) {
        frame.elr = restart;
    }
    let handler = IRQ_HANDLER.load(Ordering::Acquire);
    if handler == 0 {
        return;
    }
    // SAFETY: only `set_irq_handler` stores here, always a `fn(&Frame)`.
    let handler = unsafe { core::mem::transmute::<usize, fn(&Frame)>(handler) };
    // What RCU registered to run around every handler (quiescent_platform::set_irq_context_hooks).
    // SAFETY: this is the interrupt entry: `enter` before the handler, `exit` with its token after.
    let Some((enter, exit)) = (unsafe { quiescent_platform::irq_context_hooks() }) else {
        handler(frame);
        return;
    };
    let token = enter();
    handler(frame);
    exit(token);
}
