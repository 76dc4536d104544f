//! quiescent: bare-metal ARM64 SMP firmware with per-core storage, a quiescent-state-based RCU,
//! and Linux's percpu-rwsem and percpu_ref built on it.
//!
//! Data flows one way: `boot/` → [`arch`] + [`board`] → [`percpu`] → [`smp`] (idle loop) →
//! primitives → the demo (`src/main.rs`) and the on-target tests (`tests/`).
//!
//! An image (the demo or a test) is a `#![no_main]` binary that names its main function with
//! [`entry!`]; the library boots every core, sets up per-core storage and the console, and calls
//! it on core 0 with every other core waiting in its idle loop.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

extern crate alloc;

pub mod arch;
pub mod board;
pub mod console;
pub mod drivers;
pub mod heap;
pub mod percpu;
pub mod rcu;
pub mod sync;
pub mod smp;
pub mod test;

use core::sync::atomic::{AtomicUsize, Ordering};

/// The most cores this build supports; cores beyond it are reported and left off.
pub const MAX_CPUS: usize = 8;

/// Bytes of stack per core.
pub const STACK_SIZE: usize = 64 * 1024;
/// One page below each stack, unmapped: a stack overflow faults instead of corrupting.
pub const GUARD_SIZE: usize = 4096;
/// Bytes of exception stack per core (SP_EL1), above the normal stack.
pub const EXC_STACK_SIZE: usize = 16 * 1024;
/// Bytes per core slot: `[guard | stack (SP_EL0) | exception stack (SP_EL1)]`.
pub const STACK_SLOT: usize = GUARD_SIZE + STACK_SIZE + EXC_STACK_SIZE;

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
core::arch::global_asm!(include_str!("../boot/vectors.S"));

/// The core whose stack guard page contains `addr`, if any.
pub fn guard_page_owner(addr: usize) -> Option<usize> {
    let off = addr.checked_sub(stacks_start())?;
    let cpu = off / STACK_SLOT;
    (cpu < MAX_CPUS && off % STACK_SLOT < GUARD_SIZE).then_some(cpu)
}

/// The exception level each core was entered at (before the boot code dropped to EL1).
static ENTRY_EL: [AtomicUsize; MAX_CPUS] = [const { AtomicUsize::new(0) }; MAX_CPUS];

/// The exception level core `cpu` was entered at (3, 2 or 1), or 0 if it never started.
pub fn entry_el(cpu: usize) -> usize {
    ENTRY_EL[cpu].load(Ordering::Relaxed)
}

unsafe extern "Rust" {
    /// The image's main function, named by [`entry!`].
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
    unsafe { arch::mmu::init_and_enable() };
    ENTRY_EL[0].store(el, Ordering::Relaxed);
    // SAFETY: core 0 runs alone here, before any per-cpu access or allocation.
    unsafe {
        percpu::init_areas();
        percpu::set_local_area(0);
        heap::init();
    }
    board::init_console();
    let info = board::discover(dtb);
    drivers::gic::init_distributor();
    rcu::init();
    smp::init_local_interrupts(0);
    rcu::eqs_exit();
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

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    test::report_panic(info)
}

/// Start of the stack slots (`[guard | stack]` per core).
pub fn stacks_start() -> usize {
    core::ptr::addr_of!(STACKS) as usize
}
