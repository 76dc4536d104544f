//! Another core's copy of a value wider than one single-copy-atomic access could tear (its owner
//! writing the two halves around the read): remote reads are for word types only.
// expect: E0599 the method `remote_get` exists for struct
#![no_std]
#![no_main]

use quiescent::percpu::PercpuBox;
use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    let pair = PercpuBox::new((0u64, 0u64)).unwrap();
    let (a, b) = pair.remote_get(1);
    (a + b) as i32
}

quiescent::entry!(main);
