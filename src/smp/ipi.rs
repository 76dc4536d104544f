//! Inter-processor interrupts: SGIs carrying a small typed message, and cross-core function
//! calls that run in the target's interrupt context (Linux's `smp_call_function_single`).

use super::{AtomicCtx, Completion, Ctx};
use crate::arch::{self, exception::Frame};
use crate::drivers::gic::{self, IntId, SgiTarget};
use crate::percpu::cpu_id;
use crate::MAX_CPUS;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

/// The message an SGI carries (its SGI number).
#[derive(Clone, Copy, PartialEq, Eq, Debug, defmt::Format)]
#[repr(u32)]
pub enum Ipi {
    /// Only wakes the target from WFE/WFI.
    Wake = 0,
    /// Run the functions queued for the target with [`call_function_single`].
    Call = 1,
    /// Record the interrupted PC (for stall reports), see [`report_pc`].
    ReportState = 2,
    /// Stop: mask interrupts and park for good (fatal errors, shutdown).
    Stop = 3,
}

impl Ipi {
    /// Every kind, in SGI order.
    pub const ALL: [Ipi; 4] = [Ipi::Wake, Ipi::Call, Ipi::ReportState, Ipi::Stop];

    /// The SGI that carries this kind.
    pub const fn sgi(self) -> IntId {
        IntId::sgi(self as u32)
    }

    /// The kind an SGI carries, if it is one of ours.
    pub fn from_sgi(id: IntId) -> Option<Ipi> {
        Self::ALL.into_iter().find(|k| k.sgi() == id)
    }
}

type Call = Box<dyn FnOnce(&AtomicCtx) + Send>;

static CALLS: [spin::Mutex<VecDeque<Call>>; MAX_CPUS] = [const { spin::Mutex::new(VecDeque::new()) }; MAX_CPUS];
/// Per core: the PC the last ReportState IPI interrupted, and a sequence number.
static REPORTED_PC: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
static REPORT_SEQ: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];
/// IPIs received per core and kind (observable by tests).
static RECEIVED: [[AtomicU64; Ipi::ALL.len()]; MAX_CPUS] =
    [const { [const { AtomicU64::new(0) }; Ipi::ALL.len()] }; MAX_CPUS];

/// Installs the SGI handler for every kind (core 0, once, before interrupts are unmasked).
pub(super) fn init() {
    for k in Ipi::ALL {
        gic::set_handler(k.sgi(), handle);
    }
}

/// Sends `ipi` to core `cpu`.
pub fn send(cpu: usize, ipi: Ipi) {
    gic::send_sgi(ipi.sgi(), SgiTarget::Cpu(cpu));
}

/// Sends `ipi` to each core in `cpus` (in core order: GICv3 sends one SGI write per cluster).
pub fn send_many(cpus: &[usize], ipi: Ipi) {
    gic::send_sgi_many(ipi.sgi(), cpus);
}

/// Sends `ipi` to every core but this one.
pub fn send_others(ipi: Ipi) {
    gic::send_sgi(ipi.sgi(), SgiTarget::AllButSelf);
}

/// IPIs of kind `ipi` that core `cpu` has handled.
pub fn received(cpu: usize, ipi: Ipi) -> u64 {
    RECEIVED[cpu][ipi as usize].load(Ordering::Relaxed)
}

/// Stops every other core (if the GIC is up): they mask interrupts and park.
pub fn stop_others() {
    if gic::ready() {
        send_others(Ipi::Stop);
    }
}

/// Runs `f` on core `cpu` in its interrupt context and returns the result (Linux's
/// `smp_call_function_single(cpu, f, wait = 1)`). Runs `f` directly if `cpu` is this core. `f`
/// gets an [`AtomicCtx`]: it may read under RCU but not block.
///
/// The caller must have interrupts enabled (the target may be calling it at the same time).
pub fn call_function_single<R: Send + 'static>(
    ctx: &mut Ctx,
    cpu: usize,
    f: impl FnOnce(&AtomicCtx) -> R + Send + 'static,
) -> R {
    if cpu == cpu_id() {
        return f(ctx);
    }
    assert!(!arch::irqs_disabled(), "call_function_single with interrupts masked could deadlock");
    let slot: Arc<(spin::Mutex<Option<R>>, Completion)> = Arc::new((spin::Mutex::new(None), Completion::new()));
    let s2 = slot.clone();
    {
        let _irq = arch::IrqGuard::new();
        CALLS[cpu].lock().push_back(Box::new(move |actx| {
            *s2.0.lock() = Some(f(actx));
            s2.1.complete();
        }));
    }
    send(cpu, Ipi::Call);
    slot.1.wait(ctx);
    let r = slot.0.lock().take().expect("call_function_single: result missing");
    r
}

/// Asks core `cpu` for the PC it is executing (by interrupting it), waiting up to `timeout_ms`.
/// `None` if it did not answer (interrupts masked on it, or stopped).
pub fn report_pc(cpu: usize, timeout_ms: u64) -> Option<u64> {
    let before = REPORT_SEQ[cpu].load(Ordering::Acquire);
    send(cpu, Ipi::ReportState);
    let start = arch::counter();
    let limit = arch::counter_freq() * timeout_ms / 1000;
    while REPORT_SEQ[cpu].load(Ordering::Acquire) == before {
        if arch::counter().wrapping_sub(start) > limit {
            return None;
        }
        arch::cpu_relax();
    }
    Some(REPORTED_PC[cpu].load(Ordering::Relaxed))
}

/// The SGI handler (from the GIC dispatcher, IRQs masked).
fn handle(id: IntId, frame: &Frame) {
    let me = cpu_id();
    let Some(kind) = Ipi::from_sgi(id) else {
        defmt::warn!("unknown SGI {} on core {}", id.id(), me);
        return;
    };
    RECEIVED[me][kind as usize].fetch_add(1, Ordering::Relaxed);
    match kind {
        Ipi::Wake => {}
        Ipi::Call => loop {
            let call = CALLS[me].lock().pop_front();
            match call {
                // SAFETY: an interrupt handler, between the IRQ context hooks (RCU watches this
                // core until it returns); the closure gets no blocking context.
                Some(c) => c(unsafe { AtomicCtx::new() }),
                None => break,
            }
        },
        Ipi::ReportState => {
            REPORTED_PC[me].store(frame.elr, Ordering::Relaxed);
            // Release: the PC is visible to whoever sees the new sequence number.
            REPORT_SEQ[me].fetch_add(1, Ordering::Release);
        }
        Ipi::Stop => super::park(),
    }
}
