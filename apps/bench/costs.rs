//! Per-operation costs on one core, refscale style (the other cores idle): the floor a per-core
//! counter can cost and its alternatives, then every read side. Under icount the figures are
//! exact instruction counts; under mttcg, nanoseconds of real time.

use super::common::{consume, f, icount, launder, line, ns, per_op, target, Table};
use super::subjects::{ReadSide, Subjects};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use quiescent::rcu::cell::RcuCell;
use quiescent::smp::{AtomicCtx, Ctx};
use quiescent::sync::percpu_ref::PercpuRef;
use quiescent::sync::percpu_rwsem::PercpuRwSem;
use quiescent::sync::RwSemaphore;
use quiescent::{arch, rcu, smp};

const N: u64 = 100_000;

quiescent::percpu! {
    /// The per-core counter of the `this_cpu_add` row.
    static FLOOR: u32 = 0;
}

/// The percpu_ref row's loop, out of line under a plain symbol for `llvm-objdump -d` (the
/// `bench_cost_*` names are unique in the image, so `no_mangle` clashes with no other symbol).
/// The context is empty: passing it costs no instruction.
#[inline(never)]
#[unsafe(no_mangle)]
fn bench_cost_percpu_ref(r: &PercpuRef, ctx: &AtomicCtx, n: u64) -> f64 {
    per_op(n, || {
        r.get(ctx);
        r.put(ctx);
    })
}

/// The percpu-rwsem row's loop, likewise: the guard, released on the fast path
/// (`unlock(ctx)`, which is `up_read`), the same instructions as the raw pair.
#[inline(never)]
#[unsafe(no_mangle)]
fn bench_cost_percpu_rwsem(l: &PercpuRwSem, ctx: &mut Ctx, n: u64) -> f64 {
    per_op(n, || {
        let g = l.read(ctx);
        g.unlock(ctx);
    })
}

/// `rcu_quiescent_state` as a direct call, likewise.
#[inline(never)]
#[unsafe(no_mangle)]
fn bench_cost_quiescent_state(ctx: &mut Ctx, n: u64) -> f64 {
    per_op(n, || rcu::rcu_quiescent_state(ctx))
}

/// The quiescent point as the idle loop calls it (through the hook RCU installed).
#[inline(never)]
#[unsafe(no_mangle)]
fn bench_cost_quiescent_point(ctx: &mut Ctx, n: u64) -> f64 {
    per_op(n, || smp::quiescent_point(ctx))
}

/// Objects retired per run of the retire rows.
const RETIRES: usize = 20_000;

/// The cost of `retire` on each of a run's objects (for `Retired`/`Removed`, dropping it: the
/// object is queued for freeing after a grace period), and the heap allocations it made per
/// object. The best of three runs, each followed by an `rcu_barrier` that frees the objects
/// (untimed). `make` builds a run's objects (untimed). The loop over the vector adds about 2
/// instructions per object.
fn retire_cost<R>(ctx: &mut Ctx, mut make: impl FnMut() -> Vec<R>, mut retire: impl FnMut(R)) -> (f64, f64) {
    let (mut best, mut allocs) = (f64::MAX, 0u64);
    for _ in 0..3 {
        let mut objs = make();
        let n = objs.len();
        let a0 = quiescent::heap::allocations();
        let t0 = arch::counter();
        for r in objs.drain(..) {
            retire(r);
        }
        let t1 = arch::counter();
        allocs = allocs.max(quiescent::heap::allocations() - a0);
        best = best.min(ns(t1 - t0) / n as f64);
        rcu::rcu_barrier(ctx);
    }
    (best, allocs as f64 / RETIRES as f64)
}

/// The retire rows: through `RcuCell` (dropping a `Retired`), through `RcuList` (dropping a
/// `Removed`), and the closure form of `call_rcu` for comparison (which allocates its box).
/// Returns (cell instructions, cell allocations per retire, list allocations per retire).
fn retire_rows(ctx: &mut Ctx, rows: &mut Rows) -> (f64, f64, f64) {
    use quiescent::rcu::cell::RcuCell;
    use quiescent::rcu::list::RcuList;
    rcu::rcu_barrier(ctx);
    let cell: RcuCell<u64> = RcuCell::with(0);
    let (cell_v, cell_allocs) =
        retire_cost(ctx, || (0..RETIRES as u64).filter_map(|i| cell.replace(i)).collect(), drop);
    rows.add("retire", "retire_cell", "retire through RcuCell (drop Retired, queueing included)", cell_v);
    rows.note("  heap allocations per RcuCell retire", cell_allocs, "allocs");
    let list: RcuList<u64> = RcuList::new();
    let (v, list_allocs) = retire_cost(
        ctx,
        || {
            (0..RETIRES as u64)
                .filter_map(|i| {
                    list.add_head(i);
                    list.remove(|_| true)
                })
                .collect()
        },
        drop,
    );
    rows.add("retire", "retire_list", "retire through RcuList (drop Removed, queueing included)", v);
    rows.note("  heap allocations per RcuList retire", list_allocs, "allocs");
    let (v, closure_allocs) =
        retire_cost(ctx, || (0..RETIRES as u64).collect(), |i| rcu::call_rcu(move |_: &AtomicCtx| consume(i)));
    rows.add("retire", "call_rcu_closure", "call_rcu(closure), queueing (allocates its box)", v);
    rows.note("  heap allocations per call_rcu(closure)", closure_allocs, "allocs");
    if icount() {
        target(
            "call_rcu_closure_allocs",
            "heap allocations per call_rcu(closure) (allocates)",
            closure_allocs,
            "<=",
            1.0,
            "allocs",
        );
    }
    (cell_v, cell_allocs, list_allocs)
}

struct Rows {
    table: Table,
    unit: &'static str,
}

impl Rows {
    fn add(&mut self, group: &str, op: &str, label: &str, v: f64) {
        self.table.row(alloc::vec![label.into(), f(v, 1)]);
        line("cost", &alloc::format!("group={group} op={op} value={v:.2} unit={} label=\"{label}\"", self.unit));
    }

    /// A row in the table only, in its own unit (not a cost line: the chart's bars are time).
    fn note(&mut self, label: &str, v: f64, unit: &str) {
        self.table.row(alloc::vec![alloc::format!("{label} ({unit})"), f(v, 2)]);
    }
}

/// Runs the section; returns nothing (its lines are the result).
pub fn run(ctx: &mut Ctx, s: &Subjects) {
    let unit = if icount() { "insn" } else { "ns" };
    let head = if icount() { "instructions" } else { "ns (real time)" };
    let mut rows =
        Rows { table: Table::new("Per-operation cost, one core, other cores idle", &["operation", head]), unit };

    // The floor: a counter only this core writes, four ways.
    let mut local = 0u32;
    let p = launder(&mut local as *mut u32);
    let v = per_op(N, || {
        // SAFETY: `p` points to `local`, on this stack frame, used by nothing else meanwhile.
        // Not safe code because the row measures a plain (non-atomic) load, add and store that
        // the compiler must emit as written: safe Rust has no volatile access, and a safe
        // `local += 1` is kept in a register or folded out of the loop (`black_box` adds a
        // spill), so it would not measure the memory increment the other rows are compared to.
        unsafe { p.write_volatile(p.read_volatile().wrapping_add(1)) }
    });
    rows.add("floor", "local_inc", "bare local increment (ldr/add/str)", v);
    let v = per_op(N, || FLOOR.this_cpu_add(1));
    rows.add("floor", "this_cpu_add", "this_cpu_add (restartable ldr/add/str)", v);
    let a = AtomicU32::new(0);
    let v = per_op(N, || {
        a.fetch_add(1, Ordering::Relaxed);
    });
    rows.add("floor", "llsc_add", "LL/SC atomic add (ldxr/stxr)", v);
    let v = per_op(N, || {
        let flags = arch::local_irq_save();
        // SAFETY: as above (and not safe code for the same reason).
        unsafe { p.write_volatile(p.read_volatile().wrapping_add(1)) }
        arch::local_irq_restore(flags);
    });
    rows.add("floor", "irq_add", "IRQ-masked add (daif save/mask/restore)", v);

    // The read sides.
    let rcu_only = per_op(N, || {
        let g = rcu::read(ctx);
        drop(g);
    });
    rows.add("read", "rcu_lock_only", "rcu_read_lock + rcu_read_unlock", rcu_only);
    let mut values = [0f64; ReadSide::ALL.len()];
    for (i, side) in ReadSide::ALL.iter().enumerate() {
        let v = match side {
            ReadSide::PercpuRef => bench_cost_percpu_ref(&s.pref, ctx, N),
            ReadSide::PercpuRwSem => bench_cost_percpu_rwsem(&s.prw, ctx, N),
            _ => side.cost(ctx, s, N),
        };
        values[i] = v;
        rows.add("read", side.id(), side.label(), v);
    }
    // The typed pointer's read: one load, as `rcu_dereference` (the `&u64` is the box's address).
    let cell = RcuCell::with(0u64);
    // Opaque to the compiler (as the shared subjects are), which would otherwise know the
    // local cell's pointer and fold the load away.
    let cell = core::hint::black_box(&cell);
    let cell_read = per_op(N, || {
        let g = rcu::read(ctx);
        consume(cell.read(&g).map_or(0, |v| v as *const u64 as u64));
        drop(g);
    });
    rows.add("read", "rcu_cell_read", "RcuCell read (lock + read + unlock)", cell_read);
    // percpu-rwsem's guard dropped instead of `unlock(ctx)`: the drop has no context, so it
    // checks that RCU watches this core before taking the fast path.
    let dropped = per_op(N, || drop(s.prw.read(ctx)));
    rows.add("read", "percpu_rwsem_drop", "percpu-rwsem down_read + guard dropped (no context)", dropped);

    // The quiescent point and what it is made of.
    let qs = bench_cost_quiescent_state(ctx, N);
    rows.add("qs", "quiescent_state", "rcu_quiescent_state, no grace period pending", qs);
    let qp = bench_cost_quiescent_point(ctx, N);
    rows.add("qs", "quiescent_point", "idle loop's quiescent point (hook call)", qp);
    let (retire, cell_allocs, list_allocs) = retire_rows(ctx, &mut rows);
    let v = per_op(N, arch::smp_mb);
    rows.add("other", "dmb", "smp_mb (dmb ish)", v);
    let v = per_op(N, || consume(arch::counter()));
    rows.add("other", "counter", "counter read (isb; mrs cntvct_el0)", v);
    rows.table.print();

    if icount() {
        let at = |side: ReadSide| values[ReadSide::ALL.iter().position(|&x| x == side).unwrap_or(0)];
        target("rcu_read_side", "RCU read side (lock + unlock), instructions", rcu_only, "<=", 0.0, "insn");
        target(
            "percpu_rwsem_pair",
            "percpu-rwsem down_read + up_read, instructions",
            at(ReadSide::PercpuRwSem),
            "<=",
            12.0,
            "insn",
        );
        target("percpu_ref_pair", "percpu_ref get + put, instructions", at(ReadSide::PercpuRef), "<=", 10.0, "insn");
        target("rcu_cell_read", "RcuCell read under a guard, instructions", cell_read, "<=", 1.0, "insn");
        target("quiescent_state", "rcu_quiescent_state, no grace period pending, instructions", qs, "<=", 10.0, "insn");
        target("retire_cell", "retire through RcuCell, queueing included, instructions", retire, "<=", 60.0, "insn");
        target("retire_cell_allocs", "heap allocations per RcuCell retire", cell_allocs, "<=", 0.0, "allocs");
        target("retire_list_allocs", "heap allocations per RcuList retire", list_allocs, "<=", 0.0, "allocs");
    }
    consume(local as u64);
}
