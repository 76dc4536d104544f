//! A value that must stay on its core (`PercpuBase`: not `Send`, a per-cpu offset that would
//! make another core's adds land in this core's counters) taken out of another core's copy:
//! per-cpu data other cores reach must be `Sync`, and a lock is `Sync` only for `Send` contents.
// expect: E0277 cannot be sent between threads safely
#![no_std]
#![no_main]

use quiescent::arch::PercpuBase;
use quiescent::smp::Ctx;

quiescent::percpu_shared! {
    static SLOT: spin::Mutex<Option<PercpuBase>> = spin::Mutex::new(None);
}

fn main(_ctx: &mut Ctx) -> i32 {
    let theirs = SLOT.remote(1).lock().take();
    theirs.map_or(0, |b| b.get() as i32)
}

quiescent::entry!(main);
