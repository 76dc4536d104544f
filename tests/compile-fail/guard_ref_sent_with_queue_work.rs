//! A reference found under this core's guard, used by another core's
//! work item after this core has passed a quiescent point (no scoped cross-core API exists).
// expect: E0597 does not live long enough
#![no_std]
#![no_main]

use quiescent::rcu::{self, cell::RcuCell};
use quiescent::smp::{self, Ctx};

static CELL: RcuCell<u64> = RcuCell::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    let r: &u64 = CELL.read(&g).unwrap();
    smp::queue_work(1, move |_| {
        core::hint::black_box(*r);
    });
    0
}

quiescent::entry!(main);
