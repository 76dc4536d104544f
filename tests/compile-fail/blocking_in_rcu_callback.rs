//! An RCU callback gets an `AtomicCtx`: blocking there (`rcu_barrier` would wait for its own
//! core's marker, queued behind the running callback) is a type error.
// expect: E0308 mismatched types
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    rcu::call_rcu(|ctx| rcu::rcu_barrier(ctx));
    0
}

quiescent::entry!(main);
