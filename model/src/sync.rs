//! The firmware's `sync` primitives that the models check, from the firmware's own files
//! (percpu_ref's `mod.rs` brings its `mode.rs` and `misuse.rs` from the same folder).
#[path = "../../src/sync/percpu_ref/mod.rs"]
pub mod percpu_ref;
#[path = "../../src/sync/percpu_rwsem.rs"]
pub mod percpu_rwsem;
#[path = "../../src/sync/rcu_sync.rs"]
pub mod rcu_sync;
#[path = "../../src/sync/rw_semaphore.rs"]
mod rw_semaphore;

pub use rw_semaphore::{ReadGuard, RwSemaphore, WriteGuard};
