//! The use-after-free of issue #19: a reference from `RcuList::iter` held across this core's
//! quiescent state (after which an updater may free the node). The reference borrows the guard,
//! the guard borrows the context, and the quiescent state takes the context `&mut`.
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;

static LIST: RcuList<u64> = RcuList::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    let o = LIST.iter(&g).next().unwrap();
    rcu::rcu_quiescent_state(ctx);
    *o as i32
}

quiescent::entry!(main);
