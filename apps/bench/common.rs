//! What every section shares: the mode, the host's core count, the timing loops, statistics,
//! running the same loop on several cores at once, and the two kinds of output (a readable
//! table and the `BENCH` lines the host tool parses).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt::Write;
use core::hint::black_box;
use core::sync::atomic::{AtomicUsize, Ordering};
use quiescent::smp::Ctx;
use quiescent::{arch, board, rcu, smp};

/// `icount` when the runner passed `bench-mode=icount` (QEMU `-icount shift=0`: one
/// instruction is one nanosecond of virtual time), else `mttcg` (real time).
pub fn mode() -> &'static str {
    match board::bootarg("bench-mode") {
        Some("icount") => "icount",
        _ => "mttcg",
    }
}

/// Whether this run counts instructions (`-icount shift=0`).
pub fn icount() -> bool {
    mode() == "icount"
}

/// The host's core count, as the runner passed it (`host-cores=N`); 0 when not given.
pub fn host_cores() -> usize {
    board::bootarg("host-cores").and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Whether `k` busy vCPUs outnumber the host's cores (then a row measures QEMU's threads being
/// time-sliced by the host, not the primitive).
pub fn sliced(k: usize) -> bool {
    let h = host_cores();
    h != 0 && k > h
}

/// `yes`/`no` for the machine-readable lines.
pub fn yn(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Counter ticks to nanoseconds, as a float (under icount: instructions).
pub fn ns(ticks: u64) -> f64 {
    ticks as f64 * 1e9 / arch::counter_freq().max(1) as f64
}

/// Nanoseconds to counter ticks.
pub fn ticks(ns: u64) -> u64 {
    ((ns as u128 * arch::counter_freq() as u128) / 1_000_000_000) as u64
}

/// Makes the compiler compute `v` without storing it anywhere (no instruction of its own,
/// unlike `black_box`, which spills its argument to the stack).
#[inline(always)]
pub fn consume(v: u64) {
    // SAFETY: an empty asm that only names a register: no memory, stack or flags effects. Not
    // safe code because only an asm statement is opaque to the compiler at no instruction: the
    // safe `black_box` spills `v` to the stack, which would add a store to every measured loop.
    unsafe { core::arch::asm!("/* {0} */", in(reg) v, options(nomem, nostack, preserves_flags)) };
}

/// The loop every one-core cost row runs: `body`, then the index through `black_box` (so the
/// empty loop is not optimised away). The body comes first so that what it reads once per
/// core (the per-cpu base, `mrs tpidr_el1`, marked pure) is at the top of the loop, where LLVM
/// may hoist it: a `black_box` before it would pin it inside (LLVM cannot hoist an asm
/// statement past another that might not return).
#[inline(always)]
fn timed_loop(n: u64, mut body: impl FnMut()) -> u64 {
    let t0 = arch::counter();
    for i in 0..n {
        body();
        black_box(i);
    }
    arch::counter() - t0
}

/// Cost of one `body` in nanoseconds (under icount: instructions): the fastest of three runs
/// of the loop minus the fastest of three runs of the same loop with an empty body.
#[inline(always)]
pub fn per_op(n: u64, mut body: impl FnMut()) -> f64 {
    let (mut empty, mut full) = (u64::MAX, u64::MAX);
    for _ in 0..3 {
        empty = empty.min(timed_loop(n, || {}));
        full = full.min(timed_loop(n, &mut body));
    }
    ns(full.saturating_sub(empty)) / n as f64
}

/// `p`, through a register the compiler cannot see into (no instruction): what it points to
/// is then memory the compiler must load and store as written.
#[inline(always)]
pub fn launder<T>(p: *mut T) -> *mut T {
    let mut a = p.addr();
    // SAFETY: an empty asm that only names a register: no memory, stack or flags effects. Not
    // safe code for the reason `consume` gives (`black_box` costs a spill and a reload).
    unsafe { core::arch::asm!("/* {0} */", inout(reg) a, options(nomem, nostack, preserves_flags)) };
    p.with_addr(a)
}

/// Sorted samples: the median and the 99th percentile.
pub fn median_p99(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
    let at = |q: f64| v[((v.len() - 1) as f64 * q + 0.5) as usize];
    (at(0.5), at(0.99))
}

/// What one core did in a measuring window.
#[derive(Clone, Copy, Default)]
pub struct CoreRun {
    /// Operations done.
    pub ops: u64,
    /// Counter ticks from its first operation to its last counter read.
    pub ticks: u64,
}

/// Operations per second over all cores: each core's own rate, summed.
pub fn throughput(runs: &[CoreRun]) -> f64 {
    runs.iter().map(|r| r.ops as f64 * 1e9 / ns(r.ticks).max(1.0)).sum()
}

/// The loop every core runs in a scaling window, the same on 1 and on N cores: waits (as a
/// quiescent wait) until counter time `start`, then runs `op` in chunks of `chunk` with a
/// quiescent state and one counter read between chunks, until counter time `end`. `op` gets
/// the core's context (a read side that may block takes it `&mut`).
#[inline(always)]
pub fn window(ctx: &mut Ctx, start: u64, end: u64, chunk: u32, mut op: impl FnMut(&mut Ctx)) -> CoreRun {
    rcu::wait_quiescent(ctx, || arch::counter_relaxed() < start);
    let t0 = arch::counter();
    let mut ops = 0u64;
    loop {
        for _ in 0..chunk {
            op(ctx);
        }
        ops += chunk as u64;
        rcu::rcu_quiescent_state(ctx);
        let t = arch::counter();
        if t >= end {
            return CoreRun { ops, ticks: t - t0 };
        }
    }
}

/// A window that opens a little after now (time for the other cores to wake) and lasts `ms`.
pub fn next_window(ms: u64) -> (u64, u64) {
    let start = arch::counter() + ticks(3_000_000);
    (start, start + ticks(ms * 1_000_000))
}

/// The first `k` online cores (core 0, which runs this, first).
pub fn first_cores(k: usize) -> Vec<usize> {
    smp::online_cpus().take(k).collect()
}

/// What `on_cores` runs on each core: its index among the cores, and that core's context.
pub type CoreWork<R> = Arc<dyn Fn(usize, &mut Ctx) -> R + Send + Sync>;

/// Runs `work(i, ctx)` on the first `k` online cores at once (this core is `i = 0`; each gets its
/// own core's context) and returns the results in that order, after all have finished (waiting
/// as a quiescent wait).
pub fn on_cores<R: Send + 'static>(ctx: &mut Ctx, k: usize, work: CoreWork<R>) -> Vec<R> {
    let cores = first_cores(k);
    let slots: Arc<spin::Mutex<Vec<Option<R>>>> = Arc::new(spin::Mutex::new((0..cores.len()).map(|_| None).collect()));
    let left = Arc::new(AtomicUsize::new(cores.len() - 1));
    for (i, &c) in cores.iter().enumerate().skip(1) {
        let (w, s, l) = (work.clone(), slots.clone(), left.clone());
        smp::queue_work(c, move |ctx| {
            let r = w(i, ctx);
            s.lock()[i] = Some(r);
            l.fetch_sub(1, Ordering::Release);
        });
    }
    let mine = work(0, ctx);
    rcu::wait_quiescent(ctx, || left.load(Ordering::Acquire) != 0);
    let mut s = slots.lock();
    s[0] = Some(mine);
    s.iter_mut().map(|r| r.take().expect("every core reported")).collect()
}

/// Prints one machine-readable line: `BENCH <kind> mode=<mode> key=value ...`. Values have no
/// spaces; a label is written `label="..."`.
pub fn line(kind: &str, fields: &str) {
    defmt::println!("BENCH {=str} mode={=str} {=str}", kind, mode(), fields);
}

/// A readable table, printed at once with aligned columns.
pub struct Table {
    title: String,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a title and a header row.
    pub fn new(title: &str, header: &[&str]) -> Self {
        Table { title: title.into(), rows: alloc::vec![header.iter().map(|h| String::from(*h)).collect()] }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table (first column left-aligned, the others right-aligned).
    pub fn print(&self) {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let width: Vec<usize> = (0..cols)
            .map(|c| self.rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
            .collect();
        defmt::println!("");
        defmt::println!("{=str} (mode={=str})", self.title.as_str(), mode());
        for (n, r) in self.rows.iter().enumerate() {
            let mut s = String::new();
            for (c, cell) in r.iter().enumerate() {
                let pad = width[c] - cell.chars().count();
                if c == 0 {
                    let _ = write!(s, "  {}{:pad$}", cell, "");
                } else {
                    let _ = write!(s, "  {:pad$}{}", "", cell);
                }
            }
            defmt::println!("{=str}", s.as_str());
            if n == 0 {
                let total: usize = width.iter().map(|w| w + 2).sum();
                defmt::println!("  {=str}", "-".repeat(total.saturating_sub(2)).as_str());
            }
        }
    }
}

/// `x` with `d` decimals.
pub fn f(x: f64, d: usize) -> String {
    alloc::format!("{:.*}", d, x)
}

/// Prints one target line: `BENCH target name=... value=... cmp=<= limit=... met=yes|no`. The
/// value is compared at one decimal (a tick interrupt inside a 100 000-iteration loop adds a
/// few hundredths of an instruction per iteration under icount).
pub fn target(name: &str, label: &str, value: f64, cmp: &str, limit: f64, unit: &str) {
    let v = (value.max(0.0) * 10.0 + 0.5) as u64 as f64 / 10.0;
    let met = if cmp == ">=" { v >= limit } else { v <= limit };
    line(
        "target",
        &alloc::format!(
            "name={name} value={value:.2} cmp={cmp} limit={limit} unit={unit} met={} label=\"{label}\"",
            yn(met)
        ),
    );
}
