//! A percpu-rwsem writer waits for a grace period: from an RCU callback (no blocking context)
//! it does not type-check.
// expect: E0308 mismatched types
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::Ctx;
use quiescent::sync::{percpu_rwsem::PercpuRwSem, RwSemaphore};

fn main(_ctx: &mut Ctx) -> i32 {
    let sem = PercpuRwSem::new().unwrap();
    rcu::call_rcu(move |ctx| sem.down_write(ctx));
    0
}

quiescent::entry!(main);
