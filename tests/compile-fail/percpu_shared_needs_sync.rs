//! Per-cpu data other cores borrow (`percpu_shared!`) must be `Sync`: a `Cell` shared with
//! another core would be mutated by two cores at once.
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

use core::cell::Cell;
use quiescent::smp::Ctx;

quiescent::percpu_shared! {
    static SHARED: Cell<u32> = Cell::new(0);
}

fn main(_ctx: &mut Ctx) -> i32 {
    SHARED.remote(1).set(5);
    0
}

quiescent::entry!(main);
