//! Replacing the idle loop's hooks after boot could make grace periods stop waiting for cores
//! that read: the registration is `unsafe` (boot only).
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::smp::{self, Ctx, IdleHooks};

static NONE: IdleHooks = IdleHooks {
    quiescent_point: |_| {},
    idle_enter: || true,
    idle_needs_tick: || false,
    idle_exit: || {},
    blocking_wait: |cond| while cond() {},
    might_block: || {},
    cpu_online: || {},
    cpu_dead: || {},
};

fn main(_ctx: &mut Ctx) -> i32 {
    smp::set_idle_hooks(&NONE);
    0
}

quiescent::entry!(main);
