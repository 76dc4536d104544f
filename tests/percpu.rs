//! Per-cpu storage: static variables through TPIDR_EL1 and the dynamic allocator.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use quiescent::percpu::{self, PercpuAllocError, PercpuBox};
use quiescent::smp::{self, tick as timer, AtomicCtx, Ctx};
use quiescent::{arch, test};

quiescent::percpu! {
    static SCRATCH: u64 = 7;
    static HITS: u32 = 0;
}

quiescent::percpu_shared! {
    /// Per-cpu data other cores read (a plain `percpu!` copy is its own core's only).
    static SHARED_SCRATCH: AtomicU64 = AtomicU64::new(7);
}

fn static_local_write_is_invisible_to_other_cores(ctx: &mut Ctx) {
    // Each core writes its own copy, then every core checks it still reads only its own value.
    test::on_all_cores(ctx, |cpu, _| SCRATCH.set(100 + cpu as u64));
    let seen = test::on_all_cores(ctx, |_, _| SCRATCH.get());
    for (cpu, v) in seen.into_iter().enumerate() {
        assert_eq!(v, 100 + cpu as u64, "core {} reads another core's copy", cpu);
    }
    // Remote reads go through a `percpu_shared!` variable: each core writes its own copy, core 0
    // reads every core's.
    test::on_all_cores(ctx, |cpu, _| SHARED_SCRATCH.local().store(100 + cpu as u64, Ordering::Relaxed));
    for cpu in smp::online_cpus() {
        assert_eq!(SHARED_SCRATCH.remote(cpu).load(Ordering::Relaxed), 100 + cpu as u64, "remote read of core {}", cpu);
    }
    // The template itself is never written.
    assert_eq!(
        SCRATCH.remote_ptr(0) as usize - percpu::offset(0),
        SCRATCH.local_ptr() as usize - quiescent::arch::tpidr()
    );
}

fn this_cpu_add_counts_per_core(ctx: &mut Ctx) {
    const N: u32 = 10_000;
    test::on_all_cores(ctx, |cpu, _| {
        for _ in 0..N * (cpu as u32 + 1) {
            HITS.this_cpu_add(1);
        }
    });
    // Each core reads its own counter (a `percpu!` copy is read by its own core only).
    for (cpu, v) in test::on_all_cores(ctx, |_, _| HITS.get()).into_iter().enumerate() {
        assert_eq!(v, N * (cpu as u32 + 1), "core {} counter", cpu);
    }
}

fn dynamic_slots_are_densely_packed(_ctx: &mut Ctx) {
    let a = PercpuBox::new(0u32).unwrap();
    let b = PercpuBox::new(0u32).unwrap();
    let c = PercpuBox::new(0u8).unwrap();
    let d = PercpuBox::new(0u64).unwrap();
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

fn dynamic_counters_sum_over_cores(ctx: &mut Ctx) {
    const N: u32 = 5_000;
    let ctr = alloc::sync::Arc::new(PercpuBox::new(0u32).unwrap());
    let c2 = ctr.clone();
    test::on_all_cores(ctx, move |cpu, _| {
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

fn wrapped_counters_still_sum(ctx: &mut Ctx) {
    // Per-core counters may wrap individually (an increment on one core, a decrement on another);
    // only the wrapping sum is meaningful.
    let ctr = alloc::sync::Arc::new(PercpuBox::new(0u32).unwrap());
    let c2 = ctr.clone();
    test::on_all_cores(ctx, move |cpu, _| {
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

fn dynamic_free_and_reuse(_ctx: &mut Ctx) {
    let before = percpu::dyn_bytes_used();
    let a = PercpuBox::new(1u32).unwrap();
    let addr = a.template_addr();
    assert_eq!(percpu::dyn_bytes_used(), before + 4);
    drop(a);
    assert_eq!(percpu::dyn_bytes_used(), before, "freed on drop");
    let b = PercpuBox::new(2u32).unwrap();
    assert_eq!(b.template_addr(), addr, "freed slot reused first");
    assert_eq!(b.get(), 2, "a reused slot is re-initialised");
}

fn allocation_failure_is_an_error(_ctx: &mut Ctx) {
    let mut held = Vec::new();
    let err = loop {
        match PercpuBox::new([0u8; 1024]) {
            Ok(b) => held.push(b),
            Err(e) => break e,
        }
        assert!(held.len() <= percpu::PERCPU_DYN_SIZE / 1024, "allocator handed out more than it has");
    };
    assert_eq!(err, PercpuAllocError::OutOfSpace);
    assert!(!held.is_empty());
    held.pop();
    assert!(PercpuBox::new([0u8; 1024]).is_ok(), "space freed by drop is usable again");
    assert_eq!(PercpuBox::new(()).err(), Some(PercpuAllocError::BadLayout));
}

quiescent::percpu! {
    static COPIED: u64 = 0;
    /// Not a word (two stores): its halves are always written equal, so a torn write shows.
    static PAIR: (u64, u64) = (0, 0);
    static PAIR_HOOK_ON: bool = false;
    static PAIR_HOOK_RUNS: u64 = 0;
    /// The value the hook last wrote to PAIR (both halves).
    static PAIR_HOOK_LAST: u64 = 0;
}

fn with_works_on_a_copy_so_set_inside_does_not_alias(_ctx: &mut Ctx) {
    // `with` hands `f` a copy on the stack: a `set` of the same variable inside `f` changes the
    // copy in the per-cpu area, not the one `f` holds, and is then overwritten by the write back
    // (the documented lost update), with no aliasing `&mut`.
    COPIED.set(1);
    let inside = COPIED.with(|v| {
        COPIED.set(2);
        let seen = (*v, COPIED.get());
        *v += 10;
        seen
    });
    assert_eq!(inside, (1, 2), "with's value changed under it by a set of the same variable");
    assert_eq!(COPIED.get(), 11, "the value with writes back must win over the set inside it");
}

/// A tick hook that replaces this core's PAIR (while PAIR_HOOK_ON) with a value of its own.
fn pair_hook(_: &AtomicCtx) {
    if PAIR_HOOK_ON.get() {
        let n = PAIR_HOOK_RUNS.get() + 1;
        PAIR_HOOK_RUNS.set(n);
        let v = (1 << 32) + n; // never one of the test's own values
        PAIR.with(|p| *p = (v, v));
        PAIR_HOOK_LAST.set(v);
    }
}

fn with_stays_masked_for_the_write_back(_ctx: &mut Ctx) {
    // `f` unmasks interrupts, so the tick hook's update of the same variable lands inside it (or
    // just after it): `with` must mask again for its write back, so the 16-byte value (two
    // stores) is always whole, the hook's or with's, never half of each.
    timer::add_hook(pair_hook);
    timer::start_tick(2000);
    PAIR_HOOK_ON.set(true);
    let t0 = arch::counter();
    let mut w = 0u64;
    while PAIR_HOOK_RUNS.get() < 50 {
        assert!(
            arch::ticks_to_ns(arch::counter() - t0) < 10_000_000_000,
            "the tick hook ran {} times in 10 s",
            PAIR_HOOK_RUNS.get()
        );
        w += 1;
        PAIR.with(|p| {
            arch::local_irq_enable();
            let t1 = arch::counter();
            while arch::ticks_to_ns(arch::counter() - t1) < 100_000 {
                arch::cpu_relax();
            }
            *p = (w, w);
        });
        let _irq = arch::IrqGuard::new();
        let (a, b) = PAIR.with(|p| *p);
        assert_eq!(a, b, "PAIR torn: halves {:#x} and {:#x}", a, b);
        assert!(a == w || a == PAIR_HOOK_LAST.get(), "PAIR holds {:#x}, neither with's {:#x} nor the hook's", a, w);
    }
    PAIR_HOOK_ON.set(false);
    timer::start_tick(smp::DEFAULT_TICK_HZ);
}

quiescent::tests!(
    static_local_write_is_invisible_to_other_cores,
    this_cpu_add_counts_per_core,
    dynamic_slots_are_densely_packed,
    dynamic_counters_sum_over_cores,
    wrapped_counters_still_sum,
    dynamic_free_and_reuse,
    allocation_failure_is_an_error,
    with_works_on_a_copy_so_set_inside_does_not_alias,
    with_stays_masked_for_the_write_back,
);
