//! Page tables and the MMU: an identity map built once by core 0, enabled by every core.
//!
//! Hand-written rather than `aarch64-paging`: the firmware needs one static identity map with
//! 4 KiB pages only where permissions change (the image), built with the MMU off into static
//! tables so that secondaries can switch on without reading anything core 0 wrote through its
//! cache; that is about 150 lines and no allocator.
//!
//! 4 KiB granule, 39-bit VA (T0SZ = 25, walks start at level 1), TTBR1 disabled.
//!
//! | memory                           | attributes                                      |
//! |----------------------------------|-------------------------------------------------|
//! | board MMIO ranges                | Device-nGnRE, RW, never executable              |
//! | `.text` (with the Image header)  | Normal WB, inner shareable, read-only, executable |
//! | `.rodata`                        | Normal WB, read-only, execute-never             |
//! | data, BSS, per-cpu, stacks, heap, rest of RAM | Normal WB, RW, execute-never       |
//! | each core's stack guard page     | unmapped (a stack overflow faults)              |
//!
//! SCTLR_EL1.WXN is also set, so the hardware itself refuses to execute any writable page.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What a range of physical memory is, for the page tables.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MemKind {
    /// RAM: Normal write-back cacheable, inner shareable.
    Normal,
    /// MMIO: Device-nGnRE.
    Device,
}

/// One range of a board's memory map (2 MiB aligned).
#[derive(Clone, Copy, Debug)]
pub struct Region {
    /// Start address.
    pub start: usize,
    /// Size in bytes.
    pub size: usize,
    /// RAM or MMIO.
    pub kind: MemKind,
}

const ENTRIES: usize = 512;
const PAGE: usize = 4096;
const L2_SPAN: usize = 2 << 20;
const L1_SPAN: usize = 1 << 30;

const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1; // table (levels 1-2) or page (level 3)
const ATTR_NORMAL: u64 = 0 << 2; // MAIR index 0
const ATTR_DEVICE: u64 = 1 << 2; // MAIR index 1
const AP_RO: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;

/// MAIR_EL1: index 0 = Normal, inner/outer write-back read/write-allocate; 1 = Device-nGnRE.
pub const MAIR: u64 = 0xff | (0x04 << 8);
/// TCR_EL1 without IPS (boot code fills IPS from ID_AA64MMFR0_EL1.PARange): T0SZ = 25,
/// table walks inner/outer write-back cacheable and inner shareable, 4 KiB granule, EPD1.
pub const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (1 << 23);

const NORMAL_RW: u64 = VALID | ATTR_NORMAL | SH_INNER | AF | PXN | UXN;
const NORMAL_RO_X: u64 = VALID | ATTR_NORMAL | SH_INNER | AF | AP_RO | UXN;
const NORMAL_RO: u64 = VALID | ATTR_NORMAL | SH_INNER | AF | AP_RO | PXN | UXN;
const DEVICE_RW: u64 = VALID | ATTR_DEVICE | AF | PXN | UXN;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

const L2_POOL: usize = 4;
const L3_POOL: usize = 16;

/// The level-1 table; `src/arch/boot/entry.S` loads its address into TTBR0_EL1 on secondaries.
#[unsafe(no_mangle)]
static mut QUIESCENT_L1_TABLE: Table = Table([0; ENTRIES]);
static mut L2: [Table; L2_POOL] = [const { Table([0; ENTRIES]) }; L2_POOL];
static mut L3: [Table; L3_POOL] = [const { Table([0; ENTRIES]) }; L3_POOL];

static BUILT: AtomicBool = AtomicBool::new(false);
/// Level-3 tables of the pool `init_and_enable` used; [`unmap_range`] takes the next ones.
static L3_USED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    static __image_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __stacks_end: u8;
    /// `src/arch/boot/entry.S`: programs MAIR/TCR/TTBR0, invalidates TLB and I-cache, sets
    /// M|C|I|WXN.
    fn mmu_on(ttbr0: usize);
}

fn sym(s: &u8) -> usize {
    s as *const u8 as usize
}

/// Attributes of one 4 KiB page inside the image's chunks, or 0 for unmapped.
fn page_attr(addr: usize, kind: Option<MemKind>, unmapped: fn(usize) -> bool) -> u64 {
    let (start, text_end, rodata_end) =
        // SAFETY: only addresses of linker symbols are taken.
        unsafe { (sym(&__image_start), sym(&__text_end), sym(&__rodata_end)) };
    if unmapped(addr) {
        return 0;
    }
    if (start..text_end).contains(&addr) {
        NORMAL_RO_X
    } else if (text_end..rodata_end).contains(&addr) {
        NORMAL_RO
    } else {
        match kind {
            Some(MemKind::Normal) => NORMAL_RW,
            Some(MemKind::Device) => DEVICE_RW,
            None => 0,
        }
    }
}

fn kind_at(map: &[Region], addr: usize) -> Option<MemKind> {
    map.iter().find(|r| (r.start..r.start + r.size).contains(&addr)).map(|r| r.kind)
}

fn block_attr(kind: Option<MemKind>) -> u64 {
    match kind {
        Some(MemKind::Normal) => NORMAL_RW,
        Some(MemKind::Device) => DEVICE_RW,
        None => 0,
    }
}

/// Builds the tables for the board's memory `map` (core 0, MMU off), leaving unmapped every
/// page inside the image for which `unmapped` says so (the stacks' guard pages), and turns the
/// MMU and caches on for core 0.
///
/// # Safety
/// Core 0 only, once, before any other core starts, with the MMU off.
pub unsafe fn init_and_enable(map: &[Region], unmapped: fn(usize) -> bool) {
    // SAFETY: only addresses of linker symbols are taken.
    let (img_lo, img_hi) = unsafe { (sym(&__image_start), sym(&__stacks_end)) };
    let (mut n2, mut n3) = (0, 0);
    // The stores go straight to memory (MMU off), where the secondaries' table walks find them.
    // SAFETY: core 0 runs alone with the MMU off (caller's contract): nothing else uses the tables.
    let (l1, l2, l3) = unsafe {
        (
            &mut *core::ptr::addr_of_mut!(QUIESCENT_L1_TABLE),
            &mut *core::ptr::addr_of_mut!(L2),
            &mut *core::ptr::addr_of_mut!(L3),
        )
    };
    for i in 0..ENTRIES {
        let lo = i * L1_SPAN;
        let hi = lo + L1_SPAN;
        let whole = map.iter().find(|r| r.start <= lo && r.start + r.size >= hi);
        let touches_map = map.iter().any(|r| r.start < hi && r.start + r.size > lo);
        if !touches_map {
            l1.0[i] = 0;
            continue;
        }
        if let (Some(r), false) = (whole, img_lo < hi && img_hi > lo) {
            l1.0[i] = lo as u64 | block_attr(Some(r.kind));
            continue;
        }
        assert!(n2 < L2_POOL, "mmu: out of level-2 tables");
        let t2 = &mut l2[n2];
        n2 += 1;
        for j in 0..ENTRIES {
            let clo = lo + j * L2_SPAN;
            let chi = clo + L2_SPAN;
            if img_lo < chi && img_hi > clo {
                assert!(n3 < L3_POOL, "mmu: out of level-3 tables");
                let t3 = &mut l3[n3];
                n3 += 1;
                for k in 0..ENTRIES {
                    let a = clo + k * PAGE;
                    let attr = page_attr(a, kind_at(map, a), unmapped);
                    t3.0[k] = if attr == 0 { 0 } else { a as u64 | attr | TABLE };
                }
                t2.0[j] = t3 as *const Table as u64 | VALID | TABLE;
            } else {
                let attr = block_attr(kind_at(map, clo));
                t2.0[j] = if attr == 0 { 0 } else { clo as u64 | attr };
            }
        }
        l1.0[i] = t2 as *const Table as u64 | VALID | TABLE;
    }
    L3_USED.store(n3, Ordering::Relaxed);
    BUILT.store(true, Ordering::Relaxed);
    // SAFETY: the tables map this code, its stack and data with the same addresses (identity),
    // so execution continues seamlessly once translation is on.
    unsafe { mmu_on(core::ptr::addr_of!(QUIESCENT_L1_TABLE) as usize) };
}

/// Invalidates this address's translations in every core's TLB and waits for that.
fn tlb_flush_page(addr: usize) {
    // SAFETY: TLB maintenance has no memory effects of its own. The dsb before it makes the
    // table store visible to the walkers; the dsb after waits for the invalidation everywhere;
    // the isb makes later instructions use the new translation.
    unsafe {
        core::arch::asm!("dsb ishst", "tlbi vaae1is, {}", "dsb ish", "isb", in(reg) addr >> 12, options(nostack))
    };
}

/// Unmaps the 4 KiB page at `addr` (a stack guard page given out after the tables were built):
/// its level-3 entry becomes invalid. If the page lies in a 2 MiB block, the block is first
/// split into a level-3 table of 512 pages with the block's attributes, in the page `new_table`
/// returns (4 KiB, 4 KiB-aligned, zeroed or not, used by nothing else for the whole run), with
/// break-before-make: block entry invalid, TLB flush, then the table entry.
///
/// # Safety
/// Core 0 at boot, before other cores start (they load the tables afresh), on a page that
/// nothing uses; `addr` lies in a level-1 entry that already points to a level-2 table (the
/// image's GiB, which `init_and_enable` always splits).
pub unsafe fn unmap_page(addr: usize, new_table: &mut dyn FnMut() -> usize) {
    assert!(BUILT.load(Ordering::Relaxed), "mmu: unmap_page before the tables are built");
    let addr = addr & !(PAGE - 1);
    // SAFETY: only core 0 runs (caller's contract); table entries are read and written through
    // their identity-mapped, Normal cacheable addresses, which the walker sees coherently.
    unsafe {
        let l1 = &mut *core::ptr::addr_of_mut!(QUIESCENT_L1_TABLE);
        let e1 = l1.0[addr / L1_SPAN];
        assert!(e1 & (VALID | TABLE) == VALID | TABLE, "mmu: unmap_page({:#x}) outside a split GiB", addr);
        let l2 = &mut *((e1 & 0x0000_ffff_ffff_f000) as *mut Table);
        let j = (addr % L1_SPAN) / L2_SPAN;
        let e2 = l2.0[j];
        if e2 & (VALID | TABLE) != VALID | TABLE {
            let t = new_table();
            assert!(t.is_multiple_of(PAGE), "mmu: level-3 table at {:#x} is not page-aligned", t);
            let t3 = &mut *(t as *mut Table);
            let base = addr & !(L2_SPAN - 1);
            let attr = e2 & !0x0000_ffff_ffe0_0000 & !TABLE;
            for (k, e) in t3.0.iter_mut().enumerate() {
                *e = if e2 & VALID == 0 { 0 } else { (base + k * PAGE) as u64 | attr | TABLE };
            }
            l2.0[j] = 0;
            tlb_flush_page(base);
            l2.0[j] = t as u64 | VALID | TABLE;
            tlb_flush_page(base);
        }
        let l3 = &mut *((l2.0[j] & 0x0000_ffff_ffff_f000) as *mut Table);
        l3.0[(addr % L2_SPAN) / PAGE] = 0;
        tlb_flush_page(addr);
    }
}

/// Unmaps `start..end` (4 KiB aligned, inside one GiB whose level-1 entry points to a level-2
/// table, as the image's GiB always does): 2 MiB blocks wholly inside become invalid; a block
/// the range cuts is split into a level-3 table from the pool (break-before-make, as in
/// [`unmap_page`]) and its pages in the range become invalid. For a board that learns the end
/// of its RAM only after the MMU is on (the Pi 4's `/memory`).
///
/// # Safety
/// Core 0 at boot, before other cores start; nothing uses the range (its contents are gone
/// for this run).
pub unsafe fn unmap_range(start: usize, end: usize) {
    assert!(BUILT.load(Ordering::Relaxed), "mmu: unmap_range before the tables are built");
    assert!(
        start.is_multiple_of(PAGE) && end.is_multiple_of(PAGE) && start <= end,
        "mmu: unmap_range({:#x}, {:#x})",
        start,
        end
    );
    if start == end {
        return;
    }
    assert_eq!(start / L1_SPAN, (end - 1) / L1_SPAN, "mmu: unmap_range({:#x}, {:#x}) spans two GiB", start, end);
    // SAFETY: only core 0 runs (caller's contract); the entries are read and written through
    // their identity-mapped, Normal cacheable addresses, which the walker sees coherently.
    unsafe {
        let l1 = &mut *core::ptr::addr_of_mut!(QUIESCENT_L1_TABLE);
        let e1 = l1.0[start / L1_SPAN];
        assert!(e1 & (VALID | TABLE) == VALID | TABLE, "mmu: unmap_range({:#x}) outside a split GiB", start);
        let l2 = &mut *((e1 & 0x0000_ffff_ffff_f000) as *mut Table);
        let mut a = start;
        while a < end {
            let j = (a % L1_SPAN) / L2_SPAN;
            let block = a & !(L2_SPAN - 1);
            if a == block && a + L2_SPAN <= end && l2.0[j] & TABLE == 0 {
                l2.0[j] = 0;
                a += L2_SPAN;
                continue;
            }
            if l2.0[j] & (VALID | TABLE) == VALID {
                let n = L3_USED.fetch_add(1, Ordering::Relaxed);
                assert!(n < L3_POOL, "mmu: out of level-3 tables");
                let t3 = &mut *core::ptr::addr_of_mut!(L3[n]);
                let attr = l2.0[j] & !0x0000_ffff_ffe0_0000 & !TABLE;
                for (k, e) in t3.0.iter_mut().enumerate() {
                    *e = (block + k * PAGE) as u64 | attr | TABLE;
                }
                l2.0[j] = 0;
                tlb_flush_page(block);
                l2.0[j] = t3 as *const Table as u64 | VALID | TABLE;
            }
            if l2.0[j] & VALID != 0 {
                let l3 = &mut *((l2.0[j] & 0x0000_ffff_ffff_f000) as *mut Table);
                while a < end && a < block + L2_SPAN {
                    l3.0[(a % L2_SPAN) / PAGE] = 0;
                    a += PAGE;
                }
            } else {
                a = block + L2_SPAN;
            }
        }
        // Every entry cleared above is invalid before any later access: the dsb publishes the
        // stores to the walker, the TLBI drops cached translations, the second dsb waits for
        // that, the isb makes later instructions use the new tables.
        core::arch::asm!("dsb ishst", "tlbi vmalle1is", "dsb ish", "isb", options(nostack));
    }
}

/// SCTLR_EL1, TCR_EL1 and MAIR_EL1 of this core (for the tests and the demo).
pub fn regs() -> (u64, u64, u64) {
    let (s, t, m): (u64, u64, u64);
    // SAFETY: reads of system registers; no memory effects.
    unsafe {
        core::arch::asm!("mrs {}, sctlr_el1", "mrs {}, tcr_el1", "mrs {}, mair_el1", out(reg) s, out(reg) t, out(reg) m, options(nomem, nostack))
    };
    (s, t, m)
}

/// How a stage-1 EL1 translation of `addr` for `write`/read access came out: `Err(fault status)`
/// or `Ok(memory attribute byte from PAR_EL1)` (`AT S1E1R`/`AT S1E1W`).
pub fn probe(addr: usize, write: bool) -> Result<u8, u8> {
    let par: u64;
    // SAFETY: address translation instructions only update PAR_EL1; IRQs are masked so nothing
    // else on this core overwrites PAR_EL1 between the AT and the read.
    unsafe {
        let _irq = crate::arch::IrqGuard::new();
        if write {
            core::arch::asm!("at s1e1w, {}", "isb", "mrs {}, par_el1", in(reg) addr, lateout(reg) par, options(nostack));
        } else {
            core::arch::asm!("at s1e1r, {}", "isb", "mrs {}, par_el1", in(reg) addr, lateout(reg) par, options(nostack));
        }
    }
    if par & 1 != 0 {
        Err(((par >> 1) & 0x3f) as u8)
    } else {
        Ok((par >> 56) as u8)
    }
}
