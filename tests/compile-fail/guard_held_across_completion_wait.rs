//! A guard's reference held across `Completion::wait` (an extended
//! quiescent state).
// expect: E0502 cannot borrow `*ctx` as mutable
#![no_std]
#![no_main]

use quiescent::rcu::{self, cell::RcuCell};
use quiescent::smp::{Completion, Ctx};

static CELL: RcuCell<u64> = RcuCell::new();
static DONE: Completion = Completion::expecting(0);

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    let r = CELL.read(&g);
    DONE.wait(ctx);
    r.copied().unwrap_or(0) as i32
}

quiescent::entry!(main);
