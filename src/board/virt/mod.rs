//! QEMU `virt` (cortex-a72): PL011 at 0x0900_0000, RAM at 0x4000_0000, cores and the PSCI
//! conduit from the device tree that QEMU passes in x0 when it boots the raw Image.

use super::{BootInfo, GicConfig, MemKind, Region};
use crate::drivers::gic::v3::MAX_REDIST_REGIONS;
use crate::drivers::pl011::Pl011;
use alloc::vec;

/// The memory map: the first GiB is MMIO (GIC at 0x0800_0000, PL011 at 0x0900_0000, ...),
/// RAM starts at 1 GiB (the runner gives QEMU 1 GiB). With GICv3 and more than 123 cores QEMU
/// puts a second redistributor region at 256 GiB (`VIRT_HIGH_GIC_REDIST2`, 64 MiB: 512 more
/// cores); that GiB is mapped as Device too (one level-1 block, no table).
pub const MEMORY_MAP: &[Region] = &[
    Region { start: 0, size: 0x4000_0000, kind: MemKind::Device },
    Region { start: 0x4000_0000, size: 0x4000_0000, kind: MemKind::Normal },
    Region { start: 0x40_0000_0000, size: 0x4000_0000, kind: MemKind::Device },
];

/// GICv2 distributor, if the DTB names no interrupt controller (QEMU's fixed address).
pub const GICD_BASE: usize = 0x0800_0000;
/// GICv2 CPU interface, likewise.
pub const GICC_BASE: usize = 0x0801_0000;

/// PL011 UART0.
pub const UART_BASE: usize = 0x0900_0000;
/// QEMU's PL011 reference clock (24 MHz in the DTB's `apb_pclk`); QEMU ignores the divisor.
pub const UART_CLOCK_HZ: u32 = 24_000_000;
/// Console speed.
pub const UART_BAUD: u32 = 115_200;
/// The board's name in reports.
pub const NAME: &str = "virt";

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

/// QEMU virt has nothing to show progress on before its console: its UART needs no set-up.
pub fn boot_stage(_stage: super::Stage) {}

/// Reads the cores, the PSCI conduit and the command line from the DTB at `dtb`. QEMU enters
/// at EL1 or EL2 (`virtualization=on`), both fine: `_entry_el` needs no check here.
pub(crate) fn discover(dtb: usize, _entry_el: usize) -> BootInfo {
    let me = crate::arch::mpidr();
    let gic = GicConfig::V2 { gicd: GICD_BASE, gicc: GICC_BASE };
    let mut info = BootInfo { mpidr: vec![me], listed: 1, gic, bootargs: "" };
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
    match gic_of(&fdt) {
        Some(g) => info.gic = g,
        None => defmt::warn!("no GIC node in the device tree; assuming GICv2 at {=usize:#x}", GICD_BASE),
    }
    // Logical core numbers are dense, in the DTB's order with the boot core first: with GICv3
    // QEMU numbers 16 cores per cluster (Aff1), so MPIDR.Aff0 is not the core number.
    for cpu in fdt.cpus() {
        let id = cpu.ids().first() as u64;
        if id != me {
            info.mpidr.push(id);
        }
    }
    info.listed = info.mpidr.len();
    if let Some(args) = fdt.chosen().bootargs() {
        let args: &'static str =
            // SAFETY: 'static is sound because the DTB stays in place for the whole run (see above).
            unsafe { core::mem::transmute::<&str, &'static str>(args) };
        info.bootargs = args;
        super::set_bootargs(args);
    }
    info
}

/// The interrupt controller from the DTB: `arm,gic-v3` (distributor, then
/// `#redistributor-regions` redistributor regions) or `arm,cortex-a15-gic` / `arm,gic-400`
/// (distributor, CPU interface).
fn gic_of(fdt: &fdt::Fdt) -> Option<GicConfig> {
    let node = fdt.find_compatible(&["arm,gic-v3", "arm,cortex-a15-gic", "arm,gic-400"])?;
    let v3 = node.compatible()?.all().any(|c| c == "arm,gic-v3");
    let mut reg = node.reg()?.map(|r| (r.starting_address as usize, r.size.unwrap_or(0)));
    let (gicd, _) = reg.next()?;
    if v3 {
        let n = node.property("#redistributor-regions").and_then(|p| p.as_usize()).unwrap_or(1);
        if n > MAX_REDIST_REGIONS {
            defmt::error!("GICv3: {} redistributor regions, this driver reads {}", n, MAX_REDIST_REGIONS);
        }
        let mut redist = [(0, 0); MAX_REDIST_REGIONS];
        let mut nredist = 0;
        for (slot, r) in redist.iter_mut().zip(reg.take(n.min(MAX_REDIST_REGIONS))) {
            *slot = r;
            nredist += 1;
        }
        Some(GicConfig::V3 { gicd, redist, nredist })
    } else {
        let (gicc, _) = reg.next()?;
        Some(GicConfig::V2 { gicd, gicc })
    }
}

/// Why a core could not be started.
pub type StartError = smccc::psci::Error;

/// Starts core `cpu` (MPIDR `mpidr`) at `entry` with `x0 = cpu`, through PSCI CPU_ON.
///
/// # Safety
/// `entry` is code a core may start at with `x0 = cpu` and nothing else set up
/// ([`secondary_entry_addr`](crate::arch::secondary_entry_addr), for a core `cpu` the runtime
/// gave a stack slot and a per-cpu area), or the call must fail (a core already on, or one that
/// does not exist).
pub unsafe fn start_cpu(cpu: usize, mpidr: u64, entry: usize) -> Result<(), StartError> {
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
