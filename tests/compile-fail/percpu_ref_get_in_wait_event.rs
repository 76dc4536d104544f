//! A `wait_event` condition runs while RCU does not watch this core, so percpu_ref's fast path
//! (which relies on an implicit read-side section) must not run there: it needs a context, and
//! the wait holds the only one `&mut`.
// expect: E0502 cannot borrow `*ctx` as mutable because it is also borrowed as immutable
#![no_std]
#![no_main]

use quiescent::smp::{self, Ctx};
use quiescent::sync::percpu_ref::{Flags, PercpuRef};

fn main(ctx: &mut Ctx) -> i32 {
    let r = PercpuRef::init(|_| {}, Flags::NONE).unwrap();
    smp::wait_event(ctx, || {
        r.get(ctx);
        true
    });
    0
}

quiescent::entry!(main);
