//! Benchmarks (`make bench`, which runs `qrun bench`). Every figure line states its mode:
//! `mode=icount` when QEMU runs with `-icount shift=0` (one instruction is one nanosecond of
//! virtual time, so the figures are exact instruction counts), `mode=mttcg` otherwise (real
//! time on multi-threaded TCG; compare rows of one run only). Each section prints a readable
//! table and `BENCH` lines, which the host tool turns into `bench/results.md` and charts.
//!
//! Sections: `costs` (one core, refscale style), `scaling` (read sides on 1..8 cores, mttcg
//! only), `update` (the writer's side), `mixed` (seed 004's workload, mttcg only), `gp`
//! (grace-period cost against the core count, for RCU's combining tree; icount).
#![no_std]
#![no_main]

extern crate alloc;

mod common;
mod costs;
mod gp;
mod mixed;
mod scaling;
mod subjects;
mod update;

use quiescent::smp::Ctx;
use quiescent::{arch, board, smp};

/// Whether the section `name` runs: all by default, or those listed in `bench-sections=a,b`.
fn wanted(name: &str) -> bool {
    board::bootarg("bench-sections").is_none_or(|v| v.split(',').any(|s| s == name))
}

fn main(ctx: &mut Ctx) -> i32 {
    let online = smp::num_online();
    let host = common::host_cores();
    defmt::println!("bench: {} cores online, host cores {}, mode={=str}", online, host, common::mode());
    common::line("info", &alloc::format!("cores={online} host_cores={host} counter_hz={}", arch::counter_freq()));
    let s = subjects::Subjects::new();
    if wanted("costs") {
        costs::run(ctx, &s);
    }
    if wanted("scaling") && !common::icount() {
        scaling::run(ctx, &s);
    }
    if wanted("update") {
        update::run(ctx);
    }
    if wanted("mixed") && !common::icount() {
        mixed::run(ctx);
    }
    if wanted("gp") {
        gp::run(ctx);
    }
    common::line("done", "");
    0
}

quiescent::entry!(main);
