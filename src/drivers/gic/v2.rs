//! GICv2 (QEMU virt's default GIC, the Pi 4's GIC-400): distributor, per-core banked CPU
//! interface, SGIs. The pitfalls: an SPI with no ITARGETSR target goes nowhere; the IAR of an
//! SGI carries the sender's CPU number in bits 12:10 (mask it for the id, but write the whole
//! IAR back to EOIR); SGIR's target-list filter 0b01 means "all but self". The registers are
//! described with `tock-registers`, as the PL011's are; offsets follow the GICv2 architecture
//! specification (IHI 0048B), 4.1 and 4.4.

use super::{IntId, SgiTarget, PMR, PRIORITY};
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_structs! {
    /// The distributor (GICD): one for the whole system; the SGI/PPI words are banked per core.
    Distributor {
        (0x000 => ctlr: ReadWrite<u32>),
        (0x004 => typer: ReadOnly<u32>),
        (0x008 => _reserved0),
        (0x100 => isenabler: [ReadWrite<u32>; 32]),
        (0x180 => icenabler: [ReadWrite<u32>; 32]),
        (0x200 => _reserved1),
        (0x280 => icpendr: [ReadWrite<u32>; 32]),
        (0x300 => _reserved2),
        (0x400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x7fc => _reserved3),
        (0x800 => itargetsr: [ReadWrite<u32>; 255]),
        (0xbfc => _reserved4),
        (0xf00 => sgir: WriteOnly<u32>),
        (0xf04 => @END),
    },
    /// The CPU interface (GICC): banked, each core sees its own.
    CpuInterface {
        (0x00 => ctlr: ReadWrite<u32>),
        (0x04 => pmr: ReadWrite<u32>),
        (0x08 => bpr: ReadWrite<u32>),
        (0x0c => iar: ReadOnly<u32>),
        (0x10 => eoir: WriteOnly<u32>),
        (0x14 => @END),
    }
}

/// GICv2 numbers CPU interfaces in an 8-bit target mask (ITARGETSR, SGIR): at most 8 cores.
pub const MAX_CORES: usize = 8;
/// SGIR target-list filter: every core but the sender.
const SGIR_ALL_BUT_SELF: u32 = 0b01 << 24;

static GICD: AtomicUsize = AtomicUsize::new(0);
static GICC: AtomicUsize = AtomicUsize::new(0);
/// GIC CPU-interface bit of each logical core (from its banked ITARGETSR0), 0 if not set up.
static IFACE: [AtomicU8; crate::MAX_CPUS] = [const { AtomicU8::new(0) }; crate::MAX_CPUS];

fn gicd() -> &'static Distributor {
    // SAFETY: `init_distributor` stored the board's distributor base, mapped as device memory
    // for the whole run, before any caller can reach here (every path starts after it).
    unsafe { &*(GICD.load(Ordering::Relaxed) as *const Distributor) }
}

fn gicc() -> &'static CpuInterface {
    // SAFETY: as `gicd`, for the CPU interface base (banked: each core reaches its own).
    unsafe { &*(GICC.load(Ordering::Relaxed) as *const CpuInterface) }
}

/// Distributor set-up (see `gic::init_distributor`), with the board's register bases.
pub(super) fn init_distributor(gicd_base: usize, gicc_base: usize) {
    GICD.store(gicd_base, Ordering::Relaxed);
    GICC.store(gicc_base, Ordering::Relaxed);
    let d = gicd();
    d.ctlr.set(0);
    let words = (d.typer.get() & 0x1f) as usize + 1; // ITLinesNumber: 32 ids per word
    for n in 1..words {
        d.icenabler[n].set(!0);
        d.icpendr[n].set(!0);
    }
    // 1020 ids at most: IPRIORITYR/ITARGETSR words 8..255 (word 255 is reserved).
    for n in 8..(words * 8).min(255) {
        d.ipriorityr[n].set(u32::from_ne_bytes([PRIORITY; 4]));
        d.itargetsr[n].set(0x0101_0101);
    }
    d.ctlr.set(1);
}

/// Per-core set-up (banked registers): SGIs and PPIs get a priority, SGIs are enabled, the CPU
/// interface accepts every priority and is enabled. Records this core's interface bit.
pub(super) fn init_cpu(cpu: usize) {
    let d = gicd();
    for n in 0..8 {
        d.ipriorityr[n].set(u32::from_ne_bytes([PRIORITY; 4]));
    }
    d.isenabler[0].set(0x0000_ffff); // SGIs 0..15

    // Non-secure accesses to Secure (group 0) interrupts are RAZ/WI: on a Pi whose firmware did
    // not move them to group 1 (enable_gic=1) no SGI or tick would ever arrive. Say so.
    if d.isenabler[0].get() & 0xffff != 0xffff {
        defmt::error!(
            "GIC: SGIs of core {} stay disabled (interrupts are Secure-only; enable_gic=1 in config.txt?)",
            cpu
        );
    }
    // ITARGETSR0..7 are banked and read-only: each byte reads as this core's own bit.
    let me = (d.itargetsr[0].get() & 0xff) as u8;
    IFACE[cpu].store(if me == 0 { 1 << cpu } else { me }, Ordering::Release);
    let c = gicc();
    c.pmr.set(PMR as u32);
    c.bpr.set(0);
    c.ctlr.set(1);
}

/// Enables interrupt `id` (banked: a PPI or SGI on this core; an SPI routed to core 0).
pub(super) fn enable(id: IntId) {
    gicd().isenabler[id.id() as usize / 32].set(1 << (id.id() % 32));
}

/// Sends SGI `id`.
pub(super) fn send_sgi(id: IntId, target: SgiTarget) {
    let v = match target {
        SgiTarget::Cpu(c) => ((IFACE[c].load(Ordering::Acquire) as u32) << 16) | id.id(),
        SgiTarget::AllButSelf => SGIR_ALL_BUT_SELF | id.id(),
    };
    // The message written before the SGI (to Normal memory) must be observable before the
    // interrupt is (a Device write): dsb, not dmb. Pairs with the IAR read in handle_irq, after
    // which the receiver reads the message.
    crate::arch::dsb_ishst();
    gicd().sgir.set(v);
}

/// Sends SGI `id` to every core in `cpus`: one SGIR write with their interface bits.
pub(super) fn send_sgi_many(id: IntId, cpus: &[usize]) {
    let list = cpus.iter().fold(0u32, |m, &c| m | IFACE[c].load(Ordering::Acquire) as u32);
    // As in send_sgi: the message before the SGI; pairs with the smp_rmb in ack.
    crate::arch::dsb_ishst();
    gicd().sgir.set((list << 16) | id.id());
}

/// Acknowledges the highest-priority pending interrupt: the whole IAR (an SGI's carries its
/// sender in bits 12:10, which [`eoi`] must get back).
pub(super) fn ack() -> u32 {
    let iar = gicc().iar.get();
    if iar & 0x3ff < 16 {
        // The sender's message (Normal memory) is read only after the acknowledge (a Device
        // read) has seen the SGI; pairs with the dsb in send_sgi (Linux's gic_handle_irq does
        // the same).
        crate::arch::smp_rmb();
    }
    iar
}

/// End of interrupt: the whole IAR value (with an SGI's source CPU bits) goes back to EOIR.
pub(super) fn eoi(iar: u32) {
    gicc().eoir.set(iar);
}
