//! QEMU `virt` (cortex-a72): PL011 at 0x0900_0000, RAM at 0x4000_0000, cores and the PSCI
//! conduit from the device tree that QEMU passes in x0 when it boots the raw Image.

use super::{BootInfo, MemKind, Region};
use crate::drivers::pl011::Pl011;
use crate::MAX_CPUS;

/// The memory map: the first GiB is MMIO (GIC at 0x0800_0000, PL011 at 0x0900_0000, ...),
/// RAM starts at 1 GiB (the runner gives QEMU 1 GiB).
pub const MEMORY_MAP: &[Region] = &[
    Region { start: 0, size: 0x4000_0000, kind: MemKind::Device },
    Region { start: 0x4000_0000, size: 0x4000_0000, kind: MemKind::Normal },
];

/// GICv2 distributor.
pub const GICD_BASE: usize = 0x0800_0000;
/// GICv2 CPU interface.
pub const GICC_BASE: usize = 0x0801_0000;

/// PL011 UART0.
pub const UART_BASE: usize = 0x0900_0000;
/// QEMU's PL011 reference clock (24 MHz in the DTB's `apb_pclk`); QEMU ignores the divisor.
pub const UART_CLOCK_HZ: u32 = 24_000_000;
/// Console speed.
pub const UART_BAUD: u32 = 115_200;
/// The board's name in reports.
pub const NAME: &str = "qemu-virt";

// SAFETY: the PL011 of QEMU virt lives at this address; the console is its only user.
static UART: Pl011 = unsafe { Pl011::new(UART_BASE) };

/// Brings up the console.
pub fn init_console() {
    UART.init(UART_CLOCK_HZ, UART_BAUD);
    crate::console::set_uart(&UART);
}

/// How secondaries are started: the PSCI conduit named by the DTB's `/psci` node.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Conduit {
    /// `method = "hvc"` (EL1 entry: QEMU's PSCI sits at EL2).
    Hvc,
    /// `method = "smc"` (EL2 entry, `virtualization=on`: QEMU's PSCI sits at EL3).
    Smc,
}

static CONDUIT: spin::Once<Conduit> = spin::Once::new();

/// Reads the cores, the PSCI conduit and the command line from the DTB at `dtb`.
pub fn discover(dtb: usize) -> BootInfo {
    let mut info = BootInfo { mpidr: [0; MAX_CPUS], ncpus: 1, listed: 1, bootargs: "" };
    info.mpidr[0] = crate::arch::mpidr();
    if dtb == 0 {
        defmt::error!("no device tree in x0: boot the raw image (not the ELF); running on core 0 only");
        return info;
    }
    // SAFETY: QEMU placed a DTB at this address (Linux boot protocol) and nothing overwrites it:
    // it lies above the image's end (linker.ld asserts so).
    let fdt = match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
        Ok(f) => f,
        Err(e) => {
            defmt::error!("bad device tree at {=usize:#x}: {}", dtb, defmt::Debug2Format(&e));
            return info;
        }
    };
    let conduit = match fdt.find_node("/psci").and_then(|n| n.property("method")).and_then(|p| p.as_str()) {
        Some("smc") => Conduit::Smc,
        Some("hvc") => Conduit::Hvc,
        other => {
            defmt::error!("PSCI method {} not supported; running on core 0 only", defmt::Debug2Format(&other));
            return info;
        }
    };
    CONDUIT.call_once(|| conduit);
    let me = crate::arch::mpidr();
    let mut n = 1;
    let mut listed = 0;
    for cpu in fdt.cpus() {
        let id = cpu.ids().first() as u64;
        listed += 1;
        if id == me {
            continue;
        }
        if n < MAX_CPUS {
            info.mpidr[n] = id;
            n += 1;
        } else {
            defmt::warn!(
                "core with MPIDR {=u64:#x} is listed in the DTB but beyond MAX_CPUS = {}; left off",
                id,
                MAX_CPUS
            );
        }
    }
    info.ncpus = n;
    info.listed = listed.max(1);
    if let Some(args) = fdt.chosen().bootargs() {
        let args: &'static str =
            // SAFETY: 'static is sound because the DTB stays in place for the whole run (see above).
            unsafe { core::mem::transmute::<&str, &'static str>(args) };
        info.bootargs = args;
        super::set_bootargs(args);
    }
    info
}

/// Why a core could not be started.
pub type StartError = smccc::psci::Error;

/// Starts core `cpu` (MPIDR `mpidr`) at `entry` with `x0 = cpu`, through PSCI CPU_ON.
pub fn start_cpu(cpu: usize, mpidr: u64, entry: usize) -> Result<(), StartError> {
    match CONDUIT.get() {
        Some(Conduit::Smc) => smccc::psci::cpu_on::<smccc::Smc>(mpidr, entry as u64, cpu as u64),
        _ => smccc::psci::cpu_on::<smccc::Hvc>(mpidr, entry as u64, cpu as u64),
    }
}

/// The conduit in use, for reports.
pub fn conduit() -> Option<Conduit> {
    CONDUIT.get().copied()
}

/// Ends the run: QEMU exits with `code` through semihosting.
pub fn exit(code: i32) -> ! {
    use qemu_exit::QEMUExit;
    qemu_exit::AArch64::new().exit(code as u32)
}
