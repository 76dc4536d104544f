//! A removed list node may still be read (`&T`) by readers on its core until the grace period
//! ends, and `val()` hands out `&T` too: sending it to another core shares `&T` between cores,
//! so it needs `T: Sync` (a `Cell` would be written by two cores at once).
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

use core::cell::Cell;
use quiescent::rcu::list::{RcuList, Removed};
use quiescent::smp::{self, Ctx};

fn main(_ctx: &mut Ctx) -> i32 {
    let list: RcuList<Cell<u64>> = RcuList::new();
    list.add_head(Cell::new(1));
    let removed: Removed<Cell<u64>> = list.remove(|_| true).unwrap();
    smp::queue_work(1, move |_| removed.val().set(0));
    0
}

quiescent::entry!(main);
