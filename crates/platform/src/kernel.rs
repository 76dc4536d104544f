//! The services the kernel provides on cold paths, bound at link time: the kernel implements
//! [`Kernel`] and names its type once with [`kernel!`](crate::kernel!), which defines the
//! `extern "Rust"` symbols this module calls (as `embassy-time-driver` binds its driver). A
//! missing implementation is a link error naming the symbol, not a silent default.
//!
//! These are the slow paths only (waking an idle core, running a function on another core, a
//! stall report's PC, a diagnostic line); the fast paths are inlined from [`crate::arch`] and
//! [`crate::percpu`].

use crate::ctx::{AtomicCtx, Ctx};
use crate::Level;
use alloc::boxed::Box;

/// What a kernel provides to the primitives. Implement it on a type of your own and name that
/// type with [`kernel!`](crate::kernel!).
pub trait Kernel {
    /// Wakes core `cpu` from its idle sleep (an IPI). Any context.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    fn wake(cpu: usize);
    /// Runs `f` on core `cpu` in its interrupt context (on this core, at once, if `cpu` is this
    /// one) and returns once it has run (Linux's `smp_call_function_single`). May block; called
    /// with interrupts enabled (`rcu_barrier` inside an `IrqGuard` is a named error on the
    /// firmware, which asserts it).
    ///
    /// Context: may block (takes `&mut Ctx`); interrupts enabled.
    fn call_on(ctx: &mut Ctx, cpu: usize, f: Box<dyn FnOnce(&AtomicCtx) + Send>);
    /// The PC core `cpu` is executing, fetched within `timeout_ms` (for a stall report), or
    /// `None`. Any context: RCU's stall detector calls it from its tick hook.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks (waits at most `timeout_ms`).
    fn report_pc(cpu: usize, timeout_ms: u64) -> Option<u64>;
    /// Writes one diagnostic line (a stall report, a misuse report). Any context.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    fn log(level: Level, args: core::fmt::Arguments<'_>);
}

/// Binds the [`Kernel`] implementation `$t`: defines the symbols the primitives call. Once per
/// image.
#[macro_export]
macro_rules! kernel {
    ($t:ty) => {
        const _: () = {
            #[unsafe(no_mangle)]
            fn __quiescent_platform_wake(cpu: usize) {
                <$t as $crate::Kernel>::wake(cpu)
            }
            #[unsafe(no_mangle)]
            fn __quiescent_platform_call_on(
                ctx: &mut $crate::Ctx,
                cpu: usize,
                f: $crate::__private::Box<dyn FnOnce(&$crate::AtomicCtx) + Send>,
            ) {
                <$t as $crate::Kernel>::call_on(ctx, cpu, f)
            }
            #[unsafe(no_mangle)]
            fn __quiescent_platform_report_pc(cpu: usize, timeout_ms: u64) -> Option<u64> {
                <$t as $crate::Kernel>::report_pc(cpu, timeout_ms)
            }
            #[unsafe(no_mangle)]
            fn __quiescent_platform_log(level: $crate::Level, args: core::fmt::Arguments<'_>) {
                <$t as $crate::Kernel>::log(level, args)
            }
        };
    };
}

unsafe extern "Rust" {
    fn __quiescent_platform_wake(cpu: usize);
    fn __quiescent_platform_call_on(ctx: &mut Ctx, cpu: usize, f: Box<dyn FnOnce(&AtomicCtx) + Send>);
    fn __quiescent_platform_report_pc(cpu: usize, timeout_ms: u64) -> Option<u64>;
    fn __quiescent_platform_log(level: Level, args: core::fmt::Arguments<'_>);
}

/// Inter-processor interrupts, as the primitives use them.
pub mod ipi {
    use super::*;

    /// What an IPI asks of its target.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub enum Ipi {
        /// Only wakes the target from its idle sleep.
        Wake,
    }

    /// Sends `ipi` to core `cpu`. Any context.
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks.
    #[inline]
    pub fn send(cpu: usize, ipi: Ipi) {
        match ipi {
            // SAFETY: defined by `kernel!` with this signature (a link error otherwise).
            Ipi::Wake => unsafe { __quiescent_platform_wake(cpu) },
        }
    }

    /// Runs `f` on core `cpu` in its interrupt context and returns its result (Linux's
    /// `smp_call_function_single`). May block; allocates the call.
    ///
    /// Context: may block (takes `&mut Ctx`); interrupts enabled; allocates.
    pub fn call_function_single<R: Send + 'static>(
        ctx: &mut Ctx,
        cpu: usize,
        f: impl FnOnce(&AtomicCtx) -> R + Send + 'static,
    ) -> R {
        let slot = alloc::sync::Arc::new(spin::Mutex::new(None));
        let s2 = slot.clone();
        // SAFETY: defined by `kernel!` with this signature (a link error otherwise).
        unsafe { __quiescent_platform_call_on(ctx, cpu, Box::new(move |a: &AtomicCtx| *s2.lock() = Some(f(a)))) };
        let r = slot.lock().take();
        r.expect("call_function_single: the kernel returned before the call ran")
    }

    /// The PC core `cpu` is executing, within `timeout_ms`, or `None` (for stall reports).
    ///
    /// Context: any (task, interrupt handler, RCU callback); never blocks (waits at most `timeout_ms`).
    pub fn report_pc(cpu: usize, timeout_ms: u64) -> Option<u64> {
        // SAFETY: defined by `kernel!` with this signature (a link error otherwise).
        unsafe { __quiescent_platform_report_pc(cpu, timeout_ms) }
    }
}

/// Writes one diagnostic line through the kernel. Any context.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
pub fn log(level: Level, args: core::fmt::Arguments<'_>) {
    // SAFETY: defined by `kernel!` with this signature (a link error otherwise).
    unsafe { __quiescent_platform_log(level, args) }
}
