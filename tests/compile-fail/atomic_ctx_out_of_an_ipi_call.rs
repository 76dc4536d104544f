//! Rejected: returning the target core's `&AtomicCtx` from a
//! `call_function_single` closure (the result is `'static`, the context is not).
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

use quiescent::smp::{AtomicCtx, Ctx};
use quiescent_platform::{ipi, Mutex};

fn main(ctx: &mut Ctx) -> i32 {
    let out: alloc::sync::Arc<Mutex<usize>> = alloc::sync::Arc::new(Mutex::new(0));
    let mut leak: Option<&AtomicCtx> = None;
    ipi::call_function_single(ctx, 1, move |a: &AtomicCtx| {
        leak = Some(a);
        let _ = out;
    });
    0
}

extern crate alloc;
quiescent::entry!(main);
