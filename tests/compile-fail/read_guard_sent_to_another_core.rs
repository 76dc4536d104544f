//! A read guard belongs to its core's context: it cannot be sent to another core's work item
//! (which would end, or keep open, the wrong core's section).
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::{self, Ctx};

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    smp::queue_work(1, move |_| drop(g));
    0
}

quiescent::entry!(main);
