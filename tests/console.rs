//! Console: concurrent logging from all cores yields whole lines. The host checks the lines
//! (qrun's suite: every core's `console-stress` lines arrive whole and in order, nothing
//! malformed); the image checks that logging works at every level and from every core.
#![no_std]
#![no_main]

use quiescent::smp::Ctx;
use quiescent::test;

/// Lines each core prints in the stress case (the host counts them).
const LINES: u32 = 40;

fn concurrent_lines_from_all_cores(ctx: &mut Ctx) {
    test::on_all_cores(ctx, |cpu, _| {
        for seq in 0..LINES {
            defmt::println!("console-stress core {} seq {} of {} payload {=[u8]}", cpu, seq, LINES, [cpu as u8; 12]);
        }
    });
}

fn every_level_reaches_the_host(_ctx: &mut Ctx) {
    defmt::info!("console-level info");
    defmt::warn!("console-level warn");
    defmt::error!("console-level error");
}

quiescent::tests!(concurrent_lines_from_all_cores, every_level_reaches_the_host);
