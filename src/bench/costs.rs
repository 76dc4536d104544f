//! Per-operation costs on one core, refscale style (the other cores idle): the floor a per-core
//! counter can cost and its alternatives, then every read side. Under icount the figures are
//! exact instruction counts; under mttcg, nanoseconds of real time.

use super::common::{consume, f, icount, launder, line, per_op, target, Table};
use super::subjects::{ReadSide, Subjects};
use core::sync::atomic::{AtomicU32, Ordering};
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

struct Rows {
    table: Table,
    unit: &'static str,
}

impl Rows {
    fn add(&mut self, group: &str, op: &str, label: &str, v: f64) {
        self.table.row(alloc::vec![label.into(), f(v, 1)]);
        line("cost", &alloc::format!("group={group} op={op} value={v:.2} unit={} label=\"{label}\"", self.unit));
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
            ReadSide::PercpuRwsem => bench_cost_percpu_rwsem(&s.prw, ctx, N),
            _ => side.cost(ctx, s, N),
        };
        values[i] = v;
        rows.add("read", side.id(), side.label(), v);
    }

    // The quiescent point and what it is made of.
    let qs = bench_cost_quiescent_state(ctx, N);
    rows.add("qs", "quiescent_state", "rcu_quiescent_state, no grace period pending", qs);
    let qp = bench_cost_quiescent_point(ctx, N);
    rows.add("qs", "quiescent_point", "idle loop's quiescent point (hook call)", qp);
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
            at(ReadSide::PercpuRwsem),
            "<=",
            12.0,
            "insn",
        );
        target("percpu_ref_pair", "percpu_ref get + put, instructions", at(ReadSide::PercpuRef), "<=", 10.0, "insn");
        target("quiescent_state", "rcu_quiescent_state, no grace period pending, instructions", qs, "<=", 10.0, "insn");
    }
    consume(local as u64);
}
