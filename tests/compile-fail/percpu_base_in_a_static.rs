//! Rejected: parking a `PercpuBase` in a static for another core to pick up.
// expect: E0277 cannot be sent between threads safely
#![no_std]
#![no_main]

use quiescent::smp::Ctx;
use quiescent_platform::{Mutex, PercpuBase};

static SLOT: Mutex<Option<PercpuBase>> = Mutex::new(None);

fn main(_ctx: &mut Ctx) -> i32 {
    *SLOT.lock() = Some(quiescent_platform::percpu_base());
    0
}

quiescent::entry!(main);
