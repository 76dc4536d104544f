//! Rejected: keeping an interrupt handler's `&AtomicCtx` (or a read guard's) in a
//! static, to read under RCU later where RCU does not watch.
// expect: E0277 cannot be shared between threads safely
#![no_std]
#![no_main]

use quiescent::smp::{AtomicCtx, Ctx};
use quiescent_platform::Mutex;

static KEPT: Mutex<Option<&'static AtomicCtx>> = Mutex::new(None);

fn main(_ctx: &mut Ctx) -> i32 {
    KEPT.lock().is_some() as i32
}

quiescent::entry!(main);
