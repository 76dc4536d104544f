//! The update side: what a writer pays. `synchronize_rcu` with the other cores idle and with
//! some of them busy in short read sections; `call_rcu` throughput; `percpu_down_write` from
//! idle (one grace period) and back to back, with and without readers; percpu_ref `kill` to
//! `release`. Each latency is sampled one call at a time (median and 99th percentile), minus
//! the cost of the two counter reads around it.

use super::common::{consume, f, first_cores, icount, line, median_p99, ns, sliced, target, yn, Table};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use quiescent::smp::Ctx;
use quiescent::sync::percpu_ref::{Flags, PercpuRef};
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::RwSemaphore;
use quiescent::{arch, rcu, smp};

/// Core counts for the rows with busy readers: core 0 measures, the others read.
pub const BUSY_CORES: [usize; 3] = [2, 4, 8];

/// The median cost of the two counter reads that bracket a sample.
fn timer_overhead() -> f64 {
    let v: Vec<f64> = (0..101)
        .map(|_| {
            let t0 = arch::counter();
            ns(arch::counter() - t0)
        })
        .collect();
    median_p99(v).0
}

/// `n` samples of `f`'s latency in ns; `before` runs untimed before each. Both get the context.
fn samples(ctx: &mut Ctx, n: usize, mut before: impl FnMut(&mut Ctx), mut f: impl FnMut(&mut Ctx)) -> Vec<f64> {
    let oh = timer_overhead();
    (0..n)
        .map(|_| {
            before(ctx);
            let t0 = arch::counter();
            f(ctx);
            (ns(arch::counter() - t0) - oh).max(0.0)
        })
        .collect()
}

/// Runs `f` on core 0 while cores 1..k loop `section` followed by a quiescent state (short
/// read sections, as busy QSBR readers); returns once they have stopped.
fn with_readers<R>(
    ctx: &mut Ctx,
    k: usize,
    section: Arc<dyn Fn(&mut Ctx) + Send + Sync>,
    f: impl FnOnce(&mut Ctx) -> R,
) -> R {
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicUsize::new(0));
    let others = &first_cores(k)[1..];
    for &c in others {
        let (stop, running, section) = (stop.clone(), running.clone(), section.clone());
        smp::queue_work(c, move |ctx| {
            running.fetch_add(1, Ordering::Relaxed);
            while !stop.load(Ordering::Relaxed) {
                section(ctx);
                rcu::rcu_quiescent_state(ctx);
            }
            running.fetch_sub(1, Ordering::Release);
        });
    }
    rcu::wait_quiescent(ctx, || running.load(Ordering::Relaxed) < others.len());
    let r = f(ctx);
    stop.store(true, Ordering::Relaxed);
    rcu::wait_quiescent(ctx, || running.load(Ordering::Acquire) != 0);
    r
}

/// A short RCU read section: 32 dereferences of one pointer.
fn rcu_section(p: Arc<AtomicPtr<u64>>) -> Arc<dyn Fn(&mut Ctx) + Send + Sync> {
    Arc::new(move |ctx: &mut Ctx| {
        let g = rcu::read(ctx);
        for _ in 0..32 {
            consume(rcu::rcu_dereference(&p, &g) as u64);
        }
        drop(g);
    })
}

struct Out {
    table: Table,
    /// A row ran more busy vCPUs than the host has cores.
    any_sliced: bool,
}

impl Out {
    fn latency(&mut self, op: &str, label: &str, k: usize, v: Vec<f64>) -> (f64, f64) {
        let (m, p) = median_p99(v);
        let busy = k.saturating_sub(1);
        let s = sliced(k);
        self.any_sliced |= s;
        self.table.row(alloc::vec![
            alloc::format!("{label}{}", if s { " *" } else { "" }),
            alloc::format!("{busy}"),
            f(m, 0),
            f(p, 0)
        ]);
        line(
            "update",
            &alloc::format!("op={op} busy={busy} median_ns={m:.1} p99_ns={p:.1} sliced={} label=\"{label}\"", yn(s)),
        );
        (m, p)
    }
}

/// Runs the section.
pub fn run(ctx: &mut Ctx) {
    let online = first_cores(usize::MAX).len();
    let mut out = Out {
        table: Table::new("Update side, latency per call", &["operation", "busy cores", "median ns", "p99 ns"]),
        any_sliced: false,
    };
    let ptr = Arc::new(AtomicPtr::new(alloc::boxed::Box::into_raw(alloc::boxed::Box::new(7u64))));

    // synchronize_rcu: the other cores idle, then k-1 of them busy in short read sections.
    let (idle, _) = out.latency("sync_rcu", "synchronize_rcu", 1, samples(ctx, 301, |_| (), rcu::synchronize_rcu));
    target("sync_rcu_idle", "synchronize_rcu with idle cores, median ns", idle, "<=", 1000.0, "ns");
    if !icount() {
        for k in BUSY_CORES.into_iter().filter(|&k| k <= online) {
            let v =
                with_readers(ctx, k, rcu_section(ptr.clone()), |ctx| samples(ctx, 201, |_| (), rcu::synchronize_rcu));
            out.latency("sync_rcu", "synchronize_rcu", k, v);
        }
    }

    // call_rcu: queueing cost, and end to end (until rcu_barrier has seen every callback run).
    static INVOKED: AtomicU64 = AtomicU64::new(0);
    let n = 20_000u64;
    let t0 = arch::counter();
    for i in 0..n {
        rcu::call_rcu(move |_| {
            INVOKED.fetch_add(i & 1, Ordering::Relaxed);
        });
    }
    let t1 = arch::counter();
    rcu::rcu_barrier(ctx);
    let t2 = arch::counter();
    let queue = ns(t1 - t0) / n as f64;
    let per_s = n as f64 * 1e9 / ns(t2 - t0);
    out.table.row(alloc::vec!["call_rcu, queueing (per call)".into(), "0".into(), f(queue, 0), "-".into()]);
    out.table.row(alloc::vec![
        alloc::format!("call_rcu, end to end: {} callbacks/s", f(per_s, 0)),
        "0".into(),
        "-".into(),
        "-".into()
    ]);
    line("update", &alloc::format!("op=call_rcu_queue busy=0 value={queue:.1} unit=ns label=\"call_rcu, queueing\""));
    line(
        "update",
        &alloc::format!("op=call_rcu_e2e busy=0 value={per_s:.0} unit=per_s label=\"call_rcu, queue to invoke\""),
    );

    // Retiring through RcuCell (an intrusive head: no allocation), likewise: queueing, and
    // end to end. The objects are made untimed before (their boxes are the publish's cost).
    let cell = quiescent::rcu::cell::RcuCell::with(0u64);
    let retired: Vec<_> = (0..n).filter_map(|i| cell.replace(i)).collect();
    let m = retired.len() as f64;
    let t0 = arch::counter();
    for r in retired {
        drop(r);
    }
    let t1 = arch::counter();
    rcu::rcu_barrier(ctx);
    let t2 = arch::counter();
    let queue = ns(t1 - t0) / m;
    let per_s = m * 1e9 / ns(t2 - t0);
    out.table.row(alloc::vec!["retire via RcuCell, queueing (per object)".into(), "0".into(), f(queue, 0), "-".into()]);
    out.table.row(alloc::vec![
        alloc::format!("retire via RcuCell, end to end: {} callbacks/s", f(per_s, 0)),
        "0".into(),
        "-".into(),
        "-".into()
    ]);
    line(
        "update",
        &alloc::format!("op=retire_queue busy=0 value={queue:.1} unit=ns label=\"retire via RcuCell, queueing\""),
    );
    line(
        "update",
        &alloc::format!(
            "op=retire_e2e busy=0 value={per_s:.0} unit=per_s label=\"retire via RcuCell, queue to invoke\""
        ),
    );

    // percpu_down_write: from idle (rcu_sync must leave IDLE: one grace period) and back to back.
    let p = PercpuRwSem::new().expect("per-cpu read counts");
    // The write guard: down_write, and up_write when dropped.
    let cold = |ctx: &mut Ctx, p: &Arc<PercpuRwSem>| {
        let p2 = p.clone();
        let p3 = p.clone();
        samples(ctx, 51, move |ctx| rcu::wait_quiescent(ctx, || !p2.readers_fast()), move |ctx| drop(p3.write(ctx)))
    };
    let warm = |ctx: &mut Ctx, p: &Arc<PercpuRwSem>| {
        let p3 = p.clone();
        samples(ctx, 201, |_| (), move |ctx| drop(p3.write(ctx)))
    };
    out.latency("down_write_idle", "percpu_down_write + up_write, from idle", 1, cold(ctx, &p));
    out.latency("down_write_b2b", "percpu_down_write + up_write, back to back", 1, warm(ctx, &p));
    if !icount() {
        let mut ks = alloc::vec![2, online];
        ks.retain(|&k| (2..=online).contains(&k));
        ks.dedup();
        for k in ks {
            let p2 = p.clone();
            let section: Arc<dyn Fn(&mut Ctx) + Send + Sync> = Arc::new(move |ctx: &mut Ctx| {
                let g = p2.read(ctx);
                for i in 0..32u64 {
                    consume(i);
                }
                g.unlock(ctx);
            });
            let (c, w) = with_readers(ctx, k, section, |ctx| (cold(ctx, &p), warm(ctx, &p)));
            out.latency("down_write_idle", "percpu_down_write + up_write, from idle, readers", k, c);
            out.latency("down_write_b2b", "percpu_down_write + up_write, back to back, readers", k, w);
        }
    }

    // percpu_ref: kill, then the release callback (after the fold's grace period).
    let lat: Vec<f64> = (0..51)
        .map(|_| {
            let at = Arc::new(AtomicU64::new(0));
            let a2 = at.clone();
            let r = PercpuRef::init(move |_| a2.store(arch::counter(), Ordering::Release), Flags::NONE)
                .expect("per-cpu counter");
            r.get(ctx);
            r.put(ctx);
            let t0 = arch::counter();
            r.kill(ctx);
            rcu::wait_quiescent(ctx, || at.load(Ordering::Acquire) == 0);
            ns(at.load(Ordering::Acquire) - t0)
        })
        .collect();
    out.latency("ref_kill_release", "percpu_ref kill -> release", 1, lat);

    out.table.print();
    if out.any_sliced {
        defmt::println!("  * more busy vCPUs than the host's cores: time-sliced by the host");
    }
}
