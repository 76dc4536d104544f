//! The torture image (`make torture`, and a short run in `make test`): Linux's rcutorture and
//! locktorture, and a percpu_ref torture, against each other on every core, with random timing,
//! in the release build users run (where `rcu_read_lock` is no instruction) and in the debug
//! build (where misuse is caught). Parameters come from the kernel command line:
//! `torture=rcu|lock|ref|all` (comma-separated), `duration=S`, `seed=N`, `stat_interval=S`.
//! The run ends with `End of test: SUCCESS` (exit 0) or `End of test: FAILURE` (exit 1).
#![no_std]
#![no_main]

extern crate alloc;

mod common;
mod lock;
mod percpu_ref;
mod rcu;

fn main(ctx: &mut quiescent::smp::Ctx) -> i32 {
    common::run(ctx, &[&rcu::RCU_TORTURE, &lock::LOCK_TORTURE, &percpu_ref::REF_TORTURE])
}

quiescent::entry!(main);
