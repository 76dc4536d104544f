//! The timeout path: core 1 never finishes its part of a case. The suite runs this image with a
//! short timeout and expects the runner to kill it, naming the case and core 1.
#![no_std]
#![no_main]

use quiescent::smp::{self, Ctx};
use quiescent::{arch, test};

fn core_1_never_finishes(ctx: &mut Ctx) {
    assert!(smp::num_online() > 1, "needs two cores");
    test::on_all_cores(ctx, |cpu, _| {
        if cpu == 1 {
            loop {
                arch::wfe();
            }
        }
    });
}

quiescent::tests!(core_1_never_finishes);
