//! The interrupt controller: GICv2 ([`v2`]: QEMU virt's default, the Pi 4's GIC-400) or GICv3
//! ([`v3`]: QEMU virt with `gic-version=3`, needed past 8 cores), behind one interface: a typed
//! [`IntId`], one handler table for every id, [`enable`], [`send_sgi`] to one core or to all but
//! this one, and `handle_irq` (acknowledge, dispatch, end of interrupt). The IPI layer and the
//! tick never know which GIC runs.
//!
//! Hand-written rather than Google's `arm-gic`: see the README ("Crates, and why").
//!
//! The driver knows no subsystem: the tick and the IPI layer install their handlers with
//! [`set_handler`], and the arch layer's IRQ vector calls `handle_irq` once it is registered
//! there.

pub mod v2;
pub mod v3;

use crate::arch::exception::Frame;
use crate::percpu::cpu_id;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// An interrupt id: SGI 0..15, PPI 16..31 (private to each core), SPI 32 and up.
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

/// Ids at or above this are spurious / special (1020..1023), on both versions.
const SPURIOUS: u32 = 1020;
/// Priority given to every interrupt (lower = more urgent; all equal: no preemption).
const PRIORITY: u8 = 0xa0;
/// The priority mask: every priority above (numerically below) this is signalled.
const PMR: u8 = 0xf0;

/// Handlers by id: SGIs, PPIs and SPIs up to this many ids (the boards use a few low SPIs).
const MAX_IDS: usize = 128;
/// An interrupt handler: gets its id and the interrupted code's registers (IRQs masked).
pub type Handler = fn(IntId, &Frame);
static HANDLERS: [AtomicUsize; MAX_IDS] = [const { AtomicUsize::new(0) }; MAX_IDS];

/// Which GIC the board described, with its register bases.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum GicConfig {
    /// GICv2 (`arm,cortex-a15-gic`, `arm,gic-400`): distributor and CPU interface.
    V2 {
        /// GICD base.
        gicd: usize,
        /// GICC base.
        gicc: usize,
    },
    /// GICv3 (`arm,gic-v3`): distributor and the redistributor regions (base, size).
    V3 {
        /// GICD base.
        gicd: usize,
        /// Redistributor regions (QEMU virt: one below 4 GiB for 123 cores, one high for more).
        redist: [(usize, usize); v3::MAX_REDIST_REGIONS],
        /// How many of `redist` are used.
        nredist: usize,
    },
}

impl GicConfig {
    /// 2 or 3.
    pub fn version(&self) -> u32 {
        match self {
            GicConfig::V2 { .. } => 2,
            GicConfig::V3 { .. } => 3,
        }
    }
    /// The most cores this GIC can deliver interrupts to: GICv2's CPU interfaces are numbered
    /// in an 8-bit target mask; GICv3 routes by affinity (no limit below ours).
    pub fn max_cores(&self) -> usize {
        match self {
            GicConfig::V2 { .. } => v2::MAX_CORES,
            GicConfig::V3 { .. } => usize::MAX,
        }
    }
}

const NONE: u8 = 0;
const V2: u8 = 2;
const V3: u8 = 3;
/// The version brought up by `init_distributor` (NONE before).
static VERSION: AtomicU8 = AtomicU8::new(NONE);
static READY: AtomicBool = AtomicBool::new(false);

fn version() -> u8 {
    VERSION.load(Ordering::Relaxed)
}

/// Distributor set-up, on core 0 once, before any core's [`init_cpu`]: every SPI disabled,
/// pending cleared, given a priority and routed to core 0; then the distributor is enabled.
pub(crate) fn init_distributor(cfg: GicConfig) {
    match cfg {
        GicConfig::V2 { gicd, gicc } => {
            VERSION.store(V2, Ordering::Relaxed);
            v2::init_distributor(gicd, gicc);
        }
        GicConfig::V3 { gicd, redist, nredist } => {
            VERSION.store(V3, Ordering::Relaxed);
            v3::init_distributor(gicd, &redist[..nredist]);
        }
    }
    READY.store(true, Ordering::Release);
}

/// This core's set-up (its GICv2 banked registers / its GICv3 redistributor and system-register
/// CPU interface): SGIs and PPIs get a priority, SGIs are enabled, every priority is accepted.
/// Records how SGIs reach logical core `cpu`.
pub(crate) fn init_cpu(cpu: usize) {
    match version() {
        V2 => v2::init_cpu(cpu),
        V3 => v3::init_cpu(cpu),
        _ => panic!("GIC: init_cpu on core {} before init_distributor", cpu),
    }
}

/// Enables interrupt `id` (a PPI or SGI on this core, or an SPI routed to core 0).
pub fn enable(id: IntId) {
    match version() {
        V2 => v2::enable(id),
        _ => v3::enable(id),
    }
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

/// The GIC version in use (2 or 3; 0 before `init_distributor`), for reports and tests.
pub fn version_in_use() -> u32 {
    version() as u32
}

/// Whom an SGI goes to.
#[derive(Clone, Copy)]
pub enum SgiTarget {
    /// One logical core.
    Cpu(usize),
    /// Every core but the sender.
    AllButSelf,
}

/// Sends SGI `id`. The sender's earlier writes to Normal memory (the message) are visible to the
/// receiver's handler: each version's `send_sgi` puts a `dsb ishst` before the write that raises
/// the SGI, paired with the acknowledge in `handle_irq`.
pub fn send_sgi(id: IntId, target: SgiTarget) {
    debug_assert!(id.is_sgi());
    match version() {
        V2 => v2::send_sgi(id, target),
        _ => v3::send_sgi(id, target),
    }
}

/// Sends SGI `id` to every core in `cpus` (not this one, normally): GICv2 with one SGIR write
/// whose target list holds them all, GICv3 with one ICC_SGI1R_EL1 write per cluster of 16.
pub fn send_sgi_many(id: IntId, cpus: &[usize]) {
    debug_assert!(id.is_sgi());
    match version() {
        V2 => v2::send_sgi_many(id, cpus),
        _ => v3::send_sgi_many(id, cpus.iter().copied()),
    }
}

/// The IRQ entry (registered with `arch::exception` at boot): acknowledge, dispatch, end of
/// interrupt, until none is pending. Not public: called from anywhere but the IRQ vector, it
/// would run the handlers without RCU's interrupt entry (they would read where RCU does not
/// watch the core).
pub(crate) fn handle_irq(frame: &Frame) {
    let v3 = version() == V3;
    loop {
        // The acknowledge orders the SGI sender's message before the handler's reads: GICv2 with
        // an smp_rmb after the IAR load, GICv3 with the dsb inside read_iar1 (see each).
        let iar = if v3 { v3::ack() } else { v2::ack() };
        let id = iar & 0xff_ffff & if v3 { !0 } else { 0x3ff };
        if id >= SPURIOUS {
            return;
        }
        let h = HANDLERS.get(id as usize).map_or(0, |h| h.load(Ordering::Acquire));
        if h != 0 {
            // SAFETY: only `set_handler` stores here, always a `Handler`.
            let f: Handler = unsafe { core::mem::transmute::<usize, Handler>(h) };
            f(IntId(id), frame);
        } else {
            defmt::warn!("unhandled interrupt {} on core {}", id, cpu_id());
        }
        if v3 {
            v3::eoi(iar);
        } else {
            v2::eoi(iar);
        }
    }
}
