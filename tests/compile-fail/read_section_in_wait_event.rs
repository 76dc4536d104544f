//! A read-side section inside a `wait_event` condition (RCU not watching this core): `rcu::read`
//! needs the context the wait holds `&mut`.
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::{self, Ctx};

static LIST: RcuList<u64> = RcuList::new();

fn main(ctx: &mut Ctx) -> i32 {
    smp::wait_event(ctx, || {
        let g = rcu::read(ctx);
        LIST.iter(&g).next().is_some()
    });
    0
}

quiescent::entry!(main);
