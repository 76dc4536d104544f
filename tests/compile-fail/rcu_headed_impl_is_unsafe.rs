//! `RcuHeaded` names where the `RcuHead` is inside a type, and `kfree_rcu` trusts it to find
//! the head and the box again: implementing it is `unsafe`.
// expect: E0200 the trait `RcuHeaded` requires an `unsafe impl` declaration
#![no_std]
#![no_main]

use quiescent::rcu::{RcuHead, RcuHeaded};
use quiescent::smp::Ctx;

struct Route {
    _dst: u32,
    _head: RcuHead,
}

impl RcuHeaded for Route {
    const HEAD_OFFSET: usize = 0; // wrong: the head is not at offset 0
}

fn main(_ctx: &mut Ctx) -> i32 {
    0
}

quiescent::entry!(main);
