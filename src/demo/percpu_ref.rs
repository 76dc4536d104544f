//! Demo scenario: percpu_ref on I/O contexts against a shared atomic refcount.

/// Runs the scenario and prints its figures.
pub fn run() {}
