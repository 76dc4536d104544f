//! Rejected: publishing a read guard (and so this core's context) through an
//! `RcuCell` for other cores or a later section.
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

use quiescent::rcu::{self, cell::RcuCell, ReadGuard};
use quiescent::smp::Ctx;

static CELL: RcuCell<ReadGuard<'static>> = RcuCell::new();

fn main(ctx: &mut Ctx) -> i32 {
    let _ = rcu::read(ctx);
    CELL.take().is_some() as i32
}

quiescent::entry!(main);
