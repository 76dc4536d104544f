//! `kfree_rcu` writes the head with aligned accesses: a `repr(packed)` type whose `RcuHeaded`
//! impl names an unaligned head is refused at compile time.
// expect: E0080 HEAD_OFFSET must name an aligned RcuHead inside the type
// needs: build
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use quiescent::rcu::{self, RcuHead, RcuHeaded};
use quiescent::smp::Ctx;

#[repr(C, packed)]
struct Packed {
    tag: u8,
    head: RcuHead,
}

// SAFETY: deliberately wrong (a packed, unaligned head): the compile-time check under test.
unsafe impl RcuHeaded for Packed {
    const HEAD_OFFSET: usize = core::mem::offset_of!(Packed, head);
}

fn main(_ctx: &mut Ctx) -> i32 {
    rcu::kfree_rcu(Box::new(Packed { tag: 1, head: RcuHead::new() }));
    0
}

quiescent::entry!(main);
