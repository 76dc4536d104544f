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

/// A value whose `defmt::Format` logs a line of its own (through the platform's `println!`,
/// as a primitive's diagnostics would): the console drops the inner frame instead of taking
/// itself over, so the outer line arrives whole, the lock is free afterwards (every core logs
/// again) and interrupts come back unmasked.
struct Chatty;

impl defmt::Format for Chatty {
    fn format(&self, f: defmt::Formatter<'_>) {
        quiescent_platform::println!("console-nested inner (dropped)");
        defmt::write!(f, "chatty");
    }
}

fn a_format_impl_that_logs_does_not_break_the_console(ctx: &mut Ctx) {
    assert!(!arch::irqs_disabled(), "interrupts masked before the test");
    defmt::println!("console-nested outer {} end", Chatty);
    assert!(!arch::irqs_disabled(), "the nested frame left interrupts masked");
    test::on_all_cores(ctx, |cpu, _| defmt::println!("console-nested after, core {}", cpu));
}

/// A PL011 whose BUSY flag never clears (a UART with its clock stopped): the bounded flush the
/// boards use before the console exists gives up after its bound instead of hanging, and
/// returns at once when the UART is idle. The "UART" is a register block in RAM.
fn a_stuck_uart_does_not_hang_the_flush(_ctx: &mut Ctx) {
    static mut FAKE: [u32; 1024] = [0; 1024];
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

/// rpi4: UART0 reaches the header's pins 8/10 alone: GPIO14/15 in ALT0 (TXD0/RXD0), and its
/// Bluetooth pins GPIO30..33 not in ALT3, even when the firmware routed UART0 to Bluetooth
/// there (as it does without the disable-bt overlay; QEMU leaves them inputs, so this case puts
/// them in ALT3 first and routes the pins again as the console's set-up does).
#[cfg(feature = "board-rpi4")]
fn uart0_owns_gpio14_and_15_alone(_ctx: &mut Ctx) {
    use quiescent::board::{uart_pins, GPFSEL1, GPFSEL3, GPIO_BASE};
    let alt3_30_to_33 = (0..4).fold(0u32, |v, i| v | (0b111 << (3 * i)));
    // SAFETY: GPIO registers of the BCM2711, mapped as Device memory; GPIO30..33 are not used
    // (no Bluetooth), and this case is alone on the GPIO block.
    unsafe {
        let p = (GPIO_BASE + GPFSEL3) as *mut u32;
        core::ptr::write_volatile(p, (core::ptr::read_volatile(p) & !0o7777) | alt3_30_to_33);
    }
    uart_pins();
    // SAFETY: as above; reading has no effect.
    let (fsel1, fsel3) = unsafe {
        (
            core::ptr::read_volatile((GPIO_BASE + GPFSEL1) as *const u32),
            core::ptr::read_volatile((GPIO_BASE + GPFSEL3) as *const u32),
        )
    };
    let alt0 = 0b100;
    assert_eq!((fsel1 >> 12) & 7, alt0, "GPIO14 not TXD0 (GPFSEL1 {:#x})", fsel1);
    assert_eq!((fsel1 >> 15) & 7, alt0, "GPIO15 not RXD0 (GPFSEL1 {:#x})", fsel1);
    for pin in 30..34 {
        let f = (fsel3 >> (3 * (pin - 30))) & 7;
        assert_eq!(f, 0, "GPIO{} has function {:#b}, not input (GPFSEL3 {:#x})", pin, f, fsel3);
    }
}

#[cfg(feature = "board-rpi4")]
quiescent::tests!(
    concurrent_lines_from_all_cores,
    every_level_reaches_the_host,
    a_stuck_uart_does_not_hang_the_flush,
    a_format_impl_that_logs_does_not_break_the_console,
    uart0_owns_gpio14_and_15_alone
);
#[cfg(not(feature = "board-rpi4"))]
quiescent::tests!(
    concurrent_lines_from_all_cores,
    every_level_reaches_the_host,
    a_stuck_uart_does_not_hang_the_flush,
    a_format_impl_that_logs_does_not_break_the_console
);
