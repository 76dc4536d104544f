//! Parsing a device tree at any address, and keeping its command line as `&'static str`, is the
//! runtime's job at boot (the tree must stay valid for the whole run).
// expect: E0603 function `discover` is private
#![no_std]
#![no_main]

use quiescent::board;
use quiescent::smp::Ctx;

fn main(_ctx: &mut Ctx) -> i32 {
    let info = board::discover(0x1000, 2);
    info.listed as i32
}

quiescent::entry!(main);
