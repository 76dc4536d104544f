//! `kfree_rcu` takes the box by value: no reference into the object can outlive the call (the
//! object is freed a grace period later, and its head is linked meanwhile), so using one after
//! is a move out of a borrowed value.
// expect: E0505 cannot move out of `b` because it is borrowed
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use quiescent::rcu::{kfree_rcu, RcuHead, RcuHeaded};
use quiescent::smp::Ctx;

struct Route {
    dst: u32,
    head: RcuHead,
}

// SAFETY: HEAD_OFFSET is the offset of `head`, which nothing else uses.
unsafe impl RcuHeaded for Route {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Route, head);
}

fn main(_ctx: &mut Ctx) -> i32 {
    let b = Box::new(Route { dst: 7, head: RcuHead::new() });
    let dst = &b.dst;
    kfree_rcu(b);
    *dst as i32
}

quiescent::entry!(main);
