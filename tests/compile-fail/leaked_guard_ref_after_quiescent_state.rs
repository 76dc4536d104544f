//! A leaked read guard (`Box::leak`) yields a reference that lives as long as the leak, but the
//! guard still borrows the context: its references cannot outlive a quiescent state.
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;

static LIST: RcuList<u64> = RcuList::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = Box::leak(Box::new(rcu::read(ctx)));
    let o = LIST.iter(g).next().unwrap();
    rcu::rcu_quiescent_state(ctx);
    *o as i32
}

quiescent::entry!(main);
