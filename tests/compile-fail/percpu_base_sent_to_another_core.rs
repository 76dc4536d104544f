//! A `PercpuBase` (this core's TPIDR_EL1) carried to another core would
//! make that core's restartable adds land in this core's counters. It is not `Send`.
// expect: E0277 cannot be sent between threads safely
#![no_std]
#![no_main]

use quiescent::percpu::PercpuBox;
use quiescent::smp::{self, Ctx};

fn main(ctx: &mut Ctx) -> i32 {
    let base = quiescent_platform::percpu_base();
    let b = alloc::sync::Arc::new(PercpuBox::new(0u32).unwrap());
    let b2 = b.clone();
    smp::call_on(ctx, 1, move |_| b2.this_cpu_inc_at(base));
    0
}

extern crate alloc;
quiescent::entry!(main);
