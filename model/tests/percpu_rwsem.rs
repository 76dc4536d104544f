//! percpu-rwsem (`src/sync/percpu_rwsem.rs`, with `src/sync/rcu_sync.rs`) under loom.
//!
//! The critical sections touch a `loom::cell::UnsafeCell`: readers read it, the writer writes
//! it. loom fails an execution in which a read and the write are not ordered by happens-before,
//! so "readers and a writer exclude each other, and each sees the other's critical section" is
//! checked on every execution, not only on the interleavings where the values would differ.
//!
//! Core 0 (the main thread) is the writer, core 1 a reader. RCU is the crate's idealised
//! stand-in (`model/src/rcu.rs`).
use loom::cell::UnsafeCell;
use quiescent_model::machine::spawn_cpu;
use quiescent_model::sync::percpu_rwsem::PercpuRwSem;
use quiescent_model::sync::RwSemaphore;
use quiescent_model::{check, check_fails_without, rcu, ForgetOnPanic};
use std::rc::Rc;

const FILE: &str = "src/sync/percpu_rwsem.rs";

/// The reader on core 1: `before` runs first (e.g. a quiescent point, so that the writer's
/// grace period can end before the reader arrives), then down_read, `inside` (before the
/// critical section), the read, up_read.
fn reader_vs_writer(before: fn(), inside: fn()) {
    rcu::init();
    let sem = ForgetOnPanic::new(PercpuRwSem::new().unwrap());
    let data = Rc::new(UnsafeCell::new(0u32)); // loom threads are coroutines of one OS thread
    let (s, d) = (ForgetOnPanic::new((*sem).clone()), data.clone());
    let reader = spawn_cpu(1, move || {
        before();
        s.down_read();
        inside();
        let v = d.with(|p| unsafe { *p });
        assert!(v == 0 || v == 1);
        s.up_read();
    });
    sem.down_write();
    data.with_mut(|p| unsafe { *p = 1 });
    sem.up_write();
    reader.join().unwrap();
    rcu::barrier();
    assert!(sem.readers_fast(), "back on the fast path one grace period after the last writer");
}

fn nothing() {}

/// A reader that arrives after the writer's grace period takes the slow path: A (reader) and D
/// (writer) decide who goes first, B (reader's slow up_read) and C (writer, after the drain)
/// order the reader's critical section before the writer's.
fn slow_reader() {
    reader_vs_writer(rcu::quiescent_point, nothing)
}

/// A reader that takes the fast path, then passes a quiescent point while holding the lock
/// (allowed: it holds it by its count), so its up_read may be on the slow path (B/C).
fn reader_holding_across_qs() {
    reader_vs_writer(nothing, rcu::quiescent_point)
}

// Preemption bound 2 for every model here (written into each test).

#[test]
fn slow_path_reader_and_writer_exclude() {
    check(2, slow_reader);
}

#[test]
fn fast_path_reader_holding_across_a_quiescent_point() {
    check(2, reader_holding_across_qs);
}

#[test]
fn fast_path_reader_within_one_rcu_section() {
    check(2, || reader_vs_writer(nothing, nothing));
}

#[test]
fn negative_without_a_reader_sees_stale_block() {
    assert!(check_fails_without(FILE, "A", 2, slow_reader));
}

#[test]
fn negative_without_d_writer_misses_reader_count() {
    assert!(check_fails_without(FILE, "D", 2, slow_reader));
}

#[test]
fn negative_without_c_writer_section_starts_before_drain() {
    assert!(check_fails_without(FILE, "C", 3, slow_reader));
}

#[test]
fn negative_without_b_reader_section_leaks_past_up_read() {
    assert!(check_fails_without(FILE, "B", 3, slow_reader));
}
