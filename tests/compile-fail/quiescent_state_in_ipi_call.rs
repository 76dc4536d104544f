//! A `call_function_single` closure runs in the target core's interrupt context: it gets an
//! `AtomicCtx`, and `rcu_quiescent_state` (which would report for the interrupted reader) needs
//! the blocking context.
// expect: E0308 mismatched types
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::{ipi, Ctx};

fn main(ctx: &mut Ctx) -> i32 {
    ipi::call_function_single(ctx, 1, |ctx| rcu::rcu_quiescent_state(ctx));
    0
}

quiescent::entry!(main);
