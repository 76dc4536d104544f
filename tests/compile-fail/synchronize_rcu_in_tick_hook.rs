//! An interrupt handler (a tick hook) gets an `AtomicCtx`: it may read, never block, so
//! `synchronize_rcu` there (it would report a quiescent state for the code it interrupted, and
//! wait on it) is a type error.
// expect: E0308 mismatched types
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::{self, AtomicCtx, Ctx};

fn tick(ctx: &AtomicCtx) {
    rcu::synchronize_rcu(ctx);
}

fn main(_ctx: &mut Ctx) -> i32 {
    smp::tick::add_hook(tick);
    0
}

quiescent::entry!(main);
