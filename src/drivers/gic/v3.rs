//! GICv3 (QEMU virt with `gic-version=3`): distributor with affinity routing, one redistributor
//! per core, and the system-register CPU interface (`arch::gic_cpuif`). Offsets follow the GICv3
//! architecture specification (IHI 0069H), 12.9 (GICD) and 12.10-12.11 (GICR).
//!
//! The pitfalls: with affinity routing (GICD_CTLR.ARE) SGIs and PPIs are configured in each core's
//! redistributor, not the distributor; a redistributor is found by matching its GICR_TYPER affinity
//! with the core's MPIDR (their order in the frame array need not be the cores' order); a core's
//! redistributor ignores it until GICR_WAKER.ProcessorSleep is cleared; ICC_SRE_EL1.SRE must be set
//! (and ICC_SRE_EL2.Enable at EL2, which `src/arch/boot/entry.S` does) before any `ICC_*` access;
//! an SGI's target list names Aff0 values within one Aff3.Aff2.Aff1 cluster.

use super::{IntId, SgiTarget, PMR, PRIORITY};
use crate::arch::gic_cpuif as icc;
use crate::percpu::cpu_id;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

/// Redistributor regions the DTB may list (`#redistributor-regions`).
pub const MAX_REDIST_REGIONS: usize = 4;

register_structs! {
    /// The distributor (GICD), with affinity routing: SPIs only.
    Distributor {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _reserved1),
        (0x0280 => icpendr: [ReadWrite<u32>; 32]),
        (0x0300 => _reserved2),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 255]),
        (0x07fc => _reserved3),
        (0x6000 => irouter: [ReadWrite<u64>; 1020]),
        (0x7fe0 => @END),
    },
    /// A redistributor's control frame (RD_base).
    RdFrame {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => _iidr),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _statusr),
        (0x0014 => waker: ReadWrite<u32>),
        (0x0018 => @END),
    },
    /// A redistributor's SGI/PPI frame (SGI_base = RD_base + 64 KiB).
    SgiFrame {
        (0x0000 => _reserved0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _reserved2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _reserved3),
        (0x0280 => icpendr0: ReadWrite<u32>),
        (0x0284 => _reserved4),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x0420 => @END),
    }
}

const CTLR_RWP: u32 = 1 << 31;
const CTLR_ARE_NS: u32 = 1 << 4;
const CTLR_ENABLE_GRP1NS: u32 = 1 << 1;
const GICR_CTLR_RWP: u32 = 1 << 3;
const TYPER_VLPIS: u64 = 1 << 1;
const TYPER_LAST: u64 = 1 << 4;
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;
/// ICC_SGI1R_EL1.IRM: every core but the sender.
const SGI1R_IRM: u64 = 1 << 40;
/// A GICv3 redistributor: RD_base and SGI_base frames of 64 KiB each (GICv4 adds two more).
const FRAME: usize = 0x1_0000;

static GICD: AtomicUsize = AtomicUsize::new(0);
static REGIONS: [(AtomicUsize, AtomicUsize); MAX_REDIST_REGIONS] =
    [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_REDIST_REGIONS];
/// Each logical core's redistributor (RD_base), found at its `init_cpu` (0: not set up).
static RD: [AtomicUsize; crate::MAX_CPUS] = [const { AtomicUsize::new(0) }; crate::MAX_CPUS];
/// Each logical core's MPIDR affinity, recorded at its `init_cpu`: SGI targets.
static AFF: [AtomicU64; crate::MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; crate::MAX_CPUS];

fn gicd() -> &'static Distributor {
    // SAFETY: `init_distributor` stored the DTB's distributor base, mapped as device memory for
    // the whole run, before any caller can reach here.
    unsafe { &*(GICD.load(Ordering::Relaxed) as *const Distributor) }
}

fn rd_at(base: usize) -> &'static RdFrame {
    // SAFETY: `base` is a redistributor frame inside a region the DTB listed (device memory,
    // mapped for the whole run).
    unsafe { &*(base as *const RdFrame) }
}

fn sgi_at(base: usize) -> &'static SgiFrame {
    // SAFETY: as `rd_at`; the SGI frame follows RD_base.
    unsafe { &*((base + FRAME) as *const SgiFrame) }
}

/// Spins until `busy` is false, or names what did not finish after about a second of spinning.
fn wait(what: &str, mut busy: impl FnMut() -> bool) {
    for _ in 0..10_000_000u32 {
        if !busy() {
            return;
        }
        core::hint::spin_loop();
    }
    defmt::error!("GICv3: {=str} did not finish on core {}", what, cpu_id());
}

/// MPIDR affinity (Aff3 in bits 39:32) as GICR_TYPER.Affinity_Value packs it (Aff3 in 31:24).
fn typer_affinity(mpidr: u64) -> u64 {
    (mpidr & 0xff_ffff) | (((mpidr >> 32) & 0xff) << 24)
}

/// Distributor set-up (see `gic::init_distributor`): affinity routing on, every SPI in group 1
/// (non-secure), disabled, not pending, with a priority, routed to this core (core 0).
pub(super) fn init_distributor(gicd_base: usize, regions: &[(usize, usize)]) {
    GICD.store(gicd_base, Ordering::Relaxed);
    for (slot, &(base, size)) in REGIONS.iter().zip(regions) {
        slot.0.store(base, Ordering::Relaxed);
        slot.1.store(size, Ordering::Relaxed);
    }
    let d = gicd();
    d.ctlr.set(0);
    wait("GICD_CTLR write", || d.ctlr.get() & CTLR_RWP != 0);
    // ARE must be set while the groups are disabled (IHI 0069H 12.9.4).
    d.ctlr.set(CTLR_ARE_NS);
    wait("GICD_CTLR write", || d.ctlr.get() & CTLR_RWP != 0);
    let words = ((d.typer.get() & 0x1f) as usize + 1).min(32); // ITLinesNumber: 32 ids per word
    for n in 1..words {
        d.igroupr[n].set(!0);
        d.icenabler[n].set(!0);
        d.icpendr[n].set(!0);
    }
    for n in 8..(words * 8).min(255) {
        d.ipriorityr[n].set(u32::from_ne_bytes([PRIORITY; 4]));
    }
    let me = crate::arch::mpidr();
    // IROUTER<n>: Aff3 in bits 39:32, Aff2..Aff0 in 23:0, as MPIDR; Interrupt_Routing_Mode 0.
    for id in 32..(words * 32).min(1020) {
        d.irouter[id].set(me);
    }
    wait("GICD_CTLR write", || d.ctlr.get() & CTLR_RWP != 0);
    d.ctlr.set(CTLR_ARE_NS | CTLR_ENABLE_GRP1NS);
    wait("GICD_CTLR write", || d.ctlr.get() & CTLR_RWP != 0);
}

/// The redistributor whose GICR_TYPER affinity is `mpidr`'s, walking every region's frames.
fn find_redistributor(mpidr: u64) -> Option<usize> {
    let want = typer_affinity(mpidr);
    for (b, s) in REGIONS.iter() {
        let (base, size) = (b.load(Ordering::Relaxed), s.load(Ordering::Relaxed));
        let mut at = base;
        while size != 0 && at + 2 * FRAME <= base + size {
            let typer = rd_at(at).typer.get();
            if typer >> 32 == want {
                return Some(at);
            }
            if typer & TYPER_LAST != 0 {
                break;
            }
            at += if typer & TYPER_VLPIS != 0 { 4 * FRAME } else { 2 * FRAME };
        }
    }
    None
}

/// This core's set-up: find and wake its redistributor, put its SGIs and PPIs in group 1 with
/// a priority, enable the SGIs, then the system-register CPU interface.
pub(super) fn init_cpu(cpu: usize) {
    let me = crate::arch::mpidr();
    let Some(rd) = find_redistributor(me) else {
        panic!("GICv3: no redistributor for core {} (MPIDR {:#x}) in the DTB's regions", cpu, me)
    };
    RD[cpu].store(rd, Ordering::Relaxed);
    let r = rd_at(rd);
    r.waker.set(r.waker.get() & !WAKER_PROCESSOR_SLEEP);
    wait("GICR_WAKER (redistributor wake-up)", || r.waker.get() & WAKER_CHILDREN_ASLEEP != 0);
    let s = sgi_at(rd);
    s.igroupr0.set(!0);
    s.icenabler0.set(0xffff_0000); // PPIs: their owners enable them (the tick)
    s.icpendr0.set(!0);
    for p in &s.ipriorityr {
        p.set(u32::from_ne_bytes([PRIORITY; 4]));
    }
    s.isenabler0.set(0x0000_ffff); // SGIs 0..15
    wait("GICR_CTLR write", || r.ctlr.get() & GICR_CTLR_RWP != 0);

    icc::enable_sre();
    if !icc::sre() {
        defmt::error!("GICv3: ICC_SRE_EL1.SRE stays 0 on core {} (EL2 did not set ICC_SRE_EL2.Enable?)", cpu);
    }
    icc::set_pmr(PMR);
    icc::set_bpr1(0);
    icc::set_ctlr_default();
    icc::enable_group1();
    // Release: whoever reads this core's affinity (to send it an SGI) sees its redistributor up.
    AFF[cpu].store(me, Ordering::Release);
}

/// Enables interrupt `id`: an SGI or PPI in this core's redistributor, an SPI in the distributor.
pub(super) fn enable(id: IntId) {
    let n = id.id();
    if n < 32 {
        let rd = RD[cpu_id()].load(Ordering::Relaxed);
        assert!(rd != 0, "GICv3: enable({}) on core {} before its init_cpu", n, cpu_id());
        sgi_at(rd).isenabler0.set(1 << n);
    } else {
        gicd().isenabler[n as usize / 32].set(1 << (n % 32));
    }
}

/// ICC_SGI1R_EL1 for SGI `id` to the cores of one cluster (`mpidr`'s Aff3.Aff2.Aff1, and Aff0's
/// range of 16 selected by RS) whose Aff0 bits (low 4) are set in `list`.
fn sgi1r(id: IntId, mpidr: u64, list: u16) -> u64 {
    let aff1 = (mpidr >> 8) & 0xff;
    let aff2 = (mpidr >> 16) & 0xff;
    let aff3 = (mpidr >> 32) & 0xff;
    let rs = (mpidr & 0xff) >> 4;
    (aff3 << 48) | (rs << 44) | (aff2 << 32) | ((id.id() as u64) << 24) | (aff1 << 16) | list as u64
}

/// Sends SGI `id`.
pub(super) fn send_sgi(id: IntId, target: SgiTarget) {
    let v = match target {
        SgiTarget::Cpu(c) => {
            let mpidr = AFF[c].load(Ordering::Acquire);
            assert!(mpidr != u64::MAX, "GICv3: SGI {} to core {}, whose GIC is not set up", id.id(), c);
            sgi1r(id, mpidr, 1 << (mpidr & 0xf))
        }
        SgiTarget::AllButSelf => SGI1R_IRM | ((id.id() as u64) << 24),
    };
    // The message written before the SGI (Normal memory) must be observable before the SGI is
    // raised by a system-register write: dsb, as Linux's gic_ipi_send_mask. Pairs with the
    // `dsb sy` after the IAR1 read in ack (arch::gic_cpuif::read_iar1).
    crate::arch::dsb_ishst();
    icc::write_sgi1r(v);
}

/// Sends SGI `id` to every core in `cpus` with one ICC_SGI1R_EL1 write per run of cores in one
/// cluster of 16 (sharing Aff3.Aff2.Aff1 and Aff0's range; `cpus` in core order groups them),
/// instead of one per core.
pub(super) fn send_sgi_many(id: IntId, cpus: impl Iterator<Item = usize>) {
    let mut pending: Option<(u64, u16)> = None;
    // The message before any of the SGIs; pairs as in send_sgi.
    crate::arch::dsb_ishst();
    for c in cpus {
        let mpidr = AFF[c].load(Ordering::Acquire);
        if mpidr == u64::MAX {
            continue;
        }
        let cluster = mpidr & !0xf;
        match &mut pending {
            Some((cl, list)) if *cl == cluster => *list |= 1 << (mpidr & 0xf),
            _ => {
                if let Some((cl, list)) = pending {
                    icc::write_sgi1r(sgi1r(id, cl, list));
                }
                pending = Some((cluster, 1 << (mpidr & 0xf)));
            }
        }
    }
    if let Some((cl, list)) = pending {
        icc::write_sgi1r(sgi1r(id, cl, list));
    }
}

/// Acknowledges the highest-priority pending group-1 interrupt (INTID in bits 23:0).
pub(super) fn ack() -> u32 {
    icc::read_iar1()
}

/// End of interrupt.
pub(super) fn eoi(iar: u32) {
    icc::write_eoir1(iar);
}
