//! Per-cpu data on a thread that is not a core (the test thread, before and after boot; a std
//! thread a work item spawns) is a named panic on every path, never the template or another
//! core's copy.

use quiescent_hosted::{boot, panics_with};
use quiescent_platform::{cpu_id, host, percpu, percpu_base, percpu_shared, PercpuBox};
use std::sync::atomic::AtomicU64;

percpu! {
    static WORD: u32 = 7;
    static PAIR: (u64, u64) = (1, 2);
}
percpu_shared! {
    static SHARED: AtomicU64 = AtomicU64::new(3);
}

fn sink<T>(v: T) {
    std::hint::black_box(v);
}

const NOT_A_CORE: &str = "per-cpu data used on a thread that is not a core";

/// Every local per-cpu path on this (non-core) thread.
fn every_local_path_panics(b: Option<&PercpuBox<u32>>) {
    panics_with("Percpu::get", NOT_A_CORE, || sink(WORD.get()));
    panics_with("Percpu::set", NOT_A_CORE, || WORD.set(1));
    panics_with("Percpu::this_cpu_add", NOT_A_CORE, || WORD.this_cpu_add(1));
    panics_with("Percpu::with", NOT_A_CORE, || PAIR.with(|p| p.0 += 1));
    panics_with("PercpuShared::local", NOT_A_CORE, || sink(SHARED.local()));
    panics_with("cpu_id", NOT_A_CORE, || sink(cpu_id()));
    panics_with("percpu_base", NOT_A_CORE, || sink(percpu_base()));
    panics_with("call_rcu", NOT_A_CORE, || quiescent_rcu::call_rcu(|_| {}));
    if let Some(b) = b {
        panics_with("PercpuBox::get", NOT_A_CORE, || sink(b.get()));
        panics_with("PercpuBox::set", NOT_A_CORE, || b.set(1));
        panics_with("PercpuBox::this_cpu_add", NOT_A_CORE, || b.this_cpu_add(1));
        panics_with("PercpuBox::this_cpu_inc", NOT_A_CORE, || b.this_cpu_inc());
    }
    assert!(!quiescent_platform::arch::irqs_disabled(), "a panicking path left this thread's interrupts masked");
}

#[test]
fn per_cpu_data_off_the_cores_is_a_named_panic() {
    // Before boot: no areas; the remote paths name the missing area too.
    every_local_path_panics(None);
    panics_with("PercpuShared::remote before boot", "per-cpu area of core 0", || sink(SHARED.remote(0)));
    panics_with("PercpuBox::new before boot", "per-cpu allocation before host::boot", || sink(PercpuBox::new(1u32)));
    panics_with("a grace period before boot", "RCU used before rcu::init", || {
        sink(quiescent_rcu::start_poll_synchronize_rcu())
    });

    boot();
    // Neither refusal left anything behind: grace periods run.
    host::on_cpu(1, quiescent_rcu::synchronize_rcu);
    let b = PercpuBox::new(5u32).expect("per-cpu space");
    every_local_path_panics(Some(&b));
    // Remote reads are fine from any thread, and reach the cores' copies.
    assert_eq!(SHARED.remote(1).load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(b.remote_get(1), 5);
    panics_with("PercpuShared::remote past the cores", "per-cpu area of core 4", || sink(SHARED.remote(4)));
    panics_with("PercpuBox::remote_get past the cores", "per-cpu area of core 4", || sink(b.remote_get(4)));

    // A std thread spawned (and joined) by a work item is not a core either.
    let b = &b;
    host::on_cpu(1, |_ctx| {
        assert_eq!(WORD.get(), 7);
        std::thread::scope(|s| s.spawn(|| every_local_path_panics(Some(b))).join().unwrap());
        assert_eq!((WORD.get(), b.get(), cpu_id()), (7, 5, 1), "the core's own copies are untouched");
    });
    // on_cpu from a core (directly) is refused by name; from a user thread it is fine.
    panics_with("on_cpu on a core", "called on a core", || host::on_cpu(0, |_| host::on_cpu(1, |_| ())));
    assert_eq!(std::thread::spawn(|| host::on_cpu(2, |_| cpu_id())).join().unwrap(), 2);
}
