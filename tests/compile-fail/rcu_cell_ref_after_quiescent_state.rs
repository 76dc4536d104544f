//! `RcuCell::read`'s reference borrows the read guard: it cannot be used after a quiescent
//! state, after which the updater may free the object it points to.
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

use quiescent::rcu::{self, cell::RcuCell};
use quiescent::smp::Ctx;

static CONFIG: RcuCell<u64> = RcuCell::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    let c = CONFIG.read(&g).unwrap();
    rcu::synchronize_rcu(ctx);
    *c as i32
}

quiescent::entry!(main);
