//! The GIC's dispatcher runs the interrupt handlers; called from safe code (say, inside a
//! `wait_event` condition, where RCU does not watch the core) it would run them without RCU's
//! interrupt entry, so their reads would not be waited for. Only the IRQ vector calls it.
// expect: E0603 function `handle_irq` is private
#![no_std]
#![no_main]

use quiescent::arch::exception::Frame;
use quiescent::drivers::gic;
use quiescent::smp::{self, Ctx};

fn main(ctx: &mut Ctx) -> i32 {
    smp::wait_event(ctx, || {
        let frame: &Frame = todo!();
        gic::handle_irq(frame);
        true
    });
    0
}

quiescent::entry!(main);
