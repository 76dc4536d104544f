//! MMU and caches: every core translates with the same tables and the expected attributes.
#![no_std]
#![no_main]

extern crate alloc;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};
use quiescent::arch::mmu;
use quiescent::smp::{self, Ctx};
use quiescent::{board, test, GUARD_SIZE};

static RODATA_WORD: u64 = 0x1234_5678;
static mut DATA_WORD: u64 = 0;

const PERMISSION: u8 = 0x0c;
const TRANSLATION: u8 = 0x04;
const NORMAL_WB: u8 = 0xff;
const DEVICE_NGNRE: u8 = 0x04;

fn mmu_and_caches_on_every_core(ctx: &mut Ctx) {
    for (cpu, (sctlr, tcr, mair)) in test::on_all_cores(ctx, |_, _| mmu::regs()).into_iter().enumerate() {
        assert!(sctlr & 1 != 0, "core {}: SCTLR_EL1.M off", cpu);
        assert!(sctlr & (1 << 2) != 0, "core {}: data cache off", cpu);
        assert!(sctlr & (1 << 12) != 0, "core {}: instruction cache off", cpu);
        assert!(sctlr & (1 << 19) != 0, "core {}: WXN off", cpu);
        assert_eq!(tcr & 0x3f, 25, "core {}: T0SZ", cpu);
        assert_eq!((tcr >> 12) & 3, 3, "core {}: walks not inner shareable", cpu);
        assert_eq!((tcr >> 14) & 3, 0, "core {}: not a 4 KiB granule", cpu);
        assert_eq!(mair, mmu::MAIR, "core {}: MAIR_EL1", cpu);
    }
}

fn text_is_read_only_and_executable(_ctx: &mut Ctx) {
    let text = text_is_read_only_and_executable as *const () as usize;
    assert_eq!(mmu::probe(text, false), Ok(NORMAL_WB), "code readable, normal memory");
    assert_eq!(mmu::probe(text, true).map_err(|f| f & 0x3c), Err(PERMISSION), "code must not be writable");
}

fn rodata_is_read_only_data_is_writable(_ctx: &mut Ctx) {
    let ro = core::ptr::addr_of!(RODATA_WORD) as usize;
    let rw = core::ptr::addr_of!(DATA_WORD) as usize;
    assert_eq!(mmu::probe(ro, false), Ok(NORMAL_WB));
    assert_eq!(mmu::probe(ro, true).map_err(|f| f & 0x3c), Err(PERMISSION), ".rodata must not be writable");
    assert_eq!(mmu::probe(rw, true), Ok(NORMAL_WB), ".data writable");
    let heap = alloc::boxed::Box::new(7u64);
    assert_eq!(mmu::probe(&*heap as *const u64 as usize, true), Ok(NORMAL_WB), "heap writable");
}

fn mmio_is_device_memory(_ctx: &mut Ctx) {
    assert_eq!(mmu::probe(board::UART_BASE, true), Ok(DEVICE_NGNRE));
    assert_eq!(mmu::probe(board::GICD_BASE, false), Ok(DEVICE_NGNRE));
}

fn stack_guard_pages_are_unmapped(_ctx: &mut Ctx) {
    for cpu in 0..smp::num_possible() {
        let guard = quiescent::stack_slot(cpu).expect("a core set up has a stack slot");
        for a in [guard, guard + GUARD_SIZE - 8] {
            assert_eq!(
                mmu::probe(a, false).map_err(|f| f & 0x3c),
                Err(TRANSLATION),
                "guard page of core {} mapped",
                cpu
            );
            assert_eq!(quiescent::guard_page_owner(a), Some(cpu));
        }
        assert_eq!(mmu::probe(guard + GUARD_SIZE, true), Ok(NORMAL_WB), "stack of core {} not writable", cpu);
        // The exception stack's own guard page, between the normal stack's top and it.
        let exc_guard = guard + GUARD_SIZE + quiescent::STACK_SIZE;
        for a in [exc_guard, exc_guard + GUARD_SIZE - 8] {
            assert_eq!(
                mmu::probe(a, false).map_err(|f| f & 0x3c),
                Err(TRANSLATION),
                "exception stack guard page of core {} mapped",
                cpu
            );
            assert_eq!(quiescent::exc_guard_page_owner(a), Some(cpu));
        }
        assert_eq!(mmu::probe(exc_guard - 8, true), Ok(NORMAL_WB), "top of core {}'s stack not writable", cpu);
        assert_eq!(
            mmu::probe(exc_guard + GUARD_SIZE, true),
            Ok(NORMAL_WB),
            "exception stack of core {} not writable",
            cpu
        );
    }
}

fn exclusives_and_caches_are_coherent_across_cores(ctx: &mut Ctx) {
    // Every core increments a shared counter with atomic read-modify-writes (exclusives: they
    // only work with the MMU and caches on, on real hardware) and publishes a private pattern
    // that the next core checks.
    const N: u64 = 2000;
    let shared = Arc::new(AtomicU64::new(0));
    let s = shared.clone();
    test::on_all_cores(ctx, move |_, _| {
        for _ in 0..N {
            s.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(shared.load(Ordering::Relaxed), N * smp::num_online() as u64);
    let buf: Arc<[AtomicU64; 64]> = Arc::new([const { AtomicU64::new(0) }; 64]);
    let b = buf.clone();
    let n = smp::num_online();
    if n > 1 {
        smp::call_on(ctx, 1, move |_| {
            for (i, w) in b.iter().enumerate() {
                w.store(0xc0de_0000 + i as u64, Ordering::Relaxed);
            }
        });
        let b = buf.clone();
        let ok = smp::call_on(ctx, n - 1, move |_| {
            b.iter().enumerate().all(|(i, w)| w.load(Ordering::Relaxed) == 0xc0de_0000 + i as u64)
        });
        assert!(ok, "core {} did not see core 1's writes", n - 1);
    }
}

quiescent::tests!(
    mmu_and_caches_on_every_core,
    text_is_read_only_and_executable,
    rodata_is_read_only_data_is_writable,
    mmio_is_device_memory,
    stack_guard_pages_are_unmapped,
    exclusives_and_caches_are_coherent_across_cores,
);
