//! Scaling, in real time: each read side's throughput on 1, 2, 4 and 8 cores, every core
//! running the same loop (`common::window`) over the same window of counter time, with no
//! empty loop subtracted anywhere and no counter read inside a chunk.

use super::common::{f, first_cores, line, next_window, on_cores, sliced, target, throughput, yn, Table};
use super::subjects::{ReadSide, Subjects};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use quiescent::smp::Ctx;

/// Core counts measured (those beyond the online cores are skipped).
pub const CORES: [usize; 4] = [1, 2, 4, 8];
/// Length of one window, and how many windows (the median counts).
const WINDOW_MS: u64 = 100;
const REPS: usize = 5;
/// Operations between two counter reads: enough that the read (the `counter read` row of
/// bench/results.md) is a small share of each chunk.
const CHUNK: u32 = 2048;

/// Throughput of every read side on each of `cores` (the first k online cores), in operations
/// per second: the median of REPS windows, the read sides and core counts interleaved (each
/// round runs every pair once), so that a change in the host's load touches them all alike.
fn measure(ctx: &mut Ctx, s: &Arc<Subjects>, cores: &[usize]) -> Vec<Vec<f64>> {
    let mut v: Vec<Vec<Vec<f64>>> = alloc::vec![alloc::vec![Vec::new(); cores.len()]; ReadSide::ALL.len()];
    for _ in 0..REPS {
        for (side, per_side) in ReadSide::ALL.into_iter().zip(v.iter_mut()) {
            for (c, &k) in cores.iter().enumerate() {
                let (start, end) = next_window(WINDOW_MS);
                let s2 = s.clone();
                let work = move |_: usize, ctx: &mut Ctx| side.window(ctx, &s2, start, end, CHUNK);
                per_side[c].push(throughput(&on_cores(ctx, k, Arc::new(work))));
            }
        }
    }
    v.into_iter().map(|p| p.into_iter().map(median).collect()).collect()
}

/// The median of samples.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the section.
pub fn run(ctx: &mut Ctx, s: &Arc<Subjects>) {
    let online = first_cores(usize::MAX).len();
    let cores: Vec<usize> = CORES.iter().copied().filter(|&k| k <= online).collect();
    let mut head: Vec<String> = alloc::vec!["read side (Mops/s, speedup vs 1 core)".into()];
    head.extend(
        cores
            .iter()
            .map(|&k| alloc::format!("{k} core{}{}", if k > 1 { "s" } else { "" }, if sliced(k) { "*" } else { "" })),
    );
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut table = Table::new("Read-side throughput vs cores, all cores in the same loop", &head_refs);
    let all = measure(ctx, s, &cores);
    for (side, thr) in ReadSide::ALL.into_iter().zip(all) {
        let mut row = alloc::vec![String::from(side.label())];
        let one = thr[0];
        for (&k, &t) in cores.iter().zip(&thr) {
            let speedup = t / if one > 0.0 { one } else { t.max(1.0) };
            row.push(alloc::format!("{} ({}x)", f(t / 1e6, 1), f(speedup, 2)));
            line(
                "scale",
                &alloc::format!(
                    "op={} cores={k} ops_per_s={t:.0} speedup={speedup:.3} per_core={} sliced={} label=\"{}\"",
                    side.id(),
                    yn(side.per_core()),
                    yn(sliced(k)),
                    side.label()
                ),
            );
            if k == 2 {
                if side.per_core() {
                    target(
                        &alloc::format!("scale2_{}", side.id()),
                        &alloc::format!("{} 1 -> 2 cores (per-core data)", side.label()),
                        speedup,
                        ">=",
                        1.9,
                        "x",
                    );
                } else {
                    target(
                        &alloc::format!("scale2_{}", side.id()),
                        &alloc::format!("{} 1 -> 2 cores (one shared word)", side.label()),
                        speedup,
                        "<=",
                        1.3,
                        "x",
                    );
                }
            }
        }
        table.row(row);
    }
    table.print();
    if cores.iter().any(|&k| sliced(k)) {
        defmt::println!(
            "  * more vCPUs than the host's {} cores: QEMU's threads are time-sliced, so these columns measure the host's scheduling, not the primitive",
            super::common::host_cores()
        );
    }
}
