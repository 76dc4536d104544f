//! The image's runtime: the boot order on core 0 and on the others, the stacks, and what ends a
//! run badly (the panic handler and the fatal-exception reporter, which name the running test
//! case when there is one).
//!
//! This is the one place that wires the layers together: each lower layer offers registration
//! and this code (or the layer above it, at its own `init`) registers.

use crate::arch::{self, exception};
use crate::percpu::{self, cpu_id};
use crate::{board, console, drivers, heap, rcu, smp};
use crate::{EXC_STACK_SIZE, GUARD_SIZE, MAX_CPUS, STACK_SIZE, STACK_SLOT};
use core::sync::atomic::{AtomicPtr, AtomicU8, AtomicUsize, Ordering};

const _: () = assert!(STACK_SLOT == GUARD_SIZE + STACK_SIZE + GUARD_SIZE + EXC_STACK_SIZE);

/// Offset of the exception stack's guard page in a slot (the normal stack's top).
const EXC_GUARD: usize = GUARD_SIZE + STACK_SIZE;

/// Exit code of an image whose test case failed or that panicked.
pub const EXIT_FAILED: i32 = 101;
/// Exit code of an image that took a fatal exception.
pub const EXIT_FAULT: i32 = 102;

/// Core 0's stack slot, static (its stack is needed before anything else); the other cores'
/// slots are carved at boot from the per-core region, for the cores present only.
#[repr(C, align(4096))]
struct Slot0([u8; STACK_SLOT]);

#[unsafe(link_section = ".stacks")]
#[used]
static mut STACK0: Slot0 = Slot0([0; STACK_SLOT]);

/// Start of each core's slot (`[guard | stack | exception stack]`), 0 for a core not set up.
/// `src/arch/boot/entry.S` loads a secondary's from here (by its x0) before its first stack access,
/// so it is written before the core is started (the dsb before CPU_ON orders it). 8 bytes per core
/// of MAX_CPUS (4 KiB).
#[unsafe(no_mangle)]
static QUIESCENT_SLOTS: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

core::arch::global_asm!(
    include_str!("arch/boot/entry.S"),
    STACK_SLOT = const STACK_SLOT,
    STACK_TOP = const GUARD_SIZE + STACK_SIZE,
    MAX_CPUS = const MAX_CPUS,
    MAIR = const arch::mmu::MAIR,
    TCR = const arch::mmu::TCR,
);

/// Start of core `cpu`'s stack slot (`[guard | stack | guard | exception stack]`), if it has one.
pub fn stack_slot(cpu: usize) -> Option<usize> {
    if cpu == 0 {
        return Some(core::ptr::addr_of!(STACK0) as usize);
    }
    let s = QUIESCENT_SLOTS.get(cpu)?.load(Ordering::Relaxed);
    (s != 0).then_some(s)
}

/// The core whose stack guard page (below its normal stack) contains `addr`, if any.
pub fn guard_page_owner(addr: usize) -> Option<usize> {
    (0..MAX_CPUS).map_while(stack_slot).position(|s| (s..s + GUARD_SIZE).contains(&addr))
}

/// The core whose exception stack's guard page (between its normal stack and its exception
/// stack) contains `addr`, if any.
pub fn exc_guard_page_owner(addr: usize) -> Option<usize> {
    (0..MAX_CPUS).map_while(stack_slot).position(|s| (s + EXC_GUARD..s + EXC_GUARD + GUARD_SIZE).contains(&addr))
}

fn is_guard_page(addr: usize) -> bool {
    guard_page_owner(addr).is_some() || exc_guard_page_owner(addr).is_some()
}

/// The exception level each core was entered at (before the boot code dropped to EL1); one
/// byte per core of MAX_CPUS.
static ENTRY_EL: [AtomicU8; MAX_CPUS] = [const { AtomicU8::new(0) }; MAX_CPUS];

/// The exception level core `cpu` was entered at (3, 2 or 1), or 0 if it never started.
pub fn entry_el(cpu: usize) -> usize {
    ENTRY_EL[cpu].load(Ordering::Relaxed) as usize
}

/// Bytes of per-core memory each core set up at boot costs: its stack slot (guard page, stack,
/// exception stack) and its per-cpu area, carved together from the per-core region.
pub const PER_CORE_BYTES: usize = STACK_SLOT + percpu::AREA_SIZE;

/// The per-core region: the RAM between the image's end and the board's image limit (below the
/// DTB), handed out upwards at boot.
struct Region {
    next: usize,
    end: usize,
}

impl Region {
    fn take(&mut self, bytes: usize, align: usize) -> Option<usize> {
        let at = self.next.next_multiple_of(align);
        (at + bytes <= self.end).then(|| {
            self.next = at + bytes;
            at
        })
    }
}

/// Carves a stack slot and a per-cpu area for each core 1..n from the per-core region, unmaps
/// each guard page (splitting 2 MiB blocks into page tables taken from the region too), and
/// reports what the cores cost. Returns how many cores got memory (fewer than `n` only if the
/// region ran out, which is reported).
fn alloc_per_core(n: usize) -> usize {
    unsafe extern "C" {
        static _end: u8;
        static __board_image_limit: u8;
    }
    let (start, end) = (core::ptr::addr_of!(_end) as usize, core::ptr::addr_of!(__board_image_limit) as usize);
    let mut region = Region { next: start, end };
    let mut tables = 0;
    for cpu in 1..n {
        let Some(slot) = region.take(PER_CORE_BYTES, 4096) else {
            defmt::error!(
                "per-core region ({=usize:#x}..{=usize:#x}) full: cores {}.. get no stack and are left off",
                start,
                end,
                cpu
            );
            return cpu;
        };
        // SAFETY: the area follows the slot inside this core's fresh, otherwise unused block;
        // the core has not started.
        unsafe { percpu::add_area(cpu, (slot + STACK_SLOT) as *mut u8) };
        QUIESCENT_SLOTS[cpu].store(slot, Ordering::Relaxed);
        let mut new_table = || {
            tables += 1;
            region.take(4096, 4096).expect("per-core region: no room for a page table")
        };
        // SAFETY: core 0 at boot, before any other core starts; the guard pages are this core's
        // and nothing uses them.
        unsafe {
            arch::mmu::unmap_page(slot, &mut new_table);
            arch::mmu::unmap_page(slot + EXC_GUARD, &mut new_table);
        }
    }
    let used = region.next - start;
    defmt::println!(
        "per-core memory: {} KiB per core (stack {} KiB, exception stack {} KiB, guard pages {} KiB, per-cpu area {} KiB); {} cores: {} KiB ({} KiB of it page tables for guard pages), core 0's static",
        PER_CORE_BYTES / 1024,
        STACK_SIZE / 1024,
        EXC_STACK_SIZE / 1024,
        2 * GUARD_SIZE / 1024,
        percpu::AREA_SIZE / 1024,
        n,
        (used + PER_CORE_BYTES) / 1024,
        tables * 4
    );
    n
}

unsafe extern "Rust" {
    /// The image's main function, named by [`entry!`](crate::entry!).
    fn __quiescent_main(ctx: &mut smp::Ctx) -> i32;
}

/// Names the image's main function: `quiescent::entry!(main);` with
/// `fn main(ctx: &mut quiescent::smp::Ctx) -> i32`, which runs on core 0 with core 0's blocking
/// context. Its return value is the image's exit code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __quiescent_main(ctx: &mut $crate::smp::Ctx) -> i32 {
            let f: fn(&mut $crate::smp::Ctx) -> i32 = $main;
            f(ctx)
        }
    };
}

/// Rust entry of core 0, from `src/arch/boot/entry.S` with the MMU off, BSS zeroed and a stack.
#[unsafe(no_mangle)]
extern "C" fn boot_primary(dtb: usize, el: usize) -> ! {
    board::boot_stage(board::Stage::ReachedRust);
    // SAFETY: first thing on core 0, alone, MMU off: builds the tables and turns the MMU and
    // caches on before any atomic or shared access (exclusives need the MMU on real hardware).
    unsafe { arch::mmu::init_and_enable(board::MEMORY_MAP, is_guard_page) };
    board::boot_stage(board::Stage::MmuOn);
    ENTRY_EL[0].store(el as u8, Ordering::Relaxed);
    arch::timer::enable_event_stream();
    // SAFETY: core 0 runs alone here, before any per-cpu access or allocation.
    unsafe {
        percpu::init_areas();
        percpu::set_local_area(0);
        heap::init();
    }
    exception::set_fatal_handler(fatal);
    board::init_console();
    board::boot_stage(board::Stage::ConsoleUp);
    let info = board::discover(dtb, el);
    let n = smp::plan_cpus(&info);
    let got = alloc_per_core(n);
    if got < n {
        smp::limit_cpus(got);
    }
    drivers::gic::init_distributor(info.gic);
    exception::set_irq_handler(drivers::gic::handle_irq);
    smp::init();
    // RCU installs its idle-loop, blocking-wait and interrupt-context hooks.
    let leaf_size = board::bootarg("rcu_leaf").and_then(|v| v.parse::<usize>().ok());
    // SAFETY: once, at boot, on core 0, interrupts masked, no other core started.
    unsafe { rcu::init(rcu::Config { leaf_size }) };
    if leaf_size.is_some() {
        // Only when asked: the default says nothing (an image's first line stays its own).
        let (leaf, cores) = (rcu::stats::leaf_size(), smp::num_possible());
        defmt::println!("rcu: {} core(s) per leaf, {} leaves for {} cores", leaf, cores.div_ceil(leaf), cores);
    }
    smp::boot_cpu_online();
    arch::local_irq_enable();
    smp::boot_secondaries();
    // SAFETY: core 0's thread of execution: RCU watches it (boot_cpu_online) and nothing else
    // on this core holds a context.
    let ctx = &mut unsafe { smp::Ctx::new() };
    let code = {
        // SAFETY: defined by the image through `entry!`.
        unsafe { __quiescent_main(ctx) }
    };
    smp::shutdown(code)
}

/// Rust entry of every other core, from `src/arch/boot/entry.S` on its own stack.
#[unsafe(no_mangle)]
extern "C" fn boot_secondary(cpu: usize, el: usize) -> ! {
    ENTRY_EL[cpu].store(el as u8, Ordering::Relaxed);
    arch::timer::enable_event_stream();
    // SAFETY: the area of `cpu` was initialised by core 0 before it started this core, and no
    // per-cpu access happened on this core before this point.
    unsafe { percpu::set_local_area(cpu) };
    smp::secondary_online(cpu)
}

// ---------------------------------------------------------------------------------------------
// Reports: which test case is running, the panic handler, fatal exceptions.
// ---------------------------------------------------------------------------------------------

/// The running test image and case, for the reports (as `&'static str` parts).
static BIN: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());
static CASE: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());
/// Counts the cores reporting a fatal exception / a panic: the first reports, the others stay
/// quiet. Separate, so that a panic inside the fatal report (or a fault inside the panic
/// report) is still reported.
static FAULTING: AtomicUsize = AtomicUsize::new(0);
static PANICKING: AtomicUsize = AtomicUsize::new(0);

fn load(p: &AtomicPtr<&'static str>) -> Option<&'static str> {
    let p = p.load(Ordering::Acquire);
    // SAFETY: only ever set by `store` from a leaked `Box<&'static str>`.
    (!p.is_null()).then(|| unsafe { *p })
}

fn store(p: &AtomicPtr<&'static str>, s: Option<&'static str>) {
    let v = s.map_or(core::ptr::null_mut(), |s| alloc::boxed::Box::leak(alloc::boxed::Box::new(s)) as *mut _);
    // Release: the leaked box is initialised before another core loads the pointer.
    p.store(v, Ordering::Release);
}

/// Names the test image now running, for the failure reports (the test registry,
/// [`crate::test`], sets it once).
pub fn set_running_image(bin: &'static str) {
    store(&BIN, Some(bin));
}

/// Names the test case now running (or none), for the failure reports. The test registry sets
/// it around each case.
pub fn set_running_case(case: Option<&'static str>) {
    store(&CASE, case);
}

/// Claims the report: returns for the first core; the others wait for the reporter's Stop IPI
/// and its exit.
fn claim_report(counter: &AtomicUsize) {
    if counter.fetch_add(1, Ordering::AcqRel) > 0 {
        loop {
            arch::wfe();
        }
    }
}

/// The fatal-exception report (registered with `arch::exception`): stops the other cores so
/// nothing interleaves, prints the exception, a stack overflow, the failed case, and exits.
fn fatal(fault: &exception::Fault) -> ! {
    console::take_over();
    claim_report(&FAULTING);
    smp::ipi::stop_others();
    fault.print(cpu_id());
    if let Some(owner) = guard_page_owner(fault.far as usize) {
        defmt::println!(
            "stack overflow on core {} (FAR {=u64:#x} is in its guard page; SP_EL0 {=u64:#x})",
            owner,
            fault.far,
            fault.frame.sp_el0
        );
    }
    if let Some(owner) = exc_guard_page_owner(fault.far as usize) {
        defmt::println!(
            "exception stack overflow on core {} (FAR {=u64:#x} is in its guard page): an interrupt handler used more than {} KiB of stack",
            owner,
            fault.far,
            EXC_STACK_SIZE / 1024
        );
    }
    if let (Some(bin), Some(case)) = (load(&BIN), load(&CASE)) {
        defmt::println!(
            "test {=str}::{=str} ... FAILED: {=str} exception on core {}",
            bin,
            case,
            fault.class(),
            cpu_id()
        );
    }
    smp::exit(EXIT_FAULT)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    let _irq = arch::local_irq_save();
    console::take_over();
    claim_report(&PANICKING);
    smp::ipi::stop_others();
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    let msg = defmt::Display2Format(&info.message());
    match (load(&BIN), load(&CASE)) {
        (Some(bin), Some(case)) => defmt::println!(
            "test {=str}::{=str} ... FAILED: {} at {=str}:{} (core {})",
            bin,
            case,
            msg,
            file,
            line,
            cpu_id()
        ),
        _ => defmt::println!("panic on core {}: {} at {=str}:{}", cpu_id(), msg, file, line),
    }
    smp::exit(EXIT_FAILED)
}
