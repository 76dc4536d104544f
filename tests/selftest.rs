//! The failure path: a case that fails on purpose, on a secondary core. The suite expects this
//! image to exit non-zero with the case named and the message, file, line and core shown.
#![no_std]
#![no_main]

use quiescent::smp::{self, Ctx};
use quiescent::test;

fn passing_case(_ctx: &mut Ctx) {}

fn deliberately_failing_case(ctx: &mut Ctx) {
    let target = if smp::num_online() > 1 { 1 } else { 0 };
    test::on_all_cores(ctx, move |cpu, _| {
        if cpu == target {
            let two = core::hint::black_box(1) + 1;
            assert!(two == 3, "1 + 1 == 3 (deliberate)");
        }
    });
}

quiescent::tests!(passing_case, deliberately_failing_case);
