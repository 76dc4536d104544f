//! GICv2 (QEMU virt's default GIC, the Pi 4's GIC-400): distributor, per-core CPU interface,
//! one handler table for every interrupt id, end of interrupt, and SGIs.
//!
//! Hand-written (about 200 lines) rather than `arm-gic`: the firmware needs the banked per-core
//! set-up, SGI target encoding and dispatch in one place where the pitfalls can be commented:
//! an SPI with no ITARGETSR target goes nowhere; the IAR of an SGI carries the sender's CPU
//! number in bits 12:10 (mask it for the id, but write the whole IAR back to EOIR); SGIR's
//! target-list filter 0b01 means "all but self". The registers are described with
//! `tock-registers`, as the PL011's are; offsets follow the GICv2 architecture specification
//! (IHI 0048B), 4.1 and 4.4.
//!
//! The driver knows no subsystem: the tick and the IPI layer install their handlers with
//! [`set_handler`], and the arch layer's IRQ vector calls [`handle_irq`] once it is registered
//! there.

use crate::arch::exception::Frame;
use crate::percpu::cpu_id;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
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

/// An interrupt id: SGI 0..15, PPI 16..31 (banked per core), SPI 32 and up.
#[derive(Clone, Copy, PartialEq, Eq, Debug, defmt::Format)]
pub struct IntId(u32);

impl IntId {
    /// Software-generated interrupt `n` (0..15).
    pub const fn sgi(n: u32) -> Self {
        assert!(n < 16, "SGI numbers are 0..15");
        IntId(n)
    }
    /// A private peripheral interrupt by its GIC id (16..31), e.g. the virtual timer's 27.
    pub const fn ppi(id: u32) -> Self {
        assert!(id >= 16 && id < 32, "PPI ids are 16..31");
        IntId(id)
    }
    /// A shared peripheral interrupt by its GIC id (32 and up).
    pub const fn spi(id: u32) -> Self {
        assert!(id >= 32 && id < SPURIOUS, "SPI ids are 32..1019");
        IntId(id)
    }
    /// The GIC id.
    pub const fn id(self) -> u32 {
        self.0
    }
    /// Whether this is an SGI.
    pub const fn is_sgi(self) -> bool {
        self.0 < 16
    }
}

/// Ids at or above this are spurious / special.
const SPURIOUS: u32 = 1020;
/// Priority given to every interrupt (lower = more urgent; all equal: no preemption).
const PRIORITY: u8 = 0xa0;
/// SGIR target-list filter: every core but the sender.
const SGIR_ALL_BUT_SELF: u32 = 0b01 << 24;

/// Handlers by id: SGIs, PPIs and SPIs up to this many ids (the boards use a few low SPIs).
const MAX_IDS: usize = 128;
/// An interrupt handler: gets its id and the interrupted code's registers (IRQs masked).
pub type Handler = fn(IntId, &Frame);
static HANDLERS: [AtomicUsize; MAX_IDS] = [const { AtomicUsize::new(0) }; MAX_IDS];

static GICD: AtomicUsize = AtomicUsize::new(0);
static GICC: AtomicUsize = AtomicUsize::new(0);
static READY: AtomicBool = AtomicBool::new(false);
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

/// Distributor set-up, on core 0 once, with the board's register bases: all SPIs disabled,
/// pending cleared, priority set, routed to core 0; then the distributor is enabled.
pub fn init_distributor(gicd_base: usize, gicc_base: usize) {
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
    READY.store(true, Ordering::Release);
}

/// Per-core set-up (banked registers): SGIs and PPIs get a priority, SGIs are enabled, the CPU
/// interface accepts every priority and is enabled. Records this core's interface bit.
pub fn init_cpu(cpu: usize) {
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
    c.pmr.set(0xf0);
    c.bpr.set(0);
    c.ctlr.set(1);
}

/// Enables interrupt `id` (a PPI on this core, or an SPI routed to core 0).
pub fn enable(id: IntId) {
    gicd().isenabler[id.0 as usize / 32].set(1 << (id.0 % 32));
}

/// Installs `handler` for interrupt `id` (replacing any earlier one). Enabling is separate:
/// PPIs are enabled per core by their owner ([`enable`]).
pub fn set_handler(id: IntId, handler: Handler) {
    assert!((id.0 as usize) < MAX_IDS, "interrupt {} beyond the handler table ({} ids)", id.0, MAX_IDS);
    HANDLERS[id.0 as usize].store(handler as usize, Ordering::Release);
}

/// Installs `handler` for SPI `id` and enables it.
pub fn register_spi(id: IntId, handler: Handler) {
    set_handler(id, handler);
    enable(id);
}

/// Whether the GIC has been brought up (IPIs can be sent).
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// Whom an SGI goes to.
#[derive(Clone, Copy)]
pub enum SgiTarget {
    /// One logical core.
    Cpu(usize),
    /// Every core but the sender.
    AllButSelf,
}

/// Sends SGI `id`.
pub fn send_sgi(id: IntId, target: SgiTarget) {
    debug_assert!(id.is_sgi());
    let v = match target {
        SgiTarget::Cpu(c) => ((IFACE[c].load(Ordering::Acquire) as u32) << 16) | id.0,
        SgiTarget::AllButSelf => SGIR_ALL_BUT_SELF | id.0,
    };
    // The message written before the SGI (to Normal memory) must be observable before the
    // interrupt is (a Device write): dsb, not dmb. Pairs with the IAR read in handle_irq, after
    // which the receiver reads the message.
    crate::arch::dsb_ishst();
    gicd().sgir.set(v);
}

/// The IRQ entry (registered with `arch::exception` at boot): acknowledge, dispatch, end of
/// interrupt, until none is pending.
pub fn handle_irq(frame: &Frame) {
    loop {
        let iar = gicc().iar.get();
        let id = iar & 0x3ff;
        if id >= SPURIOUS {
            return;
        }
        if id < 16 {
            // The sender's message (Normal memory) is read only after the acknowledge (a
            // Device read) has seen the SGI; pairs with the dsb in send_sgi (Linux's
            // gic_handle_irq does the same).
            crate::arch::smp_rmb();
        }
        let h = HANDLERS.get(id as usize).map_or(0, |h| h.load(Ordering::Acquire));
        if h != 0 {
            // SAFETY: only `set_handler` stores here, always a `Handler`.
            let f: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
            f(IntId(id), frame);
        } else {
            defmt::warn!("unhandled interrupt {} on core {}", id, cpu_id());
        }
        // The whole IAR value (with an SGI's source CPU bits) goes back to EOIR.
        gicc().eoir.set(iar);
    }
}
