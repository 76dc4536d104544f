//! PSCI CPU_ON (or the spin-table release) starts a core at any address: `unsafe`, for code that
//! knows the entry point and the core's memory are ready.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::board;
use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    let _ = board::start_cpu(3, 3, 0x4000_0000);
    0
}

quiescent::entry!(main);
