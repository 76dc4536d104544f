//! Linux's percpu-rwsem, rcu_sync and percpu_ref, built on [`quiescent_rcu`] and per-core
//! storage.
//!
//! * [`rcu_sync`]: the reader-visible "writer present" state, entered and left with a grace
//!   period, so that readers test one word and take the fast path while no writer is near.
//! * [`percpu_rwsem`]: Linux's percpu-rwsem. A reader adds to its core's counter (no atomic
//!   read-modify-write on a shared line, no barrier); a writer pays a grace period.
//! * [`percpu_ref`]: Linux's percpu_ref. Gets and puts touch the core's counter until `kill`
//!   switches to one atomic count after a grace period; the release runs exactly once.
//!
//! The reader-writer locks share the [`RwSemaphore`] trait, so tests and benchmarks run the same
//! code on each (the firmware adds the classic single-word rw_semaphore as a baseline).
//!
//! Every fast path relies on RCU watching the core: it takes `&AtomicCtx` (see
//! `quiescent-platform`, "Contexts"), and every operation that may wait takes `&mut Ctx`.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

extern crate alloc;
// The loom model (`--cfg loom`) runs on the host: its per-core statics are loom thread-locals.
#[cfg(loom)]
extern crate std;

/// The machine, through the platform interface (the name the primitives use for it).
use quiescent_platform as machine;
#[cfg(quiescent_ideal_rcu)]
use quiescent_platform::ideal_rcu as rcu;
/// RCU. Under the loom model with `--cfg quiescent_ideal_rcu`, an idealised stand-in, so the
/// models check these primitives' own barriers (RCU has models of its own).
#[cfg(not(quiescent_ideal_rcu))]
use quiescent_rcu as rcu;

pub mod percpu_ref;
pub mod percpu_rwsem;
pub mod rcu_sync;
mod rw_semaphore;

pub use rw_semaphore::{ReadGuard, RwSemaphore, WriteGuard};
