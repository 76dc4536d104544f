//! `mem::forget` of a read guard while its references are in use: the references borrow the
//! guard, so it cannot be moved away (and with it the proof that the section is still open).
// expect: E0505 cannot move out of `g` because it is borrowed
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::smp::Ctx;

static LIST: RcuList<u64> = RcuList::new();

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    let o = LIST.iter(&g).next().unwrap();
    core::mem::forget(g);
    rcu::rcu_quiescent_state(ctx);
    *o as i32
}

quiescent::entry!(main);
