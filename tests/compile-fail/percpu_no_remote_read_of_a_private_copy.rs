//! A private per-cpu variable is touched by its own core only (its `with` writes it back with a
//! plain store): reading another core's copy is for `percpu_shared!` data.
// expect: E0599 no method named `remote_get` found
#![no_std]
#![no_main]

use quiescent::smp::Ctx;

quiescent::percpu! {
    static MINE: u64 = 0;
}

fn main(_ctx: &mut Ctx) -> i32 {
    MINE.with(|v| *v += 1);
    MINE.remote_get(1) as i32
}

quiescent::entry!(main);
