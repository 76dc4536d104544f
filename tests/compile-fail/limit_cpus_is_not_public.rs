//! `limit_cpus` after boot would shrink `online_cpus()` under running cores (grace periods and
//! percpu-rwsem's fold would skip them): it is the runtime's, not public.
// expect: E0603 function `limit_cpus` is private
#![no_std]
#![no_main]

use quiescent::smp::{self, Ctx};

fn main(_ctx: &mut Ctx) -> i32 {
    smp::limit_cpus(1);
    0
}

quiescent::entry!(main);
