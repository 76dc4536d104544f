//! Interrupts: the per-core tick, IPIs, cross-core calls, nested masking, IRQ-safe per-cpu adds.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use quiescent::arch;
use quiescent::percpu::cpu_id;
use quiescent::smp::tick as timer;
use quiescent::smp::{self, ipi, ipi::Ipi, AtomicCtx, Ctx};
use quiescent::test;

/// Measures every core's tick rate over `ms` of counter time, each core busy meanwhile (an idle
/// core takes no tick: see `an_idle_core_takes_no_tick`).
fn measured_rates(ctx: &mut Ctx, ms: u64) -> alloc::vec::Vec<f64> {
    test::on_all_cores(ctx, move |c, _| {
        let before = timer::ticks(c);
        let t0 = arch::counter();
        while arch::ticks_to_ns(arch::counter() - t0) < ms * 1_000_000 {
            arch::cpu_relax();
        }
        let secs = arch::ticks_to_ns(arch::counter() - t0) as f64 / 1e9;
        (timer::ticks(c) - before) as f64 / secs
    })
}

fn timer_ticks_on_every_core_at_the_configured_rate(ctx: &mut Ctx) {
    for hz in [smp::DEFAULT_TICK_HZ, 250] {
        test::on_all_cores(ctx, move |_, _| timer::start_tick(hz));
        for (cpu, rate) in measured_rates(ctx, 400).into_iter().enumerate() {
            let lo = hz as f64 * 0.75;
            let hi = hz as f64 * 1.25;
            assert!(rate >= lo && rate <= hi, "core {}: {} ticks/s at {} Hz configured", cpu, rate as u32, hz);
        }
    }
    test::on_all_cores(ctx, |_, _| timer::start_tick(smp::DEFAULT_TICK_HZ));
}

fn an_idle_core_takes_no_tick(ctx: &mut Ctx) {
    let Some(c) = smp::online_cpus().find(|&c| c != cpu_id()) else {
        return;
    };
    // Asleep for 200 ms with no wake-up: no tick either (the idle loop stops the timer).
    let t0 = arch::counter();
    let slept = loop {
        while !smp::is_sleeping(c) {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000, "core {} never went to sleep", c);
            arch::cpu_relax();
        }
        let (ticks, wakeups) = (timer::ticks(c), smp::wakeups(c));
        let t1 = arch::counter();
        while arch::ticks_to_ns(arch::counter() - t1) < 200_000_000 {
            arch::cpu_relax();
        }
        if smp::wakeups(c) == wakeups && smp::is_sleeping(c) {
            break timer::ticks(c) - ticks;
        }
        assert!(
            arch::ticks_to_ns(arch::counter() - t0) < 5_000_000_000,
            "core {} never slept 200 ms without a wake-up (a tick or an IPI)",
            c
        );
    };
    assert_eq!(slept, 0, "core {} took {} ticks asleep", c, slept);
    // Woken, it ticks again while busy.
    let busy = smp::call_on(ctx, c, move |_| {
        let before = timer::ticks(c);
        let t1 = arch::counter();
        while arch::ticks_to_ns(arch::counter() - t1) < 100_000_000 {
            arch::cpu_relax();
        }
        timer::ticks(c) - before
    });
    assert!(busy >= 5, "core {} took {} ticks in 100 ms busy after a sleep", c, busy);
}

fn ipi_round_trip_to_every_core(ctx: &mut Ctx) {
    for c in smp::online_cpus().filter(|&c| c != cpu_id()) {
        let before = ipi::received(c, Ipi::Call);
        let t0 = arch::counter();
        let who = ipi::call_function_single(ctx, c, |_| cpu_id());
        let ns = arch::ticks_to_ns(arch::counter() - t0);
        assert_eq!(who, c, "the call ran on core {}", who);
        assert_eq!(ipi::received(c, Ipi::Call), before + 1, "core {} counted one Call IPI", c);
        defmt::info!("IPI call round trip to core {}: {} ns", c, ns);
        let wakes = ipi::received(c, Ipi::Wake);
        ipi::send(c, Ipi::Wake);
        let t0 = arch::counter();
        while ipi::received(c, Ipi::Wake) == wakes {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 1_000_000_000, "core {} never took the Wake IPI", c);
            arch::cpu_relax();
        }
    }
}

fn cross_core_call_returns_the_callees_result(ctx: &mut Ctx) {
    for c in smp::online_cpus() {
        let r = ipi::call_function_single(ctx, c, move |_| (cpu_id() * 10 + c) as u64 + arch::current_el());
        assert_eq!(r, (c * 11) as u64 + 1);
    }
}

fn calls_interrupt_a_busy_core(ctx: &mut Ctx) {
    if smp::num_online() < 2 {
        return;
    }
    // Core 1 spins in a work item (interrupts enabled) until released; a call still runs on it,
    // in interrupt context, and a ReportState IPI names a PC inside the image's code.
    let release = Arc::new(AtomicBool::new(false));
    let spinning = Arc::new(AtomicBool::new(false));
    let (r2, s2) = (release.clone(), spinning.clone());
    smp::queue_work(1, move |_| {
        s2.store(true, Ordering::Release);
        while !r2.load(Ordering::Acquire) {
            arch::cpu_relax();
        }
    });
    while !spinning.load(Ordering::Acquire) {
        arch::cpu_relax();
    }
    assert_eq!(ipi::call_function_single(ctx, 1, |_| cpu_id()), 1);
    let pc = ipi::report_pc(1, 1000).expect("core 1 did not answer ReportState");
    let text = test::text_range();
    assert!(text.contains(&(pc as usize)), "reported PC {:#x} outside .text", pc);
    release.store(true, Ordering::Release);
}

fn interrupt_masking_nests(_ctx: &mut Ctx) {
    assert!(!arch::irqs_disabled(), "test cases run with interrupts enabled");
    let outer = arch::local_irq_save();
    assert!(arch::irqs_disabled());
    {
        let _inner = arch::IrqGuard::new();
        assert!(arch::irqs_disabled());
    }
    assert!(arch::irqs_disabled(), "inner restore must not unmask");
    // No tick is taken while masked (the pending one arrives after the restore).
    let me = cpu_id();
    let t = timer::ticks(me);
    let t0 = arch::counter();
    while arch::ticks_to_ns(arch::counter() - t0) < 50_000_000 {
        arch::cpu_relax();
    }
    assert_eq!(timer::ticks(me), t, "a tick was taken with interrupts masked");
    arch::local_irq_restore(outer);
    assert!(!arch::irqs_disabled(), "outer restore unmasks");
    let t0 = arch::counter();
    while timer::ticks(me) == t {
        assert!(arch::ticks_to_ns(arch::counter() - t0) < 1_000_000_000, "the pending tick never arrived");
        arch::cpu_relax();
    }
}

quiescent::percpu! {
    static SHARED_WITH_IRQ: u32 = 0;
    static HOOK_ADDS: u32 = 0;
}
static HOOK_ON: AtomicBool = AtomicBool::new(false);

fn tick_hook(_: &AtomicCtx) {
    if HOOK_ON.load(Ordering::Relaxed) {
        SHARED_WITH_IRQ.this_cpu_add(1);
        HOOK_ADDS.set(HOOK_ADDS.get() + 1);
    }
}

fn this_cpu_add_is_safe_against_interrupts(ctx: &mut Ctx) {
    // Each core adds to its counter in a tight loop while its own tick handler adds to the same
    // counter at 2 kHz, until the handler has run at least 50 times there. A torn
    // read-modify-write would lose updates.
    timer::add_hook(tick_hook);
    test::on_all_cores(ctx, |_, _| timer::start_tick(2000));
    HOOK_ON.store(true, Ordering::Release);
    let loops = test::on_all_cores(ctx, |_, _| {
        let t0 = arch::counter();
        let mut n = 0u32;
        while HOOK_ADDS.get() < 50 {
            assert!(
                arch::ticks_to_ns(arch::counter() - t0) < 10_000_000_000,
                "the tick handler ran {} times in 10 s",
                HOOK_ADDS.get()
            );
            for _ in 0..1000 {
                SHARED_WITH_IRQ.this_cpu_add(1);
            }
            n += 1000;
        }
        n
    });
    HOOK_ON.store(false, Ordering::Release);
    let got = test::on_all_cores(ctx, |_, _| {
        let _irq = arch::IrqGuard::new();
        (SHARED_WITH_IRQ.get(), HOOK_ADDS.get())
    });
    test::on_all_cores(ctx, |_, _| timer::start_tick(smp::DEFAULT_TICK_HZ));
    for (cpu, ((v, h), n)) in got.into_iter().zip(loops).enumerate() {
        assert_eq!(v, n + h, "core {}: {} loop adds + {} handler adds != {}", cpu, n, h, v);
    }
}

static PINGS: AtomicU64 = AtomicU64::new(0);

fn ipis_to_all_others_reach_every_core(_ctx: &mut Ctx) {
    let n = smp::num_online() as u64;
    let before: alloc::vec::Vec<u64> = smp::online_cpus().map(|c| ipi::received(c, Ipi::Wake)).collect();
    ipi::send_others(Ipi::Wake);
    for (c, b) in smp::online_cpus().zip(before) {
        if c == cpu_id() {
            continue;
        }
        let t0 = arch::counter();
        while ipi::received(c, Ipi::Wake) == b {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 1_000_000_000, "core {} missed the broadcast", c);
            arch::cpu_relax();
        }
    }
    PINGS.fetch_add(n, Ordering::Relaxed);
}

/// One SGI write per GICv3 cluster (a GICv2 target list): every second other core, so the lists
/// have holes and, past 16 cores, span clusters.
fn ipis_to_a_set_of_cores_reach_each_of_them(_ctx: &mut Ctx) {
    let set: alloc::vec::Vec<usize> = smp::online_cpus().filter(|&c| c != cpu_id() && c % 2 == 1).collect();
    let before: alloc::vec::Vec<u64> = smp::online_cpus().map(|c| ipi::received(c, Ipi::Wake)).collect();
    ipi::send_many(&set, Ipi::Wake);
    for &c in &set {
        let t0 = arch::counter();
        while ipi::received(c, Ipi::Wake) == before[c] {
            assert!(arch::ticks_to_ns(arch::counter() - t0) < 1_000_000_000, "core {} missed its SGI", c);
            arch::cpu_relax();
        }
    }
}

quiescent::tests!(
    timer_ticks_on_every_core_at_the_configured_rate,
    an_idle_core_takes_no_tick,
    ipi_round_trip_to_every_core,
    ipis_to_all_others_reach_every_core,
    ipis_to_a_set_of_cores_reach_each_of_them,
    cross_core_call_returns_the_callees_result,
    calls_interrupt_a_busy_core,
    interrupt_masking_nests,
    this_cpu_add_is_safe_against_interrupts,
);
