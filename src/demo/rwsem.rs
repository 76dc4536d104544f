//! Demo scenario: percpu-rwsem against the classic rw_semaphore and spin::RwLock.

/// Runs the scenario and prints its figures.
pub fn run() {}
