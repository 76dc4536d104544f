//! Demo scenario: RCU lockless lookup (aio's lookup_ioctx) against spin::RwLock.

/// Runs the scenario and prints its figures.
pub fn run() {}
