//! Scaling, in real time: each read side's throughput on 1, 2, 4 and 8 cores, every core
//! running the same loop (`common::window`) over the same window of counter time, with no
//! empty loop subtracted anywhere and no counter read inside a chunk.

use super::common::{f, first_cores, line, next_window, on_cores, sliced, target, throughput, yn, Table};
use super::subjects::{ReadSide, Subjects};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Core counts measured (those beyond the online cores are skipped).
pub const CORES: [usize; 4] = [1, 2, 4, 8];
/// Length of one window, and how many windows (the median counts).
const WINDOW_MS: u64 = 60;
const REPS: usize = 5;
/// Operations between two counter reads: the read costs ~100 ns under mttcg, 2048 operations
/// at least ~20 us.
const CHUNK: u32 = 2048;

/// Throughput of `side` on each of `cores` (the first k online cores), in operations per
/// second: the median of REPS windows per core count, the counts interleaved (1, 2, 4, 8, 1,
/// 2, ...) so that a change in the host's load touches them all alike.
fn measure(s: &Arc<Subjects>, side: ReadSide, cores: &[usize]) -> Vec<f64> {
    let mut v: Vec<Vec<f64>> = alloc::vec![Vec::new(); cores.len()];
    for _ in 0..REPS {
        for (i, &k) in cores.iter().enumerate() {
            let (start, end) = next_window(WINDOW_MS);
            let s2 = s.clone();
            v[i].push(throughput(&on_cores(k, Arc::new(move |_| side.window(&s2, start, end, CHUNK)))));
        }
    }
    v.into_iter().map(median).collect()
}

/// The median of samples.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(core::cmp::Ordering::Equal));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the section.
pub fn run(s: &Arc<Subjects>) {
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
    for side in ReadSide::ALL {
        let mut row = alloc::vec![String::from(side.label())];
        let thr = measure(s, side, &cores);
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
