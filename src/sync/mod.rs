//! The synchronisation primitives built on RCU and per-core storage.
//!
//! * [`rcu_sync`]: the reader-visible "writer present" state with grace-period entry/exit.
//! * [`percpu_rwsem`]: Linux's percpu-rwsem (readers touch only their core's counter).
//! * [`rwsem`]: the classic single-word rw_semaphore, the baseline.
//! * [`percpu_ref`]: Linux's percpu_ref (per-core get/put until `kill`).
pub mod percpu_ref;
pub mod percpu_rwsem;
pub mod rcu_sync;
pub mod rwsem;
