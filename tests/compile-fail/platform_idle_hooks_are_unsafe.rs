//! The idle hooks RCU installs take the core out of RCU's view (`idle_enter`, `cpu_dead`): called
//! from a read-side section they would let a grace period end under it. Reaching them is the
//! kernel's idle loop's business, and `unsafe`.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::rcu;
use quiescent::smp::Ctx;

fn main(ctx: &mut Ctx) -> i32 {
    let g = rcu::read(ctx);
    (quiescent_platform::idle_hooks().idle_enter)();
    drop(g);
    0
}

quiescent::entry!(main);
