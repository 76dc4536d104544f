//! Expected-failure image: the RCU misuse named by `misuse=<kind>` on the command line must be
//! caught (debug builds) with a named error and a non-zero exit.
//!
//! kinds: `qs-in-reader`, `sync-in-reader`, `idle-in-reader` (a work item returns to the idle
//! loop inside a read-side section, on core 1), `unbalanced-unlock`, `use-after-free` (a list
//! node freed without a grace period while a reader stands before it), and percpu-rwsem misuse:
//! `percpu-up-read-unbalanced`, `percpu-up-write-not-held`, `percpu-down-write-in-reader`.
#![no_std]
#![no_main]

use quiescent::rcu::{self, list::RcuList};
use quiescent::sync::{percpu_rwsem::PercpuRwSem, RwSemaphore};
use quiescent::{board, smp};

fn misuse() {
    let kind = board::bootarg("misuse").expect("the rcu_misuse image needs misuse=<kind>");
    match kind {
        "qs-in-reader" => {
            let _g = rcu::read();
            rcu::rcu_quiescent_state();
        }
        "sync-in-reader" => {
            let _g = rcu::read();
            rcu::synchronize_rcu();
        }
        "idle-in-reader" => {
            assert!(smp::num_online() > 1, "needs two cores");
            smp::queue_work(1, || core::mem::forget(rcu::read()));
            // Core 1 panics when its idle loop reaches the quiescent point; wait for it.
            loop {
                quiescent::arch::wfe();
            }
        }
        "unbalanced-unlock" => rcu::rcu_read_unlock(),
        "use-after-free" => {
            let list = RcuList::new();
            list.add_head(2u64);
            list.add_head(1u64);
            let g = rcu::read();
            let mut it = list.iter(&g);
            assert_eq!(it.next(), Some(&1));
            // The updater frees the next node with no grace period: the reader must catch it.
            list.remove(|&v| v == 2).unwrap().free_now_unsafely();
            let v = it.next();
            panic!("reader walked onto a freed node unnoticed ({:?})", v);
        }
        "percpu-up-read-unbalanced" => {
            let l = PercpuRwSem::new().unwrap();
            l.down_read();
            l.up_read();
            l.up_read();
        }
        "percpu-up-write-not-held" => {
            let l = PercpuRwSem::new().unwrap();
            l.up_write();
        }
        "percpu-down-write-in-reader" => {
            let l = PercpuRwSem::new().unwrap();
            let _g = rcu::read();
            l.down_write();
        }
        other => panic!("unknown misuse `{}`", other),
    }
    panic!("misuse `{}` was not detected", kind);
}

quiescent::tests!(misuse);
