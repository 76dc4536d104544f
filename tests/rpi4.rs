//! The Raspberry Pi 4 board's own signals and checks, on QEMU raspi4b: the ACT LED through the
//! GPIO registers, the armstub checks' verdicts, where ARM RAM ends and what stays mapped.
//! (Built for virt too, with no cases: the suite boots it on rpi4 only.)
#![no_std]
#![no_main]

#[cfg(feature = "board-rpi4")]
mod pi {
    extern crate alloc;

    use alloc::vec::Vec;
    use quiescent::arch;
    use quiescent::board::{self, checks, led, mailbox, ClockSource, RamSource};
    use quiescent::drivers::pl011::Pl011;
    use quiescent::smp::Ctx;

    /// The boot left GPIO 42 an output and the LED dark (after "console up"). Each progress code
    /// is its number of flashes and the failure flicker its cycles, read back from GPLEV1 after
    /// every change the code makes (QEMU models the BCM2711's GPIO block: what the image writes
    /// to GPSET1/GPCLR1 is what GPLEV1 says). A code, with its waits, takes the counter ticks
    /// CNTFRQ gives for its flashes and pause (microseconds in the QEMU build).
    pub fn act_led_codes_reach_gpio_42(_ctx: &mut Ctx) {
        // SAFETY: a read of GPFSEL4 (no side effects), mapped as Device memory.
        let fsel = || unsafe { core::ptr::read_volatile((board::GPIO_BASE + led::GPFSEL4) as *const u32) };
        assert_eq!((fsel() >> 6) & 0b111, 0b001, "GPFSEL4 {:#x}: GPIO 42 is not an output", fsel());
        assert!(!led::is_on(), "the LED is lit after the boot's last code (console up)");
        let flashes = |n: usize| (0..2 * n).map(|i| i % 2 == 0).collect::<Vec<bool>>();
        for code in [led::Code::ReachedRust, led::Code::MmuOn, led::Code::ConsoleUp] {
            let mut seen = Vec::new();
            led::show_with(code, || seen.push(led::is_on()));
            assert_eq!(seen, flashes(code as usize), "{:?}: GPLEV1 bit 10 after each change", code);
            let t0 = arch::counter();
            led::show(code);
            let took = arch::counter() - t0;
            assert!(
                took >= led::code_ticks(code),
                "{:?} took {} ticks, less than its {}",
                code,
                took,
                led::code_ticks(code)
            );
            assert!(!led::is_on(), "{:?} left the LED lit", code);
        }
        let mut seen = Vec::new();
        led::flicker_with(4, || seen.push(led::is_on()));
        assert_eq!(seen, flashes(4), "failure flicker: GPLEV1 bit 10 after each change");
        // The other pins of GPFSEL4 are left as they were.
        let before = fsel();
        led::show_with(led::Code::ReachedRust, || {});
        assert_eq!(fsel(), before, "GPFSEL4 changed beyond GPIO 42");
    }

    /// Each thing the default armstub guarantees, when missing, is named with the config.txt
    /// setting to blame; this boot (QEMU: entered at EL2, CNTFRQ set, GIC in group 1) has none.
    pub fn armstub_checks_name_the_config_setting(_ctx: &mut Ctx) {
        let good = checks::Found { entry_el: 2, cntfrq: 54_000_000, gic_group1: true };
        assert_eq!(checks::problems(&good).count(), 0, "a stock boot has problems");
        let one = |f: checks::Found| {
            let p: Vec<&str> = checks::problems(&f).collect();
            assert_eq!(p.len(), 1, "{:?}: {:?}", f, p);
            p[0]
        };
        let el3 = one(checks::Found { entry_el: 3, ..good });
        assert!(el3.contains("EL3") && el3.contains("kernel_old=1") && el3.contains("armstub="), "{}", el3);
        let el1 = one(checks::Found { entry_el: 1, ..good });
        assert!(el1.contains("EL1") && el1.contains("armstub="), "{}", el1);
        let frq = one(checks::Found { cntfrq: 0, ..good });
        assert!(frq.contains("CNTFRQ_EL0 is 0") && frq.contains("armstub="), "{}", frq);
        let gic = one(checks::Found { gic_group1: false, ..good });
        assert!(gic.contains("group 0") && gic.contains("enable_gic=0"), "{}", gic);
        let all: Vec<&str> = checks::problems(&checks::Found { entry_el: 3, cntfrq: 0, gic_group1: false }).collect();
        assert_eq!(all, [checks::AT_EL3, checks::NO_CNTFRQ, checks::GIC_GROUP0], "every finding, in boot order");
        // This boot, read again: the probe writes and restores a priority byte, so it can run
        // after the GIC driver's set-up.
        let live = checks::Found {
            entry_el: quiescent::entry_el(0),
            cntfrq: arch::counter_freq(),
            gic_group1: checks::gic_group1(),
        };
        assert_eq!(live, checks::Found { entry_el: 2, cntfrq: live.cntfrq, gic_group1: true }, "this boot");
        assert!(live.cntfrq != 0, "CNTFRQ_EL0 is 0 on QEMU");
    }

    /// ARM RAM ends where the DTB's `/memory` says (QEMU writes 0x3C00_0000 into any `-dtb`),
    /// or `mem=` lower, or at the firmware's default split without a DTB
    /// (`expect-ram-end=`/`expect-ram-source=` on the command line say which); the last page
    /// below the end is mapped, the first past it (the VideoCore's memory) is not.
    pub fn arm_ram_ends_where_the_firmware_says(_ctx: &mut Ctx) {
        let (end, source) = board::ram_end();
        match board::bootarg("expect-ram-end") {
            Some(want) => {
                assert_eq!(Some(end), board::parse_size(want), "end of ARM RAM ({})", source.describe());
                let src = board::bootarg("expect-ram-source").unwrap_or("");
                let want_src = match src {
                    "memory" => RamSource::MemoryNode,
                    "mem" => RamSource::MemOption,
                    _ => panic!("expect-ram-source={} (memory or mem)", src),
                };
                assert_eq!(source, want_src, "what said where RAM ends");
            }
            None => assert_eq!((end, source), (board::DEFAULT_RAM_END, RamSource::DefaultSplit), "without a DTB"),
        }
        assert!(
            arch::mmu::probe(end - 4096, true).is_ok(),
            "the last page of ARM RAM ({:#x}) is not mapped",
            end - 4096
        );
        if end < board::BOOT_RAM_END {
            assert!(arch::mmu::probe(end, false).is_err(), "{:#x}, past the end of ARM RAM, is still mapped", end);
            assert!(
                arch::mmu::probe(board::BOOT_RAM_END - 4096, false).is_err(),
                "the top of the first GiB (VideoCore memory) is still mapped"
            );
        }
        for (s, v) in
            [("64M", Some(64 << 20)), ("0x3b400000", Some(0x3b40_0000)), ("1G", Some(1 << 30)), ("12k", Some(12 << 10))]
        {
            assert_eq!(board::parse_size(s), v, "mem={}", s);
        }
        for bad in ["", "M", "0x", "64X", "-1"] {
            assert_eq!(board::parse_size(bad), None, "mem={} is not a size", bad);
        }
    }

    /// The console's divisor comes from the UART clock the firmware reports over the mailbox
    /// (QEMU answers 3 MHz; a Pi 4 with config.txt's init_uart_clock 48 MHz): the answer is
    /// asked again and must be what the boot used, and UART0's IBRD/FBRD hold the divisor for
    /// it. Without an answer (or a zero rate) the clock is 48 MHz.
    pub fn uart_divisor_follows_the_firmwares_clock(_ctx: &mut Ctx) {
        let answer = mailbox::clock_rate(mailbox::CLOCK_UART);
        assert!(answer.is_some(), "the firmware did not answer GET_CLOCK_RATE for the UART");
        let (hz, source) = board::uart_clock();
        assert_eq!((Some(hz), source), (answer, ClockSource::Firmware), "the UART clock the boot used");
        let (want_i, want_f) = Pl011::divisor(hz, board::UART_BAUD);
        // SAFETY: reads of UART0's IBRD and FBRD (no side effects), mapped as Device memory.
        let (ibrd, fbrd) = unsafe {
            (
                core::ptr::read_volatile((board::UART_BASE + 0x24) as *const u32),
                core::ptr::read_volatile((board::UART_BASE + 0x28) as *const u32),
            )
        };
        assert_eq!((ibrd, fbrd), (want_i, want_f), "UART0 divisor for {} Hz at {} baud", hz, board::UART_BAUD);
        assert_eq!(Pl011::divisor(48_000_000, 115_200), (26, 3), "48 MHz at 115200 baud");
        assert_eq!(board::choose_uart_clock(None), (48_000_000, ClockSource::Fallback), "no answer");
        assert_eq!(board::choose_uart_clock(Some(0)), (48_000_000, ClockSource::Fallback), "a zero rate");
        assert_eq!(board::choose_uart_clock(Some(3_000_000)), (3_000_000, ClockSource::Firmware));
    }
}

#[cfg(feature = "board-rpi4")]
use pi::*;

#[cfg(feature = "board-rpi4")]
quiescent::tests!(
    act_led_codes_reach_gpio_42,
    armstub_checks_name_the_config_setting,
    arm_ram_ends_where_the_firmware_says,
    uart_divisor_follows_the_firmwares_clock,
);

#[cfg(not(feature = "board-rpi4"))]
quiescent::tests!();
