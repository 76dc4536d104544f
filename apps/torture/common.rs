//! What the three tortures share: the run's configuration (from the kernel command line), the
//! per-core random streams, the per-core "kthreads" (slices of random operations, with random
//! idle gaps between them), the orchestration on core 0, and the verdict.
//!
//! There is no scheduler, so a core cannot run several torture threads the way Linux's
//! rcutorture and locktorture do. Instead each core runs *slices*: a work item that performs
//! randomly chosen operations (reads, writes, lock holds, ref storms, ...) for a few
//! milliseconds, passing a quiescent point between operations as a kthread would at
//! `cond_resched()`. Core 0 runs operations too, between its orchestration duties, and queues
//! each other core's next slice after a random idle gap, in which that core sleeps in its idle
//! loop (an extended quiescent state): cores go idle and wake at random.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use quiescent::smp::{AtomicCtx, Ctx};
use quiescent::{arch, board, percpu::cpu_id, rcu, smp, MAX_CPUS};

/// Which tortures run (`torture=rcu|lock|ref|all`, comma-separated lists allowed).
#[derive(Clone, Copy)]
pub struct Which {
    pub rcu: bool,
    pub lock: bool,
    pub pref: bool,
}

/// The run's parameters, from the kernel command line.
pub struct Config {
    pub which: Which,
    pub duration_ms: u64,
    pub seed: u64,
    pub stat_interval_ms: u64,
}

static CONFIG: spin::Once<Config> = spin::Once::new();

pub fn config() -> &'static Config {
    CONFIG.get().expect("configured at start")
}

fn parse_config() -> Result<Config, String> {
    let which = match board::bootarg("torture").unwrap_or("all") {
        "all" => Which { rcu: true, lock: true, pref: true },
        list => {
            let mut w = Which { rcu: false, lock: false, pref: false };
            for t in list.split(',') {
                match t {
                    "rcu" => w.rcu = true,
                    "lock" => w.lock = true,
                    "ref" => w.pref = true,
                    other => {
                        return Err(alloc::format!("unknown torture type `{}` (expected rcu, lock, ref or all)", other))
                    }
                }
            }
            w
        }
    };
    let num = |key: &str, default: u64| -> Result<u64, String> {
        match board::bootarg(key) {
            None => Ok(default),
            Some(v) => {
                let v = v.trim();
                let parsed = match v.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16),
                    None => v.parse::<u64>(),
                };
                parsed.map_err(|_| alloc::format!("bad value `{}` for {}= (a number)", v, key))
            }
        }
    };
    let duration_s = num("duration", 60)?;
    if duration_s == 0 {
        return Err("duration= must be at least 1 second".into());
    }
    // No seed given: take one from the counter, and print it so the run can be replayed.
    let seed = num("seed", splitmix(arch::counter()))?;
    let stat_s = num("stat_interval", (duration_s / 4).clamp(5, 60))?;
    Ok(Config { which, duration_ms: duration_s * 1000, seed, stat_interval_ms: stat_s.max(1) * 1000 })
}

// ---------------------------------------------------------------------------------------------
// Random streams.
// ---------------------------------------------------------------------------------------------

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A xorshift64* stream. Each slice of each core gets its own stream from (seed, core, slice
/// number), so `seed=` replays the same random choices on every core; the interleaving of the
/// cores is up to the machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(stream: u64) -> Rng {
        Rng(splitmix(config().seed ^ splitmix(stream)) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// Busy-waits `ns` nanoseconds of counter time (no quiescent point: inside a read-side section
/// or a lock hold this stretches the section, as rcutorture's and locktorture's udelay()s do).
pub fn delay_ns(ns: u64) {
    if ns == 0 {
        return;
    }
    let t0 = arch::counter_relaxed();
    let ticks = ns * arch::counter_freq() / 1_000_000_000;
    while arch::counter_relaxed().wrapping_sub(t0) < ticks {
        arch::cpu_relax();
    }
}

/// A hold time as locktorture and rcutorture pick them: mostly none or short, sometimes long.
pub fn hold_ns(rng: &mut Rng, short_ns: u64, long_ns: u64) -> u64 {
    match rng.below(100) {
        0..=59 => 0,
        60..=97 => rng.below(short_ns),
        _ => long_ns / 4 + rng.below(long_ns),
    }
}

/// How many times longer than on 8 cores the forward-progress bounds (release after kill, a
/// grace period during a callback flood, the RCU stall timeout) are: 1 up to 8 online cores,
/// one more per 8 beyond. Past 8 vCPUs on this project's 2-core host, every busy vCPU waits its
/// turn on a host core, and a grace period waits for all of them.
pub fn slack() -> u64 {
    (smp::num_online().max(8) / 8) as u64
}

/// Milliseconds since boot (counter time).
pub fn now_ms() -> u64 {
    arch::ticks_to_ns(arch::counter_relaxed()) / 1_000_000
}

// ---------------------------------------------------------------------------------------------
// Stop, failure, and per-core counters.
// ---------------------------------------------------------------------------------------------

static STOP: AtomicBool = AtomicBool::new(false);
static FAILED: AtomicBool = AtomicBool::new(false);
/// Set once the run is over and the tick hook must do nothing more.
static IRQ_OFF: AtomicBool = AtomicBool::new(true);

pub fn stopping() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Records that a check failed (the suite's stats print the counter and its `!!!`).
pub fn fail() {
    FAILED.store(true, Ordering::Relaxed);
}

pub fn failed() -> bool {
    FAILED.load(Ordering::Relaxed)
}

/// A counter per core (events counted where they happen; interrupt handlers count too, so an
/// atomic add rather than a plain one).
pub struct PerCore([AtomicU64; MAX_CPUS]);

impl PerCore {
    pub const fn new() -> PerCore {
        PerCore([const { AtomicU64::new(0) }; MAX_CPUS])
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0[cpu_id()].fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self, cpu: usize) -> u64 {
        self.0[cpu].load(Ordering::Relaxed)
    }
    pub fn total(&self) -> u64 {
        self.0.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
    /// (max, min) over the online cores.
    pub fn max_min(&self) -> (u64, u64) {
        let mut it = smp::online_cpus().map(|c| self.get(c));
        let first = it.next().unwrap_or(0);
        it.fold((first, first), |(mx, mn), v| (mx.max(v), mn.min(v)))
    }
}

// ---------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------

/// One torture: its operations (picked by weight), interrupt-context work, stats and final checks.
pub trait Torture: Sync {
    /// The prefix of its lines (`rcu-torture`, `percpu_ref-torture`, ...).
    fn name(&self) -> &'static str;
    /// Sets up shared state (core 0, before any slice runs).
    fn start(&self);
    /// Total weight of its operations.
    fn weight(&self) -> u64;
    /// Performs one operation chosen by `pick` (< weight), in a slice (a blocking context).
    fn op(&self, ctx: &mut Ctx, rng: &mut Rng, pick: u64);
    /// Interrupt-context work on the tick (every core; called with IRQs masked).
    fn irq(&self, ctx: &AtomicCtx, rng: &mut Rng);
    /// After every slice has stopped: drain and check what must hold at the end.
    fn finish(&self, ctx: &mut Ctx);
    /// Prints its statistics; returns false if a check failed (the lines carry `!!!`).
    fn stats(&self) -> bool;
    /// The `--- Start/End of test` parameter list.
    fn params(&self) -> String;
}

static TORTURES: spin::Once<alloc::vec::Vec<&'static dyn Torture>> = spin::Once::new();

fn tortures() -> &'static [&'static dyn Torture] {
    TORTURES.get().map_or(&[], |v| v.as_slice())
}

fn one_op(ctx: &mut Ctx, rng: &mut Rng) {
    let ts = tortures();
    let total: u64 = ts.iter().map(|t| t.weight()).sum();
    let mut pick = rng.below(total);
    for t in ts {
        if pick < t.weight() {
            t.op(ctx, rng, pick);
            return;
        }
        pick -= t.weight();
    }
}

/// Per core: the slice it is running (or ran last) is finished.
static SLICE_DONE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(true) }; MAX_CPUS];
static SLICES: PerCore = PerCore::new();
static OPS: PerCore = PerCore::new();

/// One slice on this core: random operations for `ms`, a quiescent point after each (as a
/// kthread passes one at cond_resched()).
fn slice(ctx: &mut Ctx, stream: u64, ms: u64) {
    let mut rng = Rng::new(stream);
    let end = now_ms() + ms;
    while !stopping() && now_ms() < end {
        one_op(ctx, &mut rng);
        OPS.inc();
        rcu::rcu_quiescent_state(ctx);
    }
    SLICES.inc();
}

/// Per-core random streams for the tick hook (an interrupt handler only touches its own core's).
static IRQ_RNG: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(0) }; MAX_CPUS];

fn tick_hook(ctx: &AtomicCtx) {
    if IRQ_OFF.load(Ordering::Relaxed) {
        return;
    }
    let me = cpu_id();
    let mut rng = Rng(IRQ_RNG[me].load(Ordering::Relaxed) | 1);
    for t in tortures() {
        t.irq(ctx, &mut rng);
    }
    IRQ_RNG[me].store(rng.0, Ordering::Relaxed);
}

/// Runs the configured tortures and returns the exit code (0: SUCCESS).
pub fn run(ctx: &mut Ctx, list: &[&'static dyn Torture]) -> i32 {
    let cfg = match parse_config() {
        Ok(c) => c,
        Err(e) => {
            defmt::println!("torture: {=str}", e);
            return 2;
        }
    };
    let cfg = CONFIG.call_once(|| cfg);
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let mut names = String::new();
    let chosen: alloc::vec::Vec<&'static dyn Torture> = list
        .iter()
        .copied()
        .filter(|t| match t.name() {
            "rcu-torture" => cfg.which.rcu,
            "percpu_ref-torture" => cfg.which.pref,
            _ => cfg.which.lock,
        })
        .collect();
    for t in &chosen {
        if !names.is_empty() {
            names.push(',');
        }
        names.push_str(t.name());
    }
    TORTURES.call_once(|| chosen);
    defmt::println!(
        "torture: seed={=u64:#x} duration={} s cores={} build={=str} board={=str} tortures={=str} (replay the random choices with SEED={=u64:#x})",
        cfg.seed, cfg.duration_ms / 1000, smp::num_online(), build, board::NAME, names.as_str(), cfg.seed
    );
    rcu::stats::set_stall_timeout_ms(3000 * slack());
    for t in tortures() {
        t.start();
        defmt::println!("{=str}:--- Start of test: {=str}", t.name(), t.params().as_str());
    }
    for c in 0..MAX_CPUS {
        IRQ_RNG[c].store(splitmix(cfg.seed ^ (0x1d << 56) ^ c as u64) | 1, Ordering::Relaxed);
    }
    quiescent::smp::tick::add_hook(tick_hook);
    IRQ_OFF.store(false, Ordering::Release);

    let t0 = now_ms();
    let mut next_stat = t0 + cfg.stat_interval_ms;
    let mut next_start = [0u64; MAX_CPUS];
    let mut slice_no = [0u64; MAX_CPUS];
    let mut rng = Rng::new(0);
    let mut failed_at = None;
    let end_at = t0 + cfg.duration_ms;
    loop {
        let now = now_ms();
        if now >= end_at || failed_at.is_some_and(|f| now >= f + 1000) {
            break;
        }
        if failed_at.is_none() && failed() {
            // Stop a second after the first failure: the counters have what they need, and the
            // suite's fault-injection runs end sooner.
            failed_at = Some(now);
        }
        for c in smp::online_cpus().filter(|&c| c != 0) {
            if !SLICE_DONE[c].load(Ordering::Acquire) {
                continue;
            }
            if next_start[c] == 0 {
                // Just finished (or never started): sleep for a random gap, often none.
                next_start[c] = now + if rng.pct(40) { 0 } else { 1 + rng.below(5) };
            }
            if now >= next_start[c] {
                next_start[c] = 0;
                slice_no[c] += 1;
                SLICE_DONE[c].store(false, Ordering::Relaxed);
                let (stream, ms) = ((c as u64) << 32 | slice_no[c], 2 + rng.below(30));
                smp::queue_work(c, move |ctx| {
                    slice(ctx, stream, ms);
                    // Release: the slice's effects before the orchestrator sees it done.
                    SLICE_DONE[c].store(true, Ordering::Release);
                });
            }
        }
        // Core 0's own share of the work: a short burst of operations.
        slice_no[0] += 1;
        slice(ctx, (slice_no[0]) | 1 << 48, 1);
        if now >= next_stat {
            next_stat += cfg.stat_interval_ms;
            defmt::println!("torture: {} s of {} s", (now - t0) / 1000, cfg.duration_ms / 1000);
            for t in tortures() {
                t.stats();
            }
        }
    }

    // Stop: every slice finishes its operation and returns; one that does not is named.
    STOP.store(true, Ordering::Release);
    let t_stop = now_ms();
    let mut hung: alloc::vec::Vec<usize> = alloc::vec::Vec::new();
    rcu::wait_quiescent(ctx, || {
        let busy = smp::online_cpus().any(|c| !SLICE_DONE[c].load(Ordering::Acquire));
        if busy && now_ms() - t_stop > 10_000 {
            hung = smp::online_cpus().filter(|&c| !SLICE_DONE[c].load(Ordering::Acquire)).collect();
            return false;
        }
        busy
    });
    if !hung.is_empty() {
        for c in hung {
            defmt::println!("torture: !!! core {} did not finish its slice within 10 s of the end (hung?)", c);
        }
        defmt::println!("torture:--- End of test: FAILURE: cores hung");
        return 1;
    }
    IRQ_OFF.store(true, Ordering::Release);
    for t in tortures() {
        t.finish(ctx);
    }
    rcu::rcu_barrier(ctx);
    rcu::rcu_barrier(ctx);
    let stalls = rcu::stats::stalls().0;
    defmt::println!(
        "torture: {} s, {} slices, {} operations ({} on core 0), {} grace periods, {} RCU stalls, heap {} KiB in use",
        (now_ms() - t0) / 1000,
        SLICES.total(),
        OPS.total(),
        OPS.get(0),
        rcu::stats::completed(),
        stalls,
        quiescent::heap::used() / 1024
    );
    let mut ok = stalls == 0 && !failed();
    if stalls != 0 {
        defmt::println!("torture: !!! {} RCU stall reports", stalls);
    }
    for t in tortures() {
        ok &= t.stats();
    }
    let verdict = if ok { "SUCCESS" } else { "FAILURE" };
    for t in tortures() {
        defmt::println!("{=str}:--- End of test: {=str}: {=str}", t.name(), verdict, t.params().as_str());
    }
    defmt::println!("End of test: {=str}", verdict);
    if ok {
        0
    } else {
        1
    }
}

/// A 0/1 gauge as rcutorture prints them.
pub fn flag(b: bool) -> u32 {
    b as u32
}
