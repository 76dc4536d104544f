//! Grace-period cost against the core count (issue #14): what all cores together spend on RCU
//! per grace period, and what one quiescent-state report costs, with the combining tree's leaf
//! size of this boot (`rcu_leaf=N`).
//!
//! What is measurable, and how. Under `-icount shift=0` QEMU runs the vCPUs round-robin on one
//! host thread, and its virtual clock (which CNTVCT follows) advances one nanosecond per
//! instruction executed by *any* vCPU: it is the whole machine's instruction count, not a
//! per-core one (QEMU's PMU instruction counter under icount reads the same global count). So a
//! counter delta taken on one core around a call counts that call's instructions exactly as
//! long as no other vCPU ran in between: round-robin switches vCPUs only when the running one
//! halts, yields (`wfe`/`yield`) or reaches a timer deadline, so a short call that neither waits
//! nor spins is measured exactly (a rare sample that spans a switch is dropped: `OUTLIER`).
//! Every wait here therefore yields (`wfe`, which QEMU's TCG treats as a yield), so the spinning
//! cores hand the host thread on at once.
//!
//! Rows (each a mean over `ROUNDS` grace periods):
//! * `gp_idle`: one `synchronize_rcu` on core 0 with every other core idle: the machine's
//!   instructions per grace period (the idle cores run nothing: the starter reports for them).
//! * `start`: `start_poll_synchronize_rcu` starting a grace period while the others are busy
//!   (the tree's set-up and the starter's pass over every core).
//! * `report`: one core's `rcu_quiescent_state` that reports while the grace period still
//!   waits for another core (the last core, holding a read-side section).
//! * `last_report`: the report that completes the grace period (the last core's).
//! * `gp_busy`: `start` + every busy core's report + `last_report`: all the instructions the
//!   cores spend on one grace period when none is idle.

use super::common::{f, icount, line, ns, Table};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use quiescent::smp::Ctx;
use quiescent::{arch, rcu, smp};

const ROUNDS: usize = 40;
/// Larger deltas span a vCPU switch (another core's instructions are in them): dropped.
const OUTLIER: f64 = 200_000.0;

/// Waits for `cond` as a quiescent waiter, yielding the vCPU on each try.
fn wait(ctx: &mut Ctx, cond: impl Fn() -> bool) {
    rcu::wait_quiescent(ctx, || {
        arch::wfe();
        !cond()
    });
}

/// The counter delta of `f` in ns (under icount: its instructions, plus the counter reads).
/// The counter ticks every 16 ns (62.5 MHz), so one sample is a multiple of 16; a call starts
/// at a random phase of the tick, so the mean of many samples is exact (the expected count of
/// tick edges inside an interval is its length over 16), while a median is not.
#[inline(always)]
fn measure(f: impl FnOnce()) -> f64 {
    let t0 = arch::counter();
    f();
    ns(arch::counter() - t0)
}

/// The mean cost of the two counter reads around `measure`'s call.
fn overhead() -> f64 {
    (0..2000).map(|_| measure(|| {})).sum::<f64>() / 2000.0
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// One round's shared state.
struct Round {
    ready: AtomicUsize,
    go: AtomicBool,
    release: AtomicBool,
    done: AtomicUsize,
    costs: spin::Mutex<Vec<f64>>,
    last: AtomicU64,
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) {
    let cores: Vec<usize> = smp::online_cpus().collect();
    let n = cores.len();
    let leaf = rcu::stats::leaf_size();
    let oh = overhead();
    let unit = if icount() { "insn" } else { "ns" };
    let mut t = Table::new(
        &alloc::format!("Grace-period cost, {n} cores, leaf size {leaf}"),
        &["what", if icount() { "instructions" } else { "counter ns" }],
    );
    let mut put = |op: &str, label: &str, v: f64| {
        t.row(alloc::vec![label.into(), f(v, 1)]);
        line("gp", &alloc::format!("op={op} cores={n} leaf={leaf} value={v:.1} unit={unit} label=\"{label}\""));
    };

    // The others idle: the whole machine's instructions per synchronize_rcu.
    rcu::synchronize_rcu(ctx);
    let total = measure(|| {
        for _ in 0..ROUNDS {
            rcu::synchronize_rcu(ctx);
        }
    });
    put("gp_idle", "synchronize_rcu, others idle (per grace period)", (total - oh) / ROUNDS as f64);

    if n < 2 {
        return;
    }
    // The others busy: core 0 starts each grace period and reports; the middle cores report
    // once each while the last core still holds a reader; then the last core reports.
    let holder = cores[n - 1];
    let middle: Vec<usize> = cores[1..n - 1].to_vec();
    let (mut starts, mut reports, mut lasts, mut per_gp) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let r = Arc::new(Round {
            ready: AtomicUsize::new(0),
            go: AtomicBool::new(false),
            release: AtomicBool::new(false),
            done: AtomicUsize::new(0),
            costs: spin::Mutex::new(Vec::new()),
            last: AtomicU64::new(0),
        });
        {
            let r = r.clone();
            smp::queue_work(holder, move |ctx| {
                let g = rcu::read(ctx);
                r.ready.fetch_add(1, Ordering::Release);
                while !r.release.load(Ordering::Acquire) {
                    arch::wfe();
                }
                drop(g);
                let c = measure(|| rcu::rcu_quiescent_state(ctx));
                r.last.store((c - oh).to_bits(), Ordering::Relaxed);
                r.done.fetch_add(1, Ordering::Release);
            });
        }
        for &c in &middle {
            let r = r.clone();
            smp::queue_work(c, move |ctx| {
                r.ready.fetch_add(1, Ordering::Release);
                while !r.go.load(Ordering::Acquire) {
                    arch::wfe();
                }
                let c = measure(|| rcu::rcu_quiescent_state(ctx));
                r.costs.lock().push(c - oh);
                r.done.fetch_add(1, Ordering::Release);
            });
        }
        wait(ctx, || r.ready.load(Ordering::Acquire) == n - 1);
        let mut cookie = 0;
        let start = measure(|| cookie = rcu::start_poll_synchronize_rcu()) - oh;
        let own = measure(|| rcu::rcu_quiescent_state(ctx)) - oh;
        r.go.store(true, Ordering::Release);
        wait(ctx, || r.done.load(Ordering::Acquire) == n - 2);
        r.release.store(true, Ordering::Release);
        wait(ctx, || r.done.load(Ordering::Acquire) == n - 1 && rcu::poll_state_synchronize_rcu(cookie));
        let mut costs = core::mem::take(&mut *r.costs.lock());
        costs.push(own);
        let last = f64::from_bits(r.last.load(Ordering::Relaxed));
        if start > OUTLIER || last > OUTLIER || costs.iter().any(|&c| c > OUTLIER) {
            continue; // a vCPU switch inside a measured call
        }
        per_gp.push(start + last + costs.iter().sum::<f64>());
        starts.push(start);
        lasts.push(last);
        reports.extend(costs);
    }
    let kept = per_gp.len();
    put("start", "start_poll_synchronize_rcu starting one, others busy", mean(&starts));
    put("report", "one report while the grace period waits", mean(&reports));
    put("report_max", "the costliest of those reports (one sample)", reports.iter().copied().fold(0.0, f64::max));
    put("last_report", "the report that completes it", mean(&lasts));
    put("gp_busy", "all cores, one grace period, none idle", mean(&per_gp));
    t.print();
    line("gp_rounds", &alloc::format!("cores={n} leaf={leaf} kept={kept} rounds={ROUNDS}"));
}
