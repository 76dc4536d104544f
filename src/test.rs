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

use crate::runtime::{set_running_case, set_running_image};
use crate::smp::{self, Ctx};

/// One named test case.
pub struct TestCase {
    /// The function's name.
    pub name: &'static str,
    /// The case; it fails by panicking. It gets core 0's blocking context.
    pub f: fn(&mut Ctx),
}

pub use crate::runtime::EXIT_FAILED;

/// Runs the cases in order and returns the image's exit code (0 when all passed).
///
/// The kernel command line selects cases the way libtest's arguments do (the host runner turns
/// `cargo test -- NAME --exact --list` into these): `test-filter=A,B` runs only the cases whose
/// full name `<bin>::<case>` contains `A` or `B` (or equals one, with `test-exact=1`);
/// `test-list=1` prints each selected name as `<bin>::<case>: test` and runs none.
pub fn run_tests(ctx: &mut Ctx, bin: &'static str, cases: &[TestCase]) -> i32 {
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
    set_running_image(bin);
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
        set_running_case(Some(c.name));
        defmt::println!("@case {=str}::{=str}", bin, c.name);
        (c.f)(ctx);
        // Between cases core 0 passes a quiescent point, like an idle loop between work items.
        crate::rcu::rcu_quiescent_state(ctx);
        defmt::println!("test {=str}::{=str} ... ok", bin, c.name);
    }
    set_running_case(None);
    defmt::println!("@summary {=str} {} 0", bin, count);
    0
}

/// Declares the image's cases and its main function: `quiescent::tests!(case_a, case_b);`
#[macro_export]
macro_rules! tests {
    ($($case:ident),* $(,)?) => {
        fn __quiescent_tests_main(ctx: &mut $crate::smp::Ctx) -> i32 {
            $crate::test::run_tests(ctx, env!("CARGO_CRATE_NAME"), &[
                $($crate::test::TestCase { name: stringify!($case), f: $case }),*
            ])
        }
        $crate::entry!(__quiescent_tests_main);
    };
}

/// Runs `f(cpu, ctx)` on every online core at once, telling the host which cores are busy (so a
/// hang names them), and returns the results in core order.
pub fn on_all_cores<R: Send + 'static>(
    ctx: &mut Ctx,
    f: impl Fn(usize, &mut Ctx) -> R + Send + Sync + 'static,
) -> alloc::vec::Vec<R> {
    defmt::println!("@cores {=str}", core_ranges(smp::online_cpus()).as_str());
    smp::on_each_cpu(ctx, move |c, ctx| {
        let r = f(c, ctx);
        defmt::println!("@done {}", c);
        r
    })
}

/// Cores as ranges, `0-3,5,7-63` (the `@cores` marker: any number of cores in one short line).
pub fn core_ranges(cpus: impl Iterator<Item = usize>) -> alloc::string::String {
    use core::fmt::Write;
    let mut out = alloc::string::String::new();
    let mut run: Option<(usize, usize)> = None;
    let flush = |out: &mut alloc::string::String, (a, b): (usize, usize)| {
        let sep = if out.is_empty() { "" } else { "," };
        let _ = if a == b { write!(out, "{sep}{a}") } else { write!(out, "{sep}{a}-{b}") };
    };
    for c in cpus {
        run = match run {
            Some((a, b)) if c == b + 1 => Some((a, c)),
            Some(r) => {
                flush(&mut out, r);
                Some((c, c))
            }
            None => Some((c, c)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

/// The address range of the image's code (for checks on reported PCs).
pub fn text_range() -> core::ops::Range<usize> {
    unsafe extern "C" {
        static __image_start: u8;
        static __text_end: u8;
    }
    core::ptr::addr_of!(__image_start) as usize..core::ptr::addr_of!(__text_end) as usize
}

// ---------------------------------------------------------------------------------------------
// Helpers the test images share.
// ---------------------------------------------------------------------------------------------

/// The online cores other than this one.
pub fn others() -> alloc::vec::Vec<usize> {
    smp::online_cpus().filter(|&c| c != crate::percpu::cpu_id()).collect()
}

/// Waits (as a quiescent waiter, so grace periods go on) until `cond`, failing the case with
/// `<what> did not happen within <ms> ms` after `ms` milliseconds.
pub fn wait_until(ctx: &mut Ctx, ms: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = crate::arch::counter();
    crate::rcu::wait_quiescent(ctx, || {
        let late = crate::arch::ticks_to_ns(crate::arch::counter() - t0) >= ms * 1_000_000;
        assert!(!late, "{} did not happen within {} ms", what, ms);
        !cond()
    });
}

/// Waits (quiescent) until `flag` is set, failing after 5 s.
pub fn wait_flag(ctx: &mut Ctx, flag: &core::sync::atomic::AtomicBool, what: &str) {
    wait_until(ctx, 5000, what, || flag.load(core::sync::atomic::Ordering::Acquire));
}

/// Starts a work item on `cpu` that spins until the returned flag is set (inside an RCU
/// read-side section if `reader`, so it holds grace periods open either way: a work item passes
/// no quiescent point until it ends), and returns once it spins.
pub fn spin_on(
    ctx: &mut Ctx,
    cpu: usize,
    reader: bool,
    what: &str,
) -> alloc::sync::Arc<core::sync::atomic::AtomicBool> {
    use alloc::sync::Arc;
    use core::sync::atomic::{AtomicBool, Ordering};
    let (inside, release) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let (i2, r2) = (inside.clone(), release.clone());
    smp::queue_work(cpu, move |ctx| {
        let g = reader.then(|| crate::rcu::read(ctx));
        i2.store(true, Ordering::Release);
        while !r2.load(Ordering::Acquire) {
            crate::arch::cpu_relax();
        }
        drop(g);
    });
    wait_flag(ctx, &inside, what);
    release
}
