//! The board layer: everything that names an address or a boot protocol.
//!
//! One board is compiled in, chosen by a cargo feature (`board-virt`, the default, or
//! `board-rpi4`); `make ... BOARD=rpi4` sets it. A board supplies the console UART, the list of
//! cores and how to start them, and its load address (`board.ld`).

#[cfg(not(feature = "board-rpi4"))]
mod virt;
#[cfg(not(feature = "board-rpi4"))]
pub use virt::*;

#[cfg(feature = "board-rpi4")]
mod rpi4;
#[cfg(feature = "board-rpi4")]
pub use rpi4::*;

use alloc::vec::Vec;

pub use crate::arch::mmu::{MemKind, Region};
pub use crate::drivers::gic::GicConfig;

/// Exit code of a run the board refused to go on with: the machine is not set up as the image
/// needs (a boot check; the error on the UART names what and the likely cause).
pub const EXIT_BOOT_CHECK: i32 = 103;

/// How far the boot got, for a board that can show it before the console exists (the Pi 4's
/// ACT LED).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stage {
    /// Rust runs on core 0 (the MMU is still off: the board may use no atomics and no memory
    /// but the stack).
    ReachedRust,
    /// The MMU and caches are on.
    MmuOn,
    /// The console is up.
    ConsoleUp,
}

/// What the board found at boot.
pub struct BootInfo {
    /// MPIDR affinity of each core the hardware description lists, in its order (index =
    /// logical core number, the boot core first). May be longer than this build supports.
    pub mpidr: Vec<u64>,
    /// Cores the hardware description lists (`mpidr.len()`, at least 1).
    pub listed: usize,
    /// The interrupt controller and its register bases.
    pub gic: GicConfig,
    /// Kernel command line (`/chosen/bootargs`), or empty.
    pub bootargs: &'static str,
}

/// A value `key=value` from the kernel command line, e.g. `expect-entry-el=2`.
pub fn bootarg(key: &str) -> Option<&'static str> {
    let args = BOOTARGS.get()?;
    args.split_whitespace().find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

static BOOTARGS: spin::Once<&'static str> = spin::Once::new();

pub(crate) fn set_bootargs(s: &'static str) {
    BOOTARGS.call_once(|| s);
}
