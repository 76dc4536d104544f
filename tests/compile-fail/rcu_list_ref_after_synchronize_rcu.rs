//! A reference from `RcuList::iter` held across `synchronize_rcu` (which passes a quiescent
//! state while it waits).
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;

static LIST: RcuList<u64> = RcuList::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    let o = LIST.iter(&g).next().unwrap();
    rcu::synchronize_rcu(ctx);
    *o as i32
}

quiescent::entry!(main);
