//! percpu-rwsem's reader fast path inside a quiescent wait's condition (RCU not watching):
//! it needs the context the wait holds `&mut`.
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::Ctx;
use quiescent::sync::{percpu_rwsem::PercpuRwSem, RwSemaphore};

fn main(ctx: &mut Ctx) -> i32 {
    let sem = PercpuRwSem::new().unwrap();
    rcu::wait_quiescent(ctx, || sem.try_read(ctx).is_none());
    0
}

quiescent::entry!(main);
