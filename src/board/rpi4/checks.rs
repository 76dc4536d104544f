//! What the firmware's default armstub (raspberrypi/tools `armstubs/armstub8.S`, built into
//! start4.elf) guarantees, checked at boot: every core enters at EL2, CNTFRQ_EL0 holds the
//! counter's rate (54 MHz), and the GIC-400's interrupts are in group 1, which is what a
//! non-secure EL1 can reach (the stub writes GICD_IGROUPR for the SPIs and each core's banked
//! SGIs/PPIs when `enable_gic=1`, the default). Other settings in config.txt replace the stub
//! or skip parts of it, and the image would then fail in ways that look like a dead board: no
//! tick, no IPI, a counter that never advances in ns. Each finding names the setting likely to
//! blame.
//!
//! `arm_peri_high=1` is not checked here: it moves the UART, the GPIO block (and so the ACT
//! LED) and the GIC away from the addresses this image uses, so nothing could report it.

use super::GICD_BASE;
use core::ptr::{read_volatile, write_volatile};

/// What the boot found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// The exception level core 0 was entered at.
    pub entry_el: usize,
    /// CNTFRQ_EL0.
    pub cntfrq: u64,
    /// Whether non-secure EL1 reaches the GIC's interrupts (they are in group 1).
    pub gic_group1: bool,
}

/// Entered at EL3: no stub dropped to EL2.
pub const AT_EL3: &str = "entered at EL3, not EL2: the firmware's armstub did not run (kernel_old=1, or armstub= naming another stub, in config.txt?)";
/// Entered at EL1: some other stub already dropped to EL1.
pub const AT_EL1: &str = "entered at EL1, not EL2: a stub other than the firmware's started the image (armstub= in config.txt?); the spin table, CNTFRQ and GIC set-up this image relies on are the firmware stub's";
/// CNTFRQ_EL0 is 0.
pub const NO_CNTFRQ: &str = "CNTFRQ_EL0 is 0: nothing set the generic timer's frequency, which the firmware's armstub does (armstub= or kernel_old=1 in config.txt?)";
/// The GIC's interrupts are Secure.
pub const GIC_GROUP0: &str = "GIC-400: interrupts are in group 0 (Secure), which EL1 cannot reach: the firmware's armstub moves them to group 1 only with enable_gic=1 (enable_gic=0 or armstub= in config.txt?)";

/// Every finding in `f`, in boot order.
pub fn problems(f: &Found) -> impl Iterator<Item = &'static str> {
    let el = match f.entry_el {
        2 => None,
        3 => Some(AT_EL3),
        _ => Some(AT_EL1),
    };
    [el, (f.cntfrq == 0).then_some(NO_CNTFRQ), (!f.gic_group1).then_some(GIC_GROUP0)].into_iter().flatten()
}

/// Whether a non-secure write to interrupt `id`'s priority byte sticks: for a group-0 (Secure)
/// interrupt such accesses are RAZ/WI (GICv2 architecture specification: GICD_IPRIORITYRn, and the
/// Security Extensions' banking of the distributor),
/// which is the only way EL1 can tell the group (GICD_IGROUPR itself is RAZ/WI to it). The old
/// value is put back; the GIC driver sets every priority later anyway.
fn reaches(id: usize) -> bool {
    let p = (GICD_BASE + 0x400 + id) as *mut u8;
    // SAFETY: GICD_IPRIORITYR is byte-accessible (GICv2 specification); the distributor is mapped as
    // Device memory and only core 0 runs; the interrupt is disabled (nothing enabled it yet),
    // so its priority is free to change.
    unsafe {
        let old = read_volatile(p);
        write_volatile(p, 0xa0);
        let got = read_volatile(p);
        write_volatile(p, old);
        got != 0
    }
}

/// Probes the virtual timer's PPI (27, banked: core 0's) and the first SPI (32) for group 1.
pub fn gic_group1() -> bool {
    reaches(crate::arch::timer::VIRTUAL_TIMER_PPI as usize) && reaches(32)
}
