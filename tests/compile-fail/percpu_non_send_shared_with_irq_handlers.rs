//! An interrupt handler on the same core is, for a per-cpu copy, another thread: a `!Send` value
//! (a reference to a `Cell`) in a private per-cpu variable would be shared by the interrupted
//! code and the handler, and a `Cell::take` interrupted half-way could free a box twice.
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

extern crate alloc;

use core::cell::Cell;
use quiescent::smp::Ctx;

quiescent::percpu! {
    static SLOT: Option<&'static Cell<u32>> = None;
}

fn main(_ctx: &mut Ctx) -> i32 {
    SLOT.with(|s| s.map_or(0, |c| c.get()) as i32)
}

quiescent::entry!(main);
