//! The image's runtime: the boot order on core 0 and on the others, the stacks, and what ends a
//! run badly (the panic handler and the fatal-exception reporter, which name the running test
//! case when there is one).
//!
//! This is the one place that wires the layers together: each lower layer offers registration
//! and this code (or the layer above it, at its own `init`) registers.

use crate::arch::{self, exception};
use crate::percpu::{self, cpu_id};
use crate::{board, drivers, heap, rcu, smp};
use crate::{EXC_STACK_SIZE, GUARD_SIZE, MAX_CPUS, STACK_SIZE, STACK_SLOT};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

const _: () = assert!(STACK_SLOT == GUARD_SIZE + STACK_SIZE + EXC_STACK_SIZE);

/// Exit code of an image whose test case failed or that panicked.
pub const EXIT_FAILED: i32 = 101;
/// Exit code of an image that took a fatal exception.
pub const EXIT_FAULT: i32 = 102;

#[repr(C, align(4096))]
struct Stacks([[u8; STACK_SLOT]; MAX_CPUS]);

#[unsafe(link_section = ".stacks")]
#[used]
static mut STACKS: Stacks = Stacks([[0; STACK_SLOT]; MAX_CPUS]);

core::arch::global_asm!(
    include_str!("../boot/entry.S"),
    STACK_SLOT = const STACK_SLOT,
    STACK_TOP = const GUARD_SIZE + STACK_SIZE,
    MAX_CPUS = const MAX_CPUS,
    MAIR = const arch::mmu::MAIR,
    TCR = const arch::mmu::TCR,
);

/// Start of the stack slots (`[guard | stack | exception stack]` per core).
pub fn stacks_start() -> usize {
    core::ptr::addr_of!(STACKS) as usize
}

/// The core whose stack guard page contains `addr`, if any.
pub fn guard_page_owner(addr: usize) -> Option<usize> {
    let off = addr.checked_sub(stacks_start())?;
    let cpu = off / STACK_SLOT;
    (cpu < MAX_CPUS && off % STACK_SLOT < GUARD_SIZE).then_some(cpu)
}

fn is_guard_page(addr: usize) -> bool {
    guard_page_owner(addr).is_some()
}

/// The exception level each core was entered at (before the boot code dropped to EL1).
static ENTRY_EL: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// The exception level core `cpu` was entered at (3, 2 or 1), or 0 if it never started.
pub fn entry_el(cpu: usize) -> usize {
    ENTRY_EL[cpu].load(Ordering::Relaxed)
}

unsafe extern "Rust" {
    /// The image's main function, named by [`entry!`](crate::entry!).
    fn __quiescent_main() -> i32;
}

/// Names the image's main function: `quiescent::entry!(main);` with `fn main() -> i32`.
/// Its return value is the image's exit code.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[unsafe(no_mangle)]
        fn __quiescent_main() -> i32 {
            let f: fn() -> i32 = $main;
            f()
        }
    };
}

/// Rust entry of core 0, from `boot/entry.S` with the MMU off, BSS zeroed and a stack.
#[unsafe(no_mangle)]
extern "C" fn boot_primary(dtb: usize, el: usize) -> ! {
    // SAFETY: first thing on core 0, alone, MMU off: builds the tables and turns the MMU and
    // caches on before any atomic or shared access (exclusives need the MMU on real hardware).
    unsafe { arch::mmu::init_and_enable(board::MEMORY_MAP, is_guard_page) };
    ENTRY_EL[0].store(el, Ordering::Relaxed);
    // SAFETY: core 0 runs alone here, before any per-cpu access or allocation.
    unsafe {
        percpu::init_areas();
        percpu::set_local_area(0);
        heap::init();
    }
    exception::set_fatal_handler(fatal);
    board::init_console();
    let info = board::discover(dtb);
    drivers::gic::init_distributor(board::GICD_BASE, board::GICC_BASE);
    exception::set_irq_handler(drivers::gic::handle_irq);
    smp::init();
    // RCU installs its idle-loop, blocking-wait and interrupt-context hooks.
    rcu::init();
    smp::boot_cpu_online();
    arch::local_irq_enable();
    smp::boot_secondaries(&info);
    let code = {
        // SAFETY: defined by the image through `entry!`.
        unsafe { __quiescent_main() }
    };
    smp::shutdown(code)
}

/// Rust entry of every other core, from `boot/entry.S` on its own stack.
#[unsafe(no_mangle)]
extern "C" fn boot_secondary(cpu: usize, el: usize) -> ! {
    ENTRY_EL[cpu].store(el, Ordering::Relaxed);
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
