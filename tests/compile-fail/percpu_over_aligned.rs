//! Each core's copy of the per-cpu template is only cache-line aligned: a more strictly aligned
//! per-cpu variable would be misaligned on some cores.
// expect: E0080 per-cpu variables are at most cache-line aligned
#![no_std]
#![no_main]

use quiescent::smp::Ctx;

#[derive(Clone, Copy)]
#[repr(align(8192))]
struct Page(u8);

quiescent::percpu! {
    static BIG: Page = Page(0);
}

fn main(_ctx: &mut Ctx) -> i32 {
    BIG.with(|p| p.0 as i32)
}

quiescent::entry!(main);
