//! Rejected: waiting on a `Completion` from a `call_function_single` closure (an
//! interrupt handler): it has an `&AtomicCtx`, and `wait` needs `&mut Ctx`.
// expect: E0308 mismatched types
#![no_std]
#![no_main]

extern crate alloc;

use alloc::sync::Arc;
use quiescent::smp::{AtomicCtx, Completion, Ctx};
use quiescent_platform::ipi;

fn main(ctx: &mut Ctx) -> i32 {
    let c = Arc::new(Completion::new());
    let c2 = c.clone();
    ipi::call_function_single(ctx, 1, move |a: &AtomicCtx| c2.wait(a));
    0
}

quiescent::entry!(main);
