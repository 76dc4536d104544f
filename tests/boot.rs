//! Boot: every core online, each at EL1, each with its own per-cpu base and stack.
#![no_std]
#![no_main]

extern crate alloc;

use quiescent::drivers::gic;
use quiescent::smp::{self, Ctx};
use quiescent::{arch, board, percpu, test, GUARD_SIZE, MAX_CPUS, STACK_SIZE};

fn every_listed_core_comes_online(_ctx: &mut Ctx) {
    // MAX_CPUS, `maxcpus=` on the command line, or GICv2's 8: cores beyond are reported and
    // left off.
    let gic_max = if gic::version_in_use() == 2 { 8 } else { MAX_CPUS };
    let expected = smp::num_listed().min(MAX_CPUS).min(smp::cpu_limit()).min(gic_max);
    assert_eq!(smp::num_online(), expected, "online cores vs cores listed by the board");
    assert!(smp::online_cpus().eq(0..expected), "online cores have holes");
}

/// `expect-gic=N` on the command line: the GIC the firmware found in the DTB and brought up.
fn the_gic_is_the_one_the_machine_has(_ctx: &mut Ctx) {
    let v = gic::version_in_use();
    assert!(v == 2 || v == 3, "GIC version {}", v);
    if let Some(want) = board::bootarg("expect-gic").and_then(|v| v.parse::<u32>().ok()) {
        assert_eq!(v, want, "GIC version in use");
    }
}

fn every_core_runs_at_el1(ctx: &mut Ctx) {
    for (cpu, el) in test::on_all_cores(ctx, |_, _| arch::current_el()).into_iter().enumerate() {
        assert_eq!(el, 1, "core {} runs at EL{}", cpu, el);
    }
}

fn entry_el_is_reported_and_dropped_from(_ctx: &mut Ctx) {
    let want: Option<usize> = board::bootarg("expect-entry-el").and_then(|v| v.parse().ok());
    for cpu in smp::online_cpus() {
        let el = quiescent::entry_el(cpu);
        assert!((1..=3).contains(&el), "core {} has no entry EL recorded ({})", cpu, el);
    }
    if let Some(want) = want {
        // Core 0 is entered by QEMU's loader at the machine's highest non-secure EL.
        assert_eq!(quiescent::entry_el(0), want, "core 0 entry EL");
    }
}

fn each_core_has_its_own_tpidr_and_stack(ctx: &mut Ctx) {
    let r = test::on_all_cores(ctx, |cpu, _| {
        let sp: usize;
        // SAFETY: reads sp; no memory effects.
        unsafe { core::arch::asm!("mov {}, sp", out(reg) sp) };
        (cpu, arch::tpidr(), sp, percpu::cpu_id())
    });
    for &(cpu, tpidr, sp, id) in &r {
        assert_eq!(id, cpu, "per-cpu id on core {}", cpu);
        assert_eq!(tpidr, percpu::offset(cpu), "TPIDR_EL1 of core {}", cpu);
        let lo = quiescent::stack_slot(cpu).expect("an online core has a stack slot") + GUARD_SIZE;
        let hi = lo + STACK_SIZE;
        assert!(sp > lo && sp <= hi, "core {} sp {:#x} outside its stack {:#x}..{:#x}", cpu, sp, lo, hi);
    }
    let mut t: alloc::vec::Vec<usize> = r.iter().map(|x| x.1).collect();
    t.sort_unstable();
    t.dedup();
    assert_eq!(t.len(), r.len(), "two cores share TPIDR_EL1");
}

fn each_core_reads_its_own_mpidr(ctx: &mut Ctx) {
    for (cpu, m) in test::on_all_cores(ctx, |_, _| arch::mpidr()).into_iter().enumerate() {
        assert_eq!(m, smp::mpidr_of(cpu), "core {} MPIDR", cpu);
        assert_eq!(smp::cpu_of_mpidr(m), Some(cpu), "MPIDR {:#x} maps back to core {}", m, cpu);
    }
    // With GICv3 QEMU puts 16 cores in a cluster (Aff0 0..15), then the next Aff1: the core
    // number is not Aff0.
    if gic::version_in_use() == 3 && smp::num_online() > 16 {
        assert_eq!(smp::mpidr_of(16), 0x100, "core 16's MPIDR");
    }
}

fn start_errors_are_named(_ctx: &mut Ctx) {
    // Starting a core that is already on must fail with ALREADY_ON, and a core that does not
    // exist with INVALID_PARAMETERS (PSCI's names; the spin-table board uses the same), both
    // reported, nothing hangs.
    if smp::num_online() > 1 {
        // SAFETY: core 1 is on, so the call fails (and would start it at secondary_entry).
        let e = unsafe { board::start_cpu(1, smp::mpidr_of(1), arch::secondary_entry_addr()) };
        assert_eq!(e, Err(board::StartError::AlreadyOn), "starting a running core");
    }
    // SAFETY: no core has this MPIDR, so the call fails.
    let e = unsafe { board::start_cpu(7, 0xff_ff, arch::secondary_entry_addr()) };
    assert_eq!(e, Err(board::StartError::InvalidParameters), "starting a core that does not exist");
}

/// The arm64 Image header (Linux's `Documentation/arch/arm64/booting.rst`) must describe how
/// this image is really placed: linked at a fixed address, so flags bit 3 ("may be placed
/// anywhere in memory") must be clear, and the link address must be the first RAM's 2 MiB base
/// plus `text_offset` (where a loader honouring bit 3 = 0 puts it).
fn image_header_describes_a_fixed_placement(_ctx: &mut Ctx) {
    let start = test::text_range().start;
    // SAFETY: the 64-byte header is the first thing in .text (linker.ld KEEPs .text.head first),
    // mapped read-only for the whole run.
    let word = |off: usize| unsafe { core::ptr::read_volatile((start + off) as *const u64) };
    let (text_offset, image_size, flags, magic) = (word(8), word(16), word(24), word(56) as u32);
    assert_eq!(magic, u32::from_le_bytes(*b"ARM\x64"), "Image header magic");
    assert_eq!(flags & 1, 0, "flags bit 0: little-endian");
    assert_eq!((flags >> 1) & 3, 1, "flags bits 2:1: 4 KiB pages");
    assert_eq!(
        flags & (1 << 3),
        0,
        "flags bit 3 says the image may be placed anywhere, but it is linked at a fixed address"
    );
    let ram = board::MEMORY_MAP.iter().find(|r| r.kind == board::MemKind::Normal).expect("the board lists RAM").start;
    let base = (ram + 0x1f_ffff) & !0x1f_ffff;
    assert_eq!(
        start as u64,
        base as u64 + text_offset,
        "linked at {:#x}, header says RAM 2 MiB base {:#x} + text_offset {:#x}",
        start,
        base,
        text_offset
    );
    // image_size must cover what the runtime uses past _end: the other cores' stacks and
    // per-cpu areas, carved up to the board's image limit.
    unsafe extern "C" {
        static __board_image_limit: u8;
    }
    let limit = core::ptr::addr_of!(__board_image_limit) as u64;
    assert_eq!(
        start as u64 + image_size,
        limit,
        "header image_size {:#x} ends at {:#x}, but the runtime uses memory up to the image limit {:#x}",
        image_size,
        start as u64 + image_size,
        limit
    );
    for cpu in smp::online_cpus() {
        let slot = quiescent::stack_slot(cpu).unwrap_or(0) as u64;
        assert!(slot < limit, "core {}'s stack slot {:#x} lies past image_size", cpu, slot);
    }
}

/// The timer event stream (arch::timer::enable_event_stream) is on on every core, triggered by
/// the counter bit that gives about 10 kHz at this board's CNTFRQ (Linux's choice).
fn every_core_has_the_timer_event_stream(ctx: &mut Ctx) {
    // Linux's rounding at the two boards' rates and the field's clamp: 54 MHz (Pi 4) is bit 11
    // (13.2 kHz), 62.5 MHz (QEMU virt) bit 12 (7.6 kHz), 1 GHz (-cpu max) bit 15 (15.3 kHz).
    for (hz, bit) in [(54_000_000, 11), (62_500_000, 12), (1_000_000_000, 15), (19_200_000, 10), (10_000, 0)] {
        assert_eq!(arch::timer::event_stream_bit(hz), bit, "event-stream bit for a {} Hz counter", hz);
    }
    let freq = arch::counter_freq();
    let bit = arch::timer::event_stream_bit(freq) as u64;
    let rate = freq >> (bit + 1);
    assert!((5_000..=20_000).contains(&rate), "event stream at {} Hz from a {} Hz counter (bit {})", rate, freq, bit);
    for (cpu, k) in test::on_all_cores(ctx, |_, _| arch::timer::kernel_control()).into_iter().enumerate() {
        assert!(k & (1 << 2) != 0, "core {}: CNTKCTL_EL1 {:#x} has EVNTEN clear", cpu, k);
        assert_eq!((k >> 4) & 0xf, bit, "core {}: CNTKCTL_EL1 {:#x} EVNTI", cpu, k);
        assert_eq!(k & (1 << 3), 0, "core {}: CNTKCTL_EL1 {:#x} EVNTDIR (events on 0->1)", cpu, k);
    }
}

quiescent::tests!(
    image_header_describes_a_fixed_placement,
    every_core_has_the_timer_event_stream,
    every_listed_core_comes_online,
    the_gic_is_the_one_the_machine_has,
    every_core_runs_at_el1,
    entry_el_is_reported_and_dropped_from,
    each_core_has_its_own_tpidr_and_stack,
    each_core_reads_its_own_mpidr,
    start_errors_are_named,
);
