//! percpu-rwsem's `rcu_sync` is not reachable: an `exit` on it by anyone but its writer would
//! reopen the readers' fast path under that writer.
// expect: E0599 no method named `as_ref` found
#![no_std]
#![no_main]

use quiescent::smp::Ctx;
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::rcu_sync::RcuSync;

fn main(_ctx: &mut Ctx) -> i32 {
    let sem = PercpuRwSem::new().unwrap();
    let rss: &RcuSync = (*sem).as_ref();
    rss.exit(&sem, |s| s.as_ref());
    0
}

quiescent::entry!(main);
