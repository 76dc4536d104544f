//! Safe code cannot make a context: a forged `Ctx` inside an interrupt handler would let it
//! block, and a forged `AtomicCtx` inside a wait condition would let a fast path run unwatched.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::{self, AtomicCtx, Ctx};

fn tick(_ctx: &AtomicCtx) {
    let mut forged = Ctx::new();
    rcu::synchronize_rcu(&mut forged);
}

fn main(_ctx: &mut Ctx) -> i32 {
    smp::tick::add_hook(tick);
    0
}

quiescent::entry!(main);
