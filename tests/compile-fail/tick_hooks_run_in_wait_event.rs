//! Rejected: running the tick hooks (readers) inside a `wait_event` condition,
//! where RCU does not watch: the only context is the one the wait holds `&mut`.
// expect: E0502 cannot borrow `*ctx` as mutable
#![no_std]
#![no_main]

use quiescent::smp::Ctx;
use quiescent_platform::{run_tick_hooks, wait_event};

fn main(ctx: &mut Ctx) -> i32 {
    wait_event(ctx, || {
        run_tick_hooks(ctx);
        true
    });
    0
}

quiescent::entry!(main);
