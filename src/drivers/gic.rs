//! GICv2 (QEMU virt's default GIC, the Pi 4's GIC-400): distributor, per-core CPU interface,
//! IRQ dispatch by interrupt ID, end of interrupt, and SGIs.
//!
//! Hand-written (about 150 lines) rather than `arm-gic`: the firmware needs the banked per-core
//! set-up, SGI target encoding and dispatch in one place where the pitfalls can be commented:
//! an SPI with no ITARGETSR target goes nowhere; the IAR of an SGI carries the sender's CPU
//! number in bits 12:10 (mask it for the ID, but write the whole IAR back to EOIR); SGIR's
//! target-list filter 0b01 means "all but self".
//!
//! Register offsets follow the GICv2 architecture specification (IHI 0048B), 4.1 and 4.4.

use crate::board;
use core::ptr::{read_volatile, write_volatile};
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

const GICD_CTLR: usize = 0x000;
const GICD_TYPER: usize = 0x004;
const GICD_ISENABLER: usize = 0x100;
const GICD_ICENABLER: usize = 0x180;
const GICD_ICPENDR: usize = 0x280;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ITARGETSR: usize = 0x800;
const GICD_SGIR: usize = 0xf00;

const GICC_CTLR: usize = 0x00;
const GICC_PMR: usize = 0x04;
const GICC_BPR: usize = 0x08;
const GICC_IAR: usize = 0x0c;
const GICC_EOIR: usize = 0x10;

/// Interrupt IDs at or above this are spurious / special.
const SPURIOUS: u32 = 1020;
/// Priority given to every interrupt (lower = more urgent; all equal: no preemption).
const PRIORITY: u8 = 0xa0;

fn gicd(off: usize) -> *mut u32 {
    (board::GICD_BASE + off) as *mut u32
}
fn gicc(off: usize) -> *mut u32 {
    (board::GICC_BASE + off) as *mut u32
}
fn rd(p: *mut u32) -> u32 {
    // SAFETY: `p` is a GIC register of the board's GIC, mapped as device memory.
    unsafe { read_volatile(p) }
}
fn wr(p: *mut u32, v: u32) {
    // SAFETY: as `rd`.
    unsafe { write_volatile(p, v) }
}

static READY: AtomicBool = AtomicBool::new(false);
/// GIC CPU-interface bit of each logical core (from its banked ITARGETSR0), 0 if not set up.
static IFACE: [AtomicU8; crate::MAX_CPUS] = [const { AtomicU8::new(0) }; crate::MAX_CPUS];

/// Handlers for shared peripheral interrupts, by ID - 32 (function pointers as usize).
const MAX_SPI: usize = 96;
static SPI_HANDLERS: [AtomicUsize; MAX_SPI] = [const { AtomicUsize::new(0) }; MAX_SPI];

/// Distributor set-up, on core 0 once: all SPIs disabled, pending cleared, priority set,
/// routed to core 0; then the distributor is enabled.
pub fn init_distributor() {
    wr(gicd(GICD_CTLR), 0);
    let lines = ((rd(gicd(GICD_TYPER)) & 0x1f) as usize + 1) * 32;
    for n in (32..lines).step_by(32) {
        wr(gicd(GICD_ICENABLER + n / 8), !0);
        wr(gicd(GICD_ICPENDR + n / 8), !0);
    }
    for n in (32..lines).step_by(4) {
        let p = u32::from_ne_bytes([PRIORITY; 4]);
        wr(gicd(GICD_IPRIORITYR + n), p);
        wr(gicd(GICD_ITARGETSR + n), 0x0101_0101);
    }
    wr(gicd(GICD_CTLR), 1);
    READY.store(true, Ordering::Release);
}

/// Per-core set-up (banked registers): SGIs and PPIs get a priority, SGIs are enabled, the CPU
/// interface accepts every priority and is enabled. Records this core's interface bit.
pub fn init_cpu(cpu: usize) {
    for n in (0..32).step_by(4) {
        wr(gicd(GICD_IPRIORITYR + n), u32::from_ne_bytes([PRIORITY; 4]));
    }
    wr(gicd(GICD_ISENABLER), 0x0000_ffff); // SGIs 0..15
    // Non-secure accesses to Secure (group 0) interrupts are RAZ/WI: on a Pi whose firmware did
    // not move them to group 1 (enable_gic=1) no SGI or tick would ever arrive. Say so.
    if rd(gicd(GICD_ISENABLER)) & 0xffff != 0xffff {
        defmt::error!("GIC: SGIs of core {} stay disabled (interrupts are Secure-only; enable_gic=1 in config.txt?)", cpu);
    }
    // ITARGETSR0..7 are banked and read-only: each byte reads as this core's own bit.
    let me = (rd(gicd(GICD_ITARGETSR)) & 0xff) as u8;
    IFACE[cpu].store(if me == 0 { 1 << cpu } else { me }, Ordering::Release);
    wr(gicc(GICC_PMR), 0xf0);
    wr(gicc(GICC_BPR), 0);
    wr(gicc(GICC_CTLR), 1);
}

/// Enables interrupt `id` (a PPI on this core, or an SPI routed to core 0).
pub fn enable(id: u32) {
    wr(gicd(GICD_ISENABLER + (id as usize / 32) * 4), 1 << (id % 32));
}

/// Installs `handler` for SPI `id` and enables it.
pub fn register_spi(id: u32, handler: fn()) {
    assert!((32..32 + MAX_SPI as u32).contains(&id), "SPI {} out of range", id);
    SPI_HANDLERS[id as usize - 32].store(handler as usize, Ordering::Release);
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

/// Sends SGI `id` (0..15).
pub fn send_sgi(id: u32, target: SgiTarget) {
    let v = match target {
        SgiTarget::Cpu(c) => ((IFACE[c].load(Ordering::Acquire) as u32) << 16) | id,
        SgiTarget::AllButSelf => (0b01 << 24) | id,
    };
    // The message written before the SGI (to Normal memory) must be observable before the
    // interrupt is (a Device write): dsb, not dmb. Pairs with the IAR read in handle_irq, after
    // which the receiver reads the message.
    crate::arch::dsb_ishst();
    wr(gicd(GICD_SGIR), v);
}

/// Called from the IRQ vector: acknowledge, dispatch, end of interrupt, until none is pending.
pub fn handle_irq(frame: &crate::arch::exception::Frame) {
    loop {
        let iar = rd(gicc(GICC_IAR));
        let id = iar & 0x3ff;
        if id >= SPURIOUS {
            return;
        }
        match id {
            0..=15 => crate::smp::ipi::handle(id, frame),
            crate::arch::timer::TIMER_PPI => crate::arch::timer::handle(),
            32.. if ((id - 32) as usize) < MAX_SPI => {
                let h = SPI_HANDLERS[(id - 32) as usize].load(Ordering::Acquire);
                if h != 0 {
                    // SAFETY: only `register_spi` stores here, always a `fn()`.
                    let f: fn() = unsafe { core::mem::transmute::<usize, fn()>(h) };
                    f();
                }
            }
            _ => defmt::warn!("unhandled interrupt {} on core {}", id, crate::percpu::cpu_id()),
        }
        // The whole IAR value (with an SGI's source CPU bits) goes back to EOIR.
        wr(gicc(GICC_EOIR), iar);
    }
}
