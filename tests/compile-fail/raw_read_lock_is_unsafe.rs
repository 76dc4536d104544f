//! The guard-less `rcu_read_lock` cannot tie what it protects to a lifetime: it is `unsafe`, and
//! `rcu::read(ctx)` is the safe way.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    rcu::rcu_read_lock();
    rcu::rcu_read_unlock();
    0
}

quiescent::entry!(main);
