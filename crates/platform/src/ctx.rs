//! Execution contexts: the tokens that make a core's quiescent points visible to the borrow
//! checker.
//!
//! In QSBR every instruction between two quiescent points is a reader, so a reference obtained
//! under RCU is valid until this core's next quiescent point. These two zero-sized types say
//! where those points can be:
//!
//! * [`Ctx`]: a core's thread of execution that *may block*: the image's main function, each test
//!   case, each work item of an idle loop (`queue_work`, `call_on`, `on_each_cpu`). Everything
//!   that may pass a quiescent point (a quiescent state, `synchronize_rcu`, `rcu_barrier`, every
//!   blocking wait, blocking lock acquisitions, waiting mode changes) takes it `&mut`.
//! * [`AtomicCtx`]: a context that *reads but never blocks* (Linux's atomic context): interrupt
//!   handlers (tick hooks, `call_function_single`), RCU callbacks, and any code holding a shared
//!   borrow of a [`Ctx`] (`Ctx` dereferences to it). Starting a read-side section, and the fast
//!   paths that rely on RCU watching this core (percpu_ref's get/put, percpu-rwsem's reader),
//!   take `&AtomicCtx`.
//!
//! A read guard borrows the context shared, and references obtained under it borrow the guard,
//! so holding one across a quiescent point is a borrow error, at no cost at run time: both types
//! are empty, and passing a reference to one is optimised away. Neither type can be made by safe
//! code, and neither can leave its core (`!Send`, `!Sync`): a `&AtomicCtx` on a core proves that
//! RCU is watching that core (it is not in an extended quiescent state, or it runs an interrupt
//! handler that `irq_enter` made a reader).

use core::marker::PhantomData;

/// A core's thread of execution that may block: holding `&mut Ctx` is the right to pass a
/// quiescent point. The crate docs ("Contexts") say what each allows.
pub struct Ctx {
    /// `!Send` and `!Sync`: a context belongs to its core.
    _core: PhantomData<*mut ()>,
}

/// A context that may read under RCU but never block (interrupt handlers, RCU callbacks, and a
/// shared borrow of a [`Ctx`]): holding `&AtomicCtx` proves RCU is watching this core. The
/// crate docs ("Contexts") say what each allows.
pub struct AtomicCtx {
    _core: PhantomData<*mut ()>,
}

/// The one `AtomicCtx` value: it is empty, so every reference to it may point here.
const ATOMIC: &AtomicCtx = &AtomicCtx { _core: PhantomData };

impl Ctx {
    /// A blocking context for the code about to run on this core.
    ///
    /// Context: the kernel only, where a thread of execution that may block starts on a core.
    ///
    /// # Safety
    /// Only the code that starts a thread of execution on a core (the runtime for the image's
    /// main, the idle loop for a work item, a model's core): on this core, RCU is watching, no
    /// other `Ctx` or `AtomicCtx` is live, and the code it is given to may block.
    #[inline(always)]
    pub const unsafe fn new() -> Ctx {
        Ctx { _core: PhantomData }
    }
}

impl AtomicCtx {
    /// A non-blocking context for the code about to run on this core.
    ///
    /// Context: the kernel only, where an interrupt handler or an RCU callback starts (RCU watching).
    ///
    /// # Safety
    /// Only the code that runs an interrupt handler or an RCU callback: RCU watches this core for
    /// as long as the reference is used (an interrupt handler between `irq_enter` and `irq_exit`,
    /// a callback outside an extended quiescent state), and the code it is given to must not be
    /// able to pass a quiescent point (it has no [`Ctx`]).
    #[inline(always)]
    pub const unsafe fn new<'a>() -> &'a AtomicCtx {
        ATOMIC
    }
}

impl core::ops::Deref for Ctx {
    type Target = AtomicCtx;

    /// A shared borrow of a blocking context reads but cannot block: the borrow checker keeps
    /// the context from being used `&mut` (blocking) while it lasts.
    #[inline(always)]
    fn deref(&self) -> &AtomicCtx {
        ATOMIC
    }
}

/// What the idle loop and the blocking waits call into the layer above (RCU installs these;
/// Linux's equivalents are `rcu_note_context_switch`, `ct_idle_enter`/`exit`, and the
/// `rcu_cpu_starting`/`rcutree_report_cpu_dead` pair).
pub struct IdleHooks {
    /// Between work items and after each wake-up: nothing of the previous item is in use (the
    /// idle loop lends the hook the context it gives work items).
    pub quiescent_point: fn(&mut Ctx),
    /// Before the idle sleep, interrupts masked: returns whether the core may sleep.
    pub idle_enter: fn() -> bool,
    /// After `idle_enter`, when the core is about to sleep: whether its tick must keep running
    /// through the sleep (idle cores take no tick otherwise).
    pub idle_needs_tick: fn() -> bool,
    /// After the sleep, before any work runs.
    pub idle_exit: fn(),
    /// A blocking wait: calls `cond` (which sleeps with WFE) until it returns false.
    pub blocking_wait: fn(&mut dyn FnMut() -> bool),
    /// Names a blocking wait where none may be (an interrupt handler, a read-side section, an
    /// RCU callback); called by every wait, before it tests its condition.
    pub might_block: fn(),
    /// This core comes online, before it publishes itself online (`cpu::set_online`).
    pub cpu_online: fn(),
    /// This core parks for good.
    pub cpu_dead: fn(),
}
