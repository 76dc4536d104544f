//! Benchmark section.

/// Runs the section.
pub fn run() {}
