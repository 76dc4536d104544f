//! Registration points: where the primitives (RCU) install what the kernel's idle loop, blocking
//! waits, interrupt entry and tick must call. The primitives register at init; the kernel calls
//! through here and never names them.

use crate::ctx::{AtomicCtx, Ctx};
use crate::IdleHooks;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

fn spin_while(cond: &mut dyn FnMut() -> bool) {
    while cond() {}
}

static NO_HOOKS: IdleHooks = IdleHooks {
    quiescent_point: |_| {},
    idle_enter: || true,
    idle_needs_tick: || false,
    idle_exit: || {},
    blocking_wait: spin_while,
    might_block: || {},
    cpu_online: || {},
    cpu_dead: || {},
};
static HOOKS: AtomicPtr<IdleHooks> = AtomicPtr::new(core::ptr::null_mut());

/// Installs the hooks (once, on core 0, before the other cores start).
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// At boot only, before any core but this one runs and before interrupts are unmasked: the
/// hooks decide whether grace periods wait for a core, so replacing them while cores run (or
/// installing some that do not report idle and blocking cores as RCU's do) would let grace
/// periods end under readers.
pub unsafe fn set_idle_hooks(hooks: &'static IdleHooks) {
    HOOKS.store(hooks as *const IdleHooks as *mut IdleHooks, Ordering::Relaxed);
}

/// The installed idle hooks (do-nothing ones until RCU installs its own), for the kernel's idle
/// loop, bring-up and parking.
///
/// Context: the kernel's idle loop, core bring-up and parking only (each hook where its doc says).
///
/// # Safety
/// Each hook is called only where its documentation says (`idle_enter` before the idle sleep,
/// with nothing read under RCU held; `cpu_dead` when the core parks for good; ...): called
/// elsewhere, a hook takes the core out of RCU's view while code on it still holds references
/// that grace periods must wait for.
#[inline]
pub unsafe fn idle_hooks() -> &'static IdleHooks {
    // Relaxed: a hook set is a static, initialised at link time; only the pointer is stored,
    // before the other cores start (their start is the synchronisation point).
    let p = HOOKS.load(Ordering::Relaxed);
    if p.is_null() {
        &NO_HOOKS
    } else {
        // SAFETY: only `set_idle_hooks` stores here, always from a `&'static IdleHooks`.
        unsafe { &*p }
    }
}

/// Runs `cond` until it returns false as a blocking wait of this core (through the installed
/// hook: an RCU extended quiescent state). `cond` sleeps with WFE itself. The caller holds the
/// core's `&mut Ctx` (a blocking wait is a quiescent point).
pub(crate) fn blocking_wait(_ctx: &mut Ctx, cond: &mut dyn FnMut() -> bool) {
    // SAFETY: a blocking wait of the thread whose `&mut Ctx` the caller holds, as the hook's
    // documentation says: nothing read under RCU can be held across it.
    (unsafe { idle_hooks() }.blocking_wait)(cond)
}

/// Run around every interrupt handler: `enter` returns a token that `exit` gets back. Function
/// pointers as usize (0: none registered).
static IRQ_ENTER: AtomicUsize = AtomicUsize::new(0);
static IRQ_EXIT: AtomicUsize = AtomicUsize::new(0);

/// Registers the functions every interrupt runs before and after its handler: `enter` returns
/// a token that `exit` gets back. RCU registers its `irq_enter`/`irq_exit` here (Linux's
/// `ct_irq_enter`/`ct_irq_exit`), so a handler that interrupts a core in an extended quiescent
/// state runs as a reader that grace periods wait for.
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// At boot only, before interrupts are unmasked: RCU relies on these running around every
/// handler, so replacing them later could let a grace period end under a handler's reads.
pub unsafe fn set_irq_context_hooks(enter: fn() -> bool, exit: fn(bool)) {
    IRQ_EXIT.store(exit as usize, Ordering::Relaxed);
    // Release: `exit` is visible to whoever sees `enter`.
    IRQ_ENTER.store(enter as usize, Ordering::Release);
}

/// The interrupt entry hook (returns the token) and the exit hook (gets it back).
pub type IrqContextHooks = (fn() -> bool, fn(bool));

/// The registered interrupt entry and exit hooks, for the kernel's interrupt entry to run
/// around every handler.
///
/// Context: the kernel's interrupt entry only.
///
/// # Safety
/// Only the kernel's interrupt entry calls them: `enter` before the handler, `exit` with its
/// token after it. Called elsewhere, `exit` could put the core back into an extended quiescent
/// state while the code it interrupted still reads under RCU.
#[inline]
pub unsafe fn irq_context_hooks() -> Option<IrqContextHooks> {
    let enter = IRQ_ENTER.load(Ordering::Acquire);
    if enter == 0 {
        return None;
    }
    // SAFETY: only `set_irq_context_hooks` stores these, always as `fn() -> bool` and
    // `fn(bool)` (the exit hook before the enter hook, with Release; read after it, Acquire).
    Some(unsafe {
        (
            core::mem::transmute::<usize, fn() -> bool>(enter),
            core::mem::transmute::<usize, fn(bool)>(IRQ_EXIT.load(Ordering::Relaxed)),
        )
    })
}

const MAX_TICK_HOOKS: usize = 4;
static TICK_HOOKS: [AtomicUsize; MAX_TICK_HOOKS] = [const { AtomicUsize::new(0) }; MAX_TICK_HOOKS];
static TICK_HZ: AtomicU32 = AtomicU32::new(0);

/// Registers `f` to run on every tick on every core that takes one (interrupt context). It gets
/// an [`AtomicCtx`]: it may read under RCU but not block. RCU's stall detector is one.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn add_tick_hook(f: fn(&AtomicCtx)) {
    for h in &TICK_HOOKS {
        if h.compare_exchange(0, f as usize, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
    panic!("tick: more than {} tick hooks", MAX_TICK_HOOKS);
}

/// Runs the registered tick hooks: the kernel's tick interrupt handler calls it, between the
/// interrupt context hooks. Callable wherever an `&AtomicCtx` is (the hooks only read under RCU),
/// but only the tick gives them their meaning (the stall detector's timing).
///
/// Context: the kernel's tick interrupt handler (takes `&AtomicCtx`); never blocks.
pub fn run_tick_hooks(ctx: &AtomicCtx) {
    for h in &TICK_HOOKS {
        let f = h.load(Ordering::Acquire);
        if f != 0 {
            // SAFETY: only `add_tick_hook` stores here, always a `fn(&AtomicCtx)`.
            let f = unsafe { core::mem::transmute::<usize, fn(&AtomicCtx)>(f) };
            f(ctx);
        }
    }
}

/// Records the tick rate the kernel runs (what the stall detector's timing reads).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn set_tick_hz(hz: u32) {
    TICK_HZ.store(hz, Ordering::Relaxed);
}

/// The tick rate (0 until the kernel starts a tick).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn tick_hz() -> u32 {
    TICK_HZ.load(Ordering::Relaxed)
}
