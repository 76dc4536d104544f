//! `RcuList::remove`'s predicate runs under the update lock with interrupts masked: it may not
//! pass a quiescent point (a callback run there could update the same list and spin on the
//! lock). It is an `Fn`, so it cannot use the `&mut Ctx` it would need.
// expect: E0596 cannot borrow
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;

fn main(ctx: &mut Ctx) -> i32 {
    let list: RcuList<u32> = RcuList::new();
    list.add_head(1);
    let r = list.remove(|&v| {
        rcu::rcu_quiescent_state(ctx);
        v == 1
    });
    drop(r);
    0
}

quiescent::entry!(main);
