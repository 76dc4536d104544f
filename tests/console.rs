//! Console: concurrent logging from all cores yields whole lines. The host checks the lines
//! (qrun's suite: every core's `console-stress` lines arrive whole and in order, nothing
//! malformed); the image checks that logging works at every level and from every core.
#![no_std]
#![no_main]

use quiescent::arch;
use quiescent::drivers::pl011::Pl011;
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

/// A PL011 whose BUSY flag never clears (a UART with its clock stopped): the bounded flush the
/// boards use before the console exists gives up after its bound instead of hanging, and
/// returns at once when the UART is idle. The "UART" is a register block in RAM.
fn a_stuck_uart_does_not_hang_the_flush(_ctx: &mut Ctx) {
    #[repr(align(4096))]
    struct Block([u32; 1024]);
    static mut FAKE: Block = Block([0; 1024]);
    const FR: usize = 0x18 / 4;
    const BUSY: u32 = 1 << 3;
    let base = core::ptr::addr_of_mut!(FAKE) as usize;
    let fr = (base + FR * 4) as *mut u32;
    // SAFETY: FAKE is this case's own RAM, read by the driver only through volatile accesses.
    let uart = unsafe { Pl011::new(base) };
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(fr, BUSY) };
    let t0 = arch::now_ns();
    assert!(!uart.flush_within(5_000_000), "a UART that stays BUSY reported drained");
    let waited = arch::now_ns() - t0;
    assert!(waited >= 5_000_000, "gave up after {} ns, before its 5 ms bound", waited);
    assert!(waited < 1_000_000_000, "took {} ns for a 5 ms bound", waited);
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(fr, 0) };
    assert!(uart.flush_within(5_000_000), "an idle UART reported busy");
}

quiescent::tests!(concurrent_lines_from_all_cores, every_level_reaches_the_host, a_stuck_uart_does_not_hang_the_flush);
