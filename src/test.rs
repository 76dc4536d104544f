//! The on-target test registry and reporter.
//!
//! A test image is a file in `tests/` with `harness = false`:
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! fn every_core_online() { assert_eq!(quiescent::smp::num_online(), 4); }
//! quiescent::tests!(every_core_online);
//! ```
//!
//! Each case prints `test <bin>::<case> ... ok`; a failed assertion or panic on any core prints
//! `test <bin>::<case> ... FAILED: <message> at <file>:<line> (core N)` and exits QEMU with code
//! 101. `@`-lines tell the host runner which case and which cores are busy, so a hang is named.

use crate::percpu::cpu_id;
use crate::smp;
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// One named test case.
pub struct TestCase {
    /// The function's name.
    pub name: &'static str,
    /// The case; it fails by panicking.
    pub f: fn(),
}

/// Exit code of an image whose case failed.
pub const EXIT_FAILED: i32 = 101;

/// The running case's binary and name, for the panic report (as `&'static str` parts).
static BIN: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());
static CASE: AtomicPtr<&'static str> = AtomicPtr::new(core::ptr::null_mut());
static PANICKING: AtomicUsize = AtomicUsize::new(0);

fn load(p: &AtomicPtr<&'static str>) -> Option<&'static str> {
    let p = p.load(Ordering::Acquire);
    // SAFETY: only ever set from `&'static &'static str` (leaked boxes or statics below).
    (!p.is_null()).then(|| unsafe { *p })
}

fn store(p: &AtomicPtr<&'static str>, s: Option<&'static str>) {
    let v = s.map_or(core::ptr::null_mut(), |s| alloc::boxed::Box::leak(alloc::boxed::Box::new(s)) as *mut _);
    p.store(v, Ordering::Release);
}

/// Runs the cases in order and returns the image's exit code (0 when all passed).
///
/// The kernel command line selects cases the way libtest's arguments do (the host runner turns
/// `cargo test -- NAME --exact --list` into these): `test-filter=A,B` runs only the cases whose
/// full name `<bin>::<case>` contains `A` or `B` (or equals one, with `test-exact=1`);
/// `test-list=1` prints each selected name as `<bin>::<case>: test` and runs none.
pub fn run_tests(bin: &'static str, cases: &[TestCase]) -> i32 {
    let filter = crate::board::bootarg("test-filter");
    let exact = crate::board::bootarg("test-exact") == Some("1");
    let selected = |c: &&TestCase| {
        let Some(filter) = filter else { return true };
        let full = alloc::format!("{bin}::{}", c.name);
        filter.split(',').any(|f| if exact { full == f } else { full.contains(f) })
    };
    if crate::board::bootarg("test-list") == Some("1") {
        for c in cases.iter().filter(selected) {
            defmt::println!("{=str}::{=str}: test", bin, c.name);
        }
        return 0;
    }
    store(&BIN, Some(bin));
    let count = cases.iter().filter(selected).count();
    match filter {
        None => defmt::println!("running {} cases on {} cores ({})", count, smp::num_online(), crate::board::NAME),
        Some(f) => defmt::println!(
            "running {} of {} cases (filter `{=str}`) on {} cores ({})",
            count,
            cases.len(),
            f,
            smp::num_online(),
            crate::board::NAME
        ),
    }
    for c in cases.iter().filter(selected) {
        store(&CASE, Some(c.name));
        defmt::println!("@case {=str}::{=str}", bin, c.name);
        (c.f)();
        // Between cases core 0 passes a quiescent point, like an idle loop between work items.
        crate::rcu::rcu_quiescent_state();
        defmt::println!("test {=str}::{=str} ... ok", bin, c.name);
    }
    store(&CASE, None);
    defmt::println!("@summary {=str} {} 0", bin, count);
    0
}

/// Declares the image's cases and its main function: `quiescent::tests!(case_a, case_b);`
#[macro_export]
macro_rules! tests {
    ($($case:ident),* $(,)?) => {
        fn __quiescent_tests_main() -> i32 {
            $crate::test::run_tests(env!("CARGO_CRATE_NAME"), &[
                $($crate::test::TestCase { name: stringify!($case), f: $case }),*
            ])
        }
        $crate::entry!(__quiescent_tests_main);
    };
}

/// Runs `f(cpu)` on every online core at once, telling the host which cores are busy (so a
/// hang names them), and returns the results in core order.
pub fn on_all_cores<R: Send + 'static>(f: impl Fn(usize) -> R + Send + Sync + 'static) -> alloc::vec::Vec<R> {
    defmt::println!("@cores {=u64:#x}", smp::online_mask());
    smp::on_each_cpu(move |c| {
        let r = f(c);
        defmt::println!("@done {}", c);
        r
    })
}

/// The address range of the image's code (for checks on reported PCs).
pub fn text_range() -> core::ops::Range<usize> {
    unsafe extern "C" {
        static __image_start: u8;
        static __text_end: u8;
    }
    core::ptr::addr_of!(__image_start) as usize..core::ptr::addr_of!(__text_end) as usize
}

/// The fatal-exception path's report: fails the running case, if any (the exception report
/// itself was printed just before).
pub fn report_fatal(what: &str) {
    if let (Some(bin), Some(case)) = (load(&BIN), load(&CASE)) {
        defmt::println!("test {=str}::{=str} ... FAILED: {=str} exception on core {}", bin, case, what, cpu_id());
    }
}

/// The panic handler's report: names the case, the message, where, and the core; exits QEMU.
pub fn report_panic(info: &core::panic::PanicInfo) -> ! {
    let _irq = crate::arch::local_irq_save();
    if PANICKING.fetch_add(1, Ordering::AcqRel) > 0 {
        // Another core is already reporting; it will exit QEMU.
        loop {
            crate::arch::wfe();
        }
    }
    crate::smp::ipi::stop_others();
    let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
    let msg = defmt::Display2Format(&info.message());
    match (load(&BIN), load(&CASE)) {
        (Some(bin), Some(case)) => defmt::println!(
            "test {=str}::{=str} ... FAILED: {} at {=str}:{} (core {})",
            bin, case, msg, file, line, cpu_id()
        ),
        _ => defmt::println!("panic on core {}: {} at {=str}:{}", cpu_id(), msg, file, line),
    }
    smp::exit(EXIT_FAILED)
}
