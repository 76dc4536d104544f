//! The reader-writer locks' unlocks are `unsafe` (an unbalanced one would let a writer in beside
//! a reader); the guards are the safe way to release.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::smp::Ctx;
use quiescent::sync::{RwSemaphore, SpinRw};

static L: SpinRw = SpinRw::new();

fn main(ctx: &mut Ctx) -> i32 {
    L.up_read(ctx);
    0
}

quiescent::entry!(main);
