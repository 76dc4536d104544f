//! Core numbers: the limit of this build, the cores this run set up, and the online ones.
//!
//! The kernel fills these in at boot ([`set_possible`], [`limit_possible`], [`set_online`]); the
//! primitives read them ([`online_cpus`] walks the online mask at every grace period's set-up).

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The most cores a build supports: the length of the fixed per-core tables (a few words per
/// core). Per-core memory (stacks, per-cpu areas) is the kernel's, for the cores present only.
pub const MAX_CPUS: usize = 512;

/// Words of the online mask: one bit per core up to MAX_CPUS.
const MASK_WORDS: usize = MAX_CPUS.div_ceil(64);
/// Bit `n % 64` of word `n / 64` set: core `n` is online. Core 0 is from the start.
static ONLINE: [AtomicU64; MASK_WORDS] = {
    let mut m = [const { AtomicU64::new(0) }; MASK_WORDS];
    m[0] = AtomicU64::new(1);
    m
};
/// Cores this run sets up (core numbers 0..POSSIBLE).
static POSSIBLE: AtomicUsize = AtomicUsize::new(1);

/// Whether core `cpu` is online.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn is_online(cpu: usize) -> bool {
    cpu < MAX_CPUS && ONLINE[cpu / 64].load(Ordering::Acquire) & (1 << (cpu % 64)) != 0
}

/// The number of online cores.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn num_online() -> usize {
    ONLINE.iter().map(|w| w.load(Ordering::Acquire).count_ones() as usize).sum()
}

/// Cores this run sets up: logical numbers `0..num_possible()` (Linux's `nr_cpu_ids`).
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn num_possible() -> usize {
    POSSIBLE.load(Ordering::Relaxed)
}

/// Iterates over the online cores, in order. Only the words that can hold a core this run set
/// up are read, each once, and within a word only the set bits are visited: a pass costs a few
/// instructions per online core, not one test per bit.
///
/// Context: any (task, interrupt handler, RCU callback); never blocks.
#[inline]
pub fn online_cpus() -> impl Iterator<Item = usize> {
    // POSSIBLE is at most MAX_CPUS (set_possible clamps it); min() says so to the compiler.
    let words = POSSIBLE.load(Ordering::Relaxed).div_ceil(64).min(MASK_WORDS);
    OnlineCpus { words: ONLINE[..words].iter().enumerate(), base: 0, bits: 0 }
}

/// [`online_cpus`]'s iterator: the mask words left, and the unvisited bits of the current word
/// (cores `base + b`). Written out rather than a `flat_map`, whose inner iterator may be absent:
/// inlined into a caller's loop (the grace period's set-up), the compiler kept testing that on
/// every core. Here the per-core step is a few instructions: find the lowest bit, clear it,
/// add the base.
struct OnlineCpus {
    words: core::iter::Enumerate<core::slice::Iter<'static, AtomicU64>>,
    base: usize,
    bits: u64,
}

impl Iterator for OnlineCpus {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        while self.bits == 0 {
            let (w, m) = self.words.next()?;
            self.bits = m.load(Ordering::Acquire);
            self.base = w * 64;
        }
        let b = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1; // clears the lowest set bit
        Some(self.base + b)
    }
}

/// Sets the number of cores this run sets up (`0..n`, at most [`MAX_CPUS`]).
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// At boot, on core 0, before any other core starts and before the primitives are initialised:
/// grace periods and percpu-rwsem's fold look only at these cores.
pub unsafe fn set_possible(n: usize) {
    POSSIBLE.store(n.clamp(1, MAX_CPUS), Ordering::Relaxed);
}

/// Lowers the number of cores this run sets up to `n` (at least 1).
///
/// Context: boot only, core 0, before the other cores start.
///
/// # Safety
/// As [`set_possible`].
pub unsafe fn limit_possible(n: usize) {
    POSSIBLE.fetch_min(n.max(1), Ordering::Relaxed);
}

/// Marks core `cpu` online (Release: everything it set up is visible to whoever sees it online),
/// then orders the bit before this core's later reads (barrier O).
///
/// Context: core bring-up only, on the core coming online, interrupts masked.
///
/// # Safety
/// On core `cpu` itself, once, after the primitives' `cpu_online` hook ran and before its first
/// reader runs (an interrupt handler or a work item: interrupts stay masked until it returns).
pub unsafe fn set_online(cpu: usize) {
    ONLINE[cpu / 64].fetch_or(1 << (cpu % 64), Ordering::Release);
    // O: the ONLINE bit before this core's first reader: a grace period whose set-up does not
    // see the bit does not wait for this core, so this core must see what the updater did
    // before that grace period. Pairs with D in rcu's gp_start/snapshot (the set-up reads
    // ONLINE after D). Without it the bit could sit in this core's store buffer while its first
    // reads run: a store-buffering pair.
    crate::arch::smp_mb();
}
