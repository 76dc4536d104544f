//! No `&T` into a per-core copy that `set` can change: a private per-cpu variable hands out
//! values only (`local()` is for `percpu_shared!` data, which changes only through `Sync`
//! interior mutability).
// expect: E0599 no method named `local` found
#![no_std]
#![no_main]

use quiescent::smp::Ctx;

quiescent::percpu! {
    static V: u64 = 0;
}

fn main(_ctx: &mut Ctx) -> i32 {
    let r: &u64 = V.local();
    V.set(5);
    *r as i32
}

quiescent::entry!(main);
