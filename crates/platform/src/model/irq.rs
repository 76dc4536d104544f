//! Interrupts: the entry and exit hooks, masking, and a handler taken now ([`irq`]) or at the
//! core's next barrier ([`raise_irq`]). The tick is not modelled.

use super::AtomicCtx;
use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use std::boxed::Box;

loom::thread_local! {
    // IRQ masking depth (IrqGuard) and whether an interrupt handler runs, on this core.
    static IRQ_MASKED: Cell<u32> = Cell::new(0);
    static IN_IRQ: Cell<bool> = Cell::new(false);
    // An interrupt raised on this core, taken at its next barrier (before or after the fence).
    static PENDING_IRQ: RefCell<Option<(IrqAt, Box<dyn FnOnce(&AtomicCtx)>)>> = RefCell::new(None);
}

/// The interrupt entry and exit hooks (RCU's `irq_enter`, `irq_exit`).
type IrqHooks = (fn() -> bool, fn(bool));

std::thread_local! {
    // A registration (a plain function pointer, not loom state): loom runs all of a model's
    // threads on the test's own OS thread, and each model registers at its start.
    static IRQ_HOOKS: Cell<Option<IrqHooks>> = const { Cell::new(None) };
}

/// Registers what every interrupt runs before and after its handler.
///
/// # Safety
/// As on the firmware: at the start of a model, before any interrupt is taken; `enter` and
/// `exit` are RCU's interrupt entry and exit hooks.
pub unsafe fn set_irq_context_hooks(enter: fn() -> bool, exit: fn(bool)) {
    IRQ_HOOKS.with(|h| h.set(Some((enter, exit))));
}

/// The tick is not modelled (a model drives grace periods from its own threads).
pub fn add_tick_hook(_f: fn(&AtomicCtx)) {}

/// The tick's rate (not modelled; the stall detector's period, which no model reaches).
pub fn tick_hz() -> u32 {
    100
}

/// Whether this core runs an interrupt handler.
pub fn in_interrupt() -> bool {
    IN_IRQ.with(|c| c.get())
}

/// Masks interrupts on this core for its lifetime (they nest).
pub struct IrqGuard(PhantomData<*const ()>);

impl IrqGuard {
    /// Masks interrupts.
    pub fn new() -> Self {
        IRQ_MASKED.with(|m| m.set(m.get() + 1));
        IrqGuard(PhantomData)
    }
}

impl Default for IrqGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IrqGuard {
    fn drop(&mut self) {
        IRQ_MASKED.with(|m| m.set(m.get() - 1));
    }
}

/// Takes an interrupt on this core now: the registered entry hook, `handler` (interrupts
/// masked, in interrupt context, given the handler's `&AtomicCtx`), the exit hook. Panics if
/// interrupts are masked.
pub fn irq(handler: impl FnOnce(&AtomicCtx)) {
    assert_eq!(IRQ_MASKED.with(|m| m.get()), 0, "an interrupt taken with interrupts masked");
    let (enter, exit) = IRQ_HOOKS.with(|h| h.get()).expect("irq hooks registered (rcu::init)");
    let _masked = IrqGuard::new();
    IN_IRQ.with(|c| c.set(true));
    let token = enter();
    // SAFETY: an interrupt handler, between the entry and exit hooks (RCU's `irq_enter` makes
    // it a reader); the handler is given no `Ctx`, so it cannot pass a quiescent point.
    handler(unsafe { AtomicCtx::new() });
    exit(token);
    IN_IRQ.with(|c| c.set(false));
}

/// Where a raised interrupt is taken, relative to the barrier it waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IrqAt {
    /// Before the fence executes (after the code before it, e.g. a `ctr` store and then C).
    BeforeBarrier,
    /// After the fence (before the code after it, e.g. A and then a `ctr` store).
    AfterBarrier,
}

/// Raises an interrupt on this core, taken (as [`irq`]) at its next `smp_mb` with interrupts
/// unmasked: an exception arrives between two instructions, and a barrier is where the model
/// can say which two. Barriers run in the handler itself do not take it again.
pub fn raise_irq(at: IrqAt, handler: impl FnOnce(&AtomicCtx) + 'static) {
    PENDING_IRQ.with(|p| *p.borrow_mut() = Some((at, Box::new(handler))));
}

/// Whether an interrupt raised with [`raise_irq`] is still pending.
pub fn irq_pending() -> bool {
    PENDING_IRQ.with(|p| p.borrow().is_some())
}

pub(super) fn take_irq(at: IrqAt) {
    if IRQ_MASKED.with(|m| m.get()) != 0 || in_interrupt() {
        return;
    }
    let h = PENDING_IRQ.with(|p| {
        let mut p = p.borrow_mut();
        match p.take() {
            Some((a, h)) if a == at => Some(h),
            other => {
                *p = other;
                None
            }
        }
    });
    if let Some(h) = h {
        irq(h);
    }
}
