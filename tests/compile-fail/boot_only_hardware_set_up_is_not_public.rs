//! Bringing the GIC up again at another address would send every later interrupt
//! acknowledgement and SGI there (a wild write): the distributor's set-up is the runtime's.
// expect: E0603 function `init_distributor` is private
#![no_std]
#![no_main]

use quiescent::drivers::gic::{self, GicConfig};
use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    gic::init_distributor(GicConfig::V2 { gicd: 0x4000_0000, gicc: 0x4000_1000 });
    0
}

quiescent::entry!(main);
