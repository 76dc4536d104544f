//! quiescent: bare-metal ARM64 SMP firmware with per-core storage, a quiescent-state-based RCU,
//! and Linux's percpu-rwsem and percpu_ref built on it.
//!
//! Data flows one way. Each layer names only the layers below it; where a lower layer must reach
//! a higher one (an interrupt reaching the IPI layer, the idle loop reaching RCU, a fatal
//! exception reaching the reporter) it offers registration, and the higher layer registers at
//! init. `scripts/check-layers` (run by `make lint`) enforces the order:
//!
//! ```text
//! test              the on-target test registry, its reporter and helpers
//! runtime           boot order, stacks, the panic handler and the fatal-exception report
//! sync              the primitives of `quiescent-sync`, and the rw_semaphore baselines
//! rcu               `quiescent-rcu` (QSBR grace periods, callbacks, RCU lists, RcuCell)
//! smp               bring-up, idle loop, work queues, IPIs, the tick; binds the platform's
//!                   kernel services (`quiescent_platform::kernel!`)
//! board             memory map, console UART, GIC bases, starting cores (PSCI / spin table)
//! console           defmt over the board's UART
//! drivers           PL011, GICv2 / GICv3
//! percpu, heap      per-core areas (`quiescent-platform`'s, TPIDR_EL1), the global allocator
//! arch              system registers, exception entry, MMU, timer registers (the fast paths
//!                   the primitives inline are `quiescent-platform`'s, re-exported)
//! ```
//!
//! An image (the demo or a test) is a `#![no_main]` binary that names its main function with
//! [`entry!`]; the [`runtime`] boots every core, sets up per-core storage and the console, and
//! calls it on core 0 with every other core waiting in its idle loop.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

extern crate alloc;

pub mod arch;
pub mod board;
pub mod console;
pub mod drivers;
pub mod heap;
pub mod runtime;
pub mod smp;
pub mod sync;
pub mod test;

pub use runtime::{entry_el, exc_guard_page_owner, guard_page_owner, stack_slot, PER_CORE_BYTES};

/// Per-core storage (TPIDR_EL1): the platform crate's, with its `percpu!` and `percpu_shared!`.
pub use quiescent_platform::{percpu, percpu_shared};
/// QSBR RCU: the `quiescent-rcu` crate.
pub use quiescent_rcu as rcu;

/// The most cores this build supports; cores beyond it are reported and left off. Per-core
/// memory (stacks, per-cpu areas, RCU's per-core state) is allocated at boot for the cores
/// present only; what MAX_CPUS itself costs is the fixed tables of small atomics indexed by core
/// number (docs/boot.md, "Many cores").
pub use quiescent_platform::MAX_CPUS;

/// Bytes of stack per core.
pub const STACK_SIZE: usize = 64 * 1024;
/// One page below each stack, unmapped: a stack overflow faults instead of corrupting.
pub const GUARD_SIZE: usize = 4096;
/// Bytes of exception stack per core (SP_EL1), above the normal stack and its own guard page
/// (an interrupt handler that overflows it faults instead of overwriting the frames of the code
/// it interrupted).
pub const EXC_STACK_SIZE: usize = 16 * 1024;
/// Bytes per core slot: `[guard | stack (SP_EL0) | guard | exception stack (SP_EL1)]`.
pub const STACK_SLOT: usize = GUARD_SIZE + STACK_SIZE + GUARD_SIZE + EXC_STACK_SIZE;
