//! Per-cpu storage: static variables through TPIDR_EL1 and the dynamic allocator.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::vec::Vec;
use quiescent::percpu::{self, PerCpuAllocError, PerCpuBox};
use quiescent::{smp, test};

quiescent::percpu! {
    static SCRATCH: u64 = 7;
    static HITS: u32 = 0;
}

fn static_local_write_is_invisible_to_other_cores() {
    // Each core writes its own copy, then every core checks it still reads only its own value.
    test::on_all_cores(|cpu| SCRATCH.set(100 + cpu as u64));
    let seen = test::on_all_cores(|_| SCRATCH.get());
    for (cpu, v) in seen.into_iter().enumerate() {
        assert_eq!(v, 100 + cpu as u64, "core {} reads another core's copy", cpu);
    }
    for cpu in smp::online_cpus() {
        assert_eq!(SCRATCH.remote_get(cpu), 100 + cpu as u64, "remote read of core {}", cpu);
    }
    // The template itself is never written.
    assert_eq!(
        SCRATCH.remote_ptr(0) as usize - percpu::offset(0),
        SCRATCH.local_ptr() as usize - quiescent::arch::tpidr()
    );
}

fn this_cpu_add_counts_per_core() {
    const N: u32 = 10_000;
    test::on_all_cores(|cpu| {
        for _ in 0..N * (cpu as u32 + 1) {
            HITS.this_cpu_add(1);
        }
    });
    for cpu in smp::online_cpus() {
        assert_eq!(HITS.remote_get(cpu), N * (cpu as u32 + 1), "core {} counter", cpu);
    }
}

fn dynamic_slots_are_densely_packed() {
    let a = PerCpuBox::new(0u32).unwrap();
    let b = PerCpuBox::new(0u32).unwrap();
    let c = PerCpuBox::new(0u8).unwrap();
    let d = PerCpuBox::new(0u64).unwrap();
    assert_eq!(b.template_addr() - a.template_addr(), 4, "two u32 counters are 4 bytes apart");
    assert_eq!(c.template_addr() - b.template_addr(), 4, "a u8 takes one 4-byte granule");
    assert_eq!(d.template_addr() % 8, 0, "u64 slot aligned");
    assert!(d.template_addr() - c.template_addr() <= 8, "u64 placed in the next aligned gap");
    // Same offset in every core's area: the distance between two cores' copies is the area step
    // (only cores present have an area: on one core there is no second copy to compare).
    if percpu::nr_areas() > 1 {
        let step = percpu::offset(1).wrapping_sub(percpu::offset(0));
        assert_eq!(a.remote_ptr(1) as usize - a.remote_ptr(0) as usize, step);
    }
}

fn dynamic_counters_sum_over_cores() {
    const N: u32 = 5_000;
    let ctr = alloc::sync::Arc::new(PerCpuBox::new(0u32).unwrap());
    let c2 = ctr.clone();
    test::on_all_cores(move |cpu| {
        for _ in 0..N * (cpu as u32 + 1) {
            c2.this_cpu_add(1);
        }
        c2.get()
    });
    let n = smp::num_online() as u32;
    assert_eq!(ctr.sum(smp::online_cpus()), N * n * (n + 1) / 2, "sum over cores");
    for cpu in smp::online_cpus() {
        assert_eq!(ctr.remote_get(cpu), N * (cpu as u32 + 1), "core {} count", cpu);
    }
}

fn wrapped_counters_still_sum() {
    // Per-core counters may wrap individually (an increment on one core, a decrement on another);
    // only the wrapping sum is meaningful.
    let ctr = alloc::sync::Arc::new(PerCpuBox::new(0u32).unwrap());
    let c2 = ctr.clone();
    test::on_all_cores(move |cpu| {
        if cpu % 2 == 1 {
            c2.this_cpu_add(3u32.wrapping_neg()); // -3
        } else {
            c2.this_cpu_add(5);
        }
    });
    let n = smp::num_online() as i64;
    let want = (n + 1) / 2 * 5 - n / 2 * 3;
    assert_eq!(ctr.sum(smp::online_cpus()) as i32 as i64, want);
}

fn dynamic_free_and_reuse() {
    let before = percpu::dyn_bytes_used();
    let a = PerCpuBox::new(1u32).unwrap();
    let addr = a.template_addr();
    assert_eq!(percpu::dyn_bytes_used(), before + 4);
    drop(a);
    assert_eq!(percpu::dyn_bytes_used(), before, "freed on drop");
    let b = PerCpuBox::new(2u32).unwrap();
    assert_eq!(b.template_addr(), addr, "freed slot reused first");
    assert_eq!(b.get(), 2, "a reused slot is re-initialised");
}

fn allocation_failure_is_an_error() {
    let mut held = Vec::new();
    let err = loop {
        match PerCpuBox::new([0u8; 1024]) {
            Ok(b) => held.push(b),
            Err(e) => break e,
        }
        assert!(held.len() <= percpu::PERCPU_DYN_SIZE / 1024, "allocator handed out more than it has");
    };
    assert_eq!(err, PerCpuAllocError::OutOfSpace);
    assert!(!held.is_empty());
    held.pop();
    assert!(PerCpuBox::new([0u8; 1024]).is_ok(), "space freed by drop is usable again");
    assert_eq!(PerCpuBox::new(()).err(), Some(PerCpuAllocError::BadLayout));
}

quiescent::tests!(
    static_local_write_is_invisible_to_other_cores,
    this_cpu_add_counts_per_core,
    dynamic_slots_are_densely_packed,
    dynamic_counters_sum_over_cores,
    wrapped_counters_still_sum,
    dynamic_free_and_reuse,
    allocation_failure_is_an_error,
);
