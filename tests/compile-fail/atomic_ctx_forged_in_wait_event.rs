//! Rejected: forging an `AtomicCtx` inside a `wait_event` condition (RCU not
//! watching) to run percpu_ref's fast path there.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::smp::{AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent_platform::wait_event;

fn main(ctx: &mut Ctx) -> i32 {
    let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
    wait_event(ctx, || {
        r.get(AtomicCtx::new());
        true
    });
    0
}

quiescent::entry!(main);
