//! A `Percpu` made outside the `.percpu` section would resolve to `&self + TPIDR_EL1`, an
//! arbitrary address: its constructor is `unsafe`, for the `percpu!` macro only.
// expect: E0133 call to unsafe function
#![no_std]
#![no_main]

use quiescent::percpu::Percpu;
use quiescent::smp::Ctx;

static NOT_PERCPU: Percpu<u64> = Percpu::new(0);

fn main(_ctx: &mut Ctx) -> i32 {
    NOT_PERCPU.set(1);
    0
}

quiescent::entry!(main);
