//! Raspberry Pi 4 Model B (BCM2711, 4 × Cortex-A72) and QEMU's `raspi4b` model of it.
//!
//! The GPU firmware (or QEMU's loader) puts `kernel8.img` at 0x80000 and starts core 0 there at
//! EL2, with the DTB address in x0 when there is one (the firmware always passes one; QEMU only
//! with `-dtb`). Cores 1..3 wait in the firmware's stub, each reading its release address from
//! the spin table at 0xd8 + 8 × core; nothing here needs the DTB except the kernel command line.
//!
//! ```text
//!  0x0000_0000 +------------------------+ Normal (RAM)
//!              | firmware stub, spin    |  0xd8/0xe0/0xe8/0xf0: release addresses
//!              | table (page 0)         |
//!  0x0008_0000 | kernel8.img            |  __kernel_base (board.ld)
//!              | ... image, BSS, stacks |
//!  0x0800_0000 | (QEMU's DTB with -dtb) |  __board_image_limit: /memory must reach past it
//!              | ...                    |
//!              | (the firmware's DTB,   |
//!              |  near the top of RAM)  |
//!  0x3B40_0000 +------------------------+ end of ARM RAM: the DTB's /memory (the firmware's figure;
//!              :                        :  without a DTB its default split, gpu_mem=76); QEMU says
//!  0x3C00_0000 :                        :  0x3C00_0000. Mapped at boot up to 1 GiB, unmapped from
//!              : VideoCore memory       :  the end of ARM RAM once the DTB is read
//!  0x4000_0000 +------------------------+ (RAM above 1 GiB is not used)
//!              :                        :
//!  0xFC00_0000 +------------------------+ Device: low-peripheral mode
//!              | 0xFE00_B880 mailboxes  |
//!              | 0xFE20_0000 GPIO       |  GPIO 42: the ACT LED (led.rs)
//!              | 0xFE20_1000 PL011 UART0|
//!              | 0xFF80_0000 ARM local  |
//!              | 0xFF84_1000 GICD       |
//!              | 0xFF84_2000 GICC       |
//!  0x1_0000_0000 +----------------------+
//! ```
//!
//! Sources: BCM2711 ARM Peripherals (Raspberry Pi Ltd, `bcm2711-peripherals.pdf`) 1.2 (address
//! map, low-peripheral mode), 5.2/5.3 (GPIO registers, alternate functions: GPIO14/15 ALT0 =
//! TXD0/RXD0), 6.3 (GIC-400), 11 (PL011 UARTs); QEMU `hw/arm/bcm2838.c` (GIC at ctrl_base
//! 0xff800000 + 0x40000 + 0x1000/0x2000, virtual timer on PPI 11 = ID 27, MPIDR Aff0 = core),
//! `hw/arm/raspi.c` / `raspi4b.c` (`write_smpboot64`: the spin table, kernel at 0x80000);
//! the firmware's `armstub8.S` (raspberrypi/tools: spin table, CNTFRQ 54 MHz, GIC groups).

pub mod checks;
pub mod led;
pub mod mailbox;

use super::{BootInfo, GicConfig, MemKind, Region, Stage, EXIT_BOOT_CHECK};
use crate::drivers::pl011::Pl011;
use core::ptr::{read_volatile, write_volatile};

/// The memory map the MMU starts with: the whole first GiB as Normal memory (where ARM RAM
/// ends in it is known only from the DTB, which lies inside it; [`discover`] unmaps the
/// VideoCore's part), and the low-peripheral window (main peripherals, ARM local peripherals,
/// GIC-400) as Device.
pub const MEMORY_MAP: &[Region] = &[
    Region { start: 0, size: BOOT_RAM_END, kind: MemKind::Normal },
    Region { start: 0xFC00_0000, size: 0x0400_0000, kind: MemKind::Device },
];

/// End of the RAM mapped at boot: the first GiB, the most ARM RAM below the VideoCore's share
/// can be (RAM above 1 GiB is not used).
pub const BOOT_RAM_END: usize = 0x4000_0000;
/// Where ARM RAM ends with the firmware's default split (`gpu_mem=76`: 1 GiB minus 76 MiB),
/// for a boot without a DTB (QEMU without `-dtb`; on the board the firmware always passes one).
pub const DEFAULT_RAM_END: usize = 0x3B40_0000;

/// Main peripherals (low-peripheral mode; legacy bus address 0x7E00_0000).
pub const PERIPHERAL_BASE: usize = 0xFE00_0000;
/// GPIO controller.
pub const GPIO_BASE: usize = PERIPHERAL_BASE + 0x20_0000;
/// PL011 UART0 (GPIO14 TXD0 / GPIO15 RXD0 in ALT0).
pub const UART_BASE: usize = PERIPHERAL_BASE + 0x20_1000;
/// ARM local peripherals (local timer prescaler, mailboxes; the firmware sets them up).
pub const LOCAL_PERIPHERALS_BASE: usize = 0xFF80_0000;
/// GIC-400 distributor.
pub const GICD_BASE: usize = 0xFF84_1000;
/// GIC-400 CPU interface.
pub const GICC_BASE: usize = 0xFF84_2000;

/// The PL011's reference clock if the firmware does not answer the mailbox: 48 MHz, the
/// firmware's default `init_uart_clock` on the Pi 4 (config.txt pins it). Build with
/// `QUIESCENT_UART_CLOCK_HZ=<hz>` if config.txt sets another `init_uart_clock`.
pub const UART_CLOCK_HZ: u32 = match option_env!("QUIESCENT_UART_CLOCK_HZ") {
    Some(s) => parse_u32(s),
    None => 48_000_000,
};
/// Console speed (8N1).
pub const UART_BAUD: u32 = 115_200;
/// The board's name in reports.
pub const NAME: &str = "rpi4";

/// Cores of the BCM2711: one cluster, MPIDR Aff0 = 0..3, core 0 boots.
pub const NCPUS: usize = 4;
/// Release address of core `n` in the firmware's spin table: `SPIN_TABLE + 8 * n`.
pub const SPIN_TABLE: usize = 0xd8;

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v: u32 = 0;
    assert!(!b.is_empty(), "QUIESCENT_UART_CLOCK_HZ is empty");
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "QUIESCENT_UART_CLOCK_HZ must be a decimal number of Hz");
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

// SAFETY: UART0 of the BCM2711 lives at this address; the console is its only user.
static UART: Pl011 = unsafe { Pl011::new(UART_BASE) };

// GPIO registers (BCM2711 ARM Peripherals 5.2).
/// Function select for GPIO10..19 (three bits per pin).
pub const GPFSEL1: usize = 0x04;
/// Function select for GPIO30..39.
pub const GPFSEL3: usize = 0x0c;
const GPIO_PUP_PDN_CNTRL_REG0: usize = 0xe4;
const FSEL_ALT0: u32 = 0b100;
const PULL_NONE: u32 = 0b00;
const PULL_UP: u32 = 0b01;

fn gpio_rmw(off: usize, mask: u32, val: u32) {
    let p = (GPIO_BASE + off) as *mut u32;
    // SAFETY: a GPIO register of the BCM2711, mapped as Device memory; only core 0 touches the
    // GPIO block, once, before the console is used.
    unsafe { write_volatile(p, (read_volatile(p) & !mask) | val) };
}

/// GPIO14 = TXD0 and GPIO15 = RXD0 (ALT0), GPIO30..33 (UART0's Bluetooth pins) inputs; TX without pull, RX pulled up (the line idles
/// high, so a disconnected adapter reads as idle rather than noise).
pub fn uart_pins() {
    // GPFSEL1: three bits per pin, GPIO10 at bit 0: GPIO14 at 12, GPIO15 at 15.
    gpio_rmw(GPFSEL1, (0b111 << 12) | (0b111 << 15), (FSEL_ALT0 << 12) | (FSEL_ALT0 << 15));
    // GPIO30..33 are UART0's CTS/RTS/TXD/RXD in ALT3, its Bluetooth wiring: set them to inputs,
    // so that UART0 is on GPIO14/15 alone even when the firmware routed it to Bluetooth (no
    // disable-bt overlay: its RXD would otherwise be selected on two pins at once).
    gpio_rmw(GPFSEL3, 0o7777, 0);
    // GPIO_PUP_PDN_CNTRL_REG0 (BCM2711 only; replaces GPPUD/GPPUDCLK): two bits per pin.
    gpio_rmw(GPIO_PUP_PDN_CNTRL_REG0, (0b11 << 28) | (0b11 << 30), (PULL_NONE << 28) | (PULL_UP << 30));
}

/// How long the console's set-up waits for the firmware's last bytes to leave UART0: a full
/// 32-byte FIFO drains in 3 ms at 115200 baud.
pub const PRE_CONSOLE_FLUSH_NS: u64 = 50_000_000;

/// Where the UART clock's rate came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ClockSource {
    /// The firmware's answer over the mailbox.
    Firmware,
    /// No answer (or a zero rate): [`UART_CLOCK_HZ`].
    Fallback,
}

static UART_CLOCK: spin::Once<(u32, ClockSource)> = spin::Once::new();

/// The rate the console's divisor was computed from, and where it came from.
pub fn uart_clock() -> (u32, ClockSource) {
    UART_CLOCK.get().copied().unwrap_or((UART_CLOCK_HZ, ClockSource::Fallback))
}

/// The UART clock from the firmware's answer, or [`UART_CLOCK_HZ`] without one.
pub fn choose_uart_clock(answer: Option<u32>) -> (u32, ClockSource) {
    match answer {
        Some(hz) if hz > 0 => (hz, ClockSource::Firmware),
        _ => (UART_CLOCK_HZ, ClockSource::Fallback),
    }
}

/// Brings up the console: pins, then 8N1 at 115200 from the UART clock the firmware reports
/// (mailbox.rs), 48 MHz if it does not.
pub fn init_console() {
    // The firmware (enable_uart=1) may still be sending its last bytes: let them out before the
    // UART is disabled for reprogramming. Bounded: with its clock stopped, UART0 stays BUSY for
    // ever, and an unbounded wait would look exactly like a board whose firmware never loaded
    // the image.
    let drained = UART.flush_within(PRE_CONSOLE_FLUSH_NS);
    let (hz, source) = *UART_CLOCK.call_once(|| choose_uart_clock(mailbox::clock_rate(mailbox::CLOCK_UART)));
    uart_pins();
    UART.init(hz, UART_BAUD);
    crate::console::set_uart(&UART);
    match source {
        ClockSource::Firmware => defmt::info!("UART0 clock {} Hz (the firmware's answer)", hz),
        ClockSource::Fallback => defmt::warn!(
            "the firmware did not report the UART clock within {} ms; assumed {} Hz (init_uart_clock in config.txt)",
            mailbox::TIMEOUT_NS / 1_000_000,
            hz
        ),
    }
    if !drained {
        defmt::warn!(
            "UART0 was still busy {} ms after entry; reprogrammed it anyway (the firmware's last bytes may be lost)",
            PRE_CONSOLE_FLUSH_NS / 1_000_000
        );
    }
}

/// Why a core could not be started. The spin table has no error reporting of its own; the
/// board reports the conditions PSCI names, with PSCI's names, so callers have one vocabulary:
/// `AlreadyOn` (the core is the caller or was already released) and `InvalidParameters` (no
/// such core on this board).
pub type StartError = smccc::psci::Error;

/// Cores (by logical number) that [`start_cpu`] leaves in the spin table: the `hold-core=N[,M]`
/// kernel command-line option, for testing the report of a core that never comes up.
fn held(cpu: usize) -> bool {
    super::bootarg("hold-core").is_some_and(|v| v.split(',').any(|c| c.trim().parse::<usize>().ok() == Some(cpu)))
}

/// Shows how far the boot got on the ACT LED (led.rs); called with the MMU still off for
/// [`Stage::ReachedRust`].
pub fn boot_stage(stage: Stage) {
    led::show(match stage {
        Stage::ReachedRust => led::Code::ReachedRust,
        Stage::MmuOn => led::Code::MmuOn,
        Stage::ConsoleUp => led::Code::ConsoleUp,
    });
}

/// What said where ARM RAM ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RamSource {
    /// The DTB's `/memory` (the firmware writes the real split there; QEMU its own figure).
    MemoryNode,
    /// No DTB, or no `/memory` bank at 0 in it: the firmware's default split.
    DefaultSplit,
    /// `mem=` on the command line, below what `/memory` says.
    MemOption,
}

impl RamSource {
    /// In words, for the boot report.
    pub fn describe(self) -> &'static str {
        match self {
            RamSource::MemoryNode => "the DTB's /memory",
            RamSource::DefaultSplit => "no /memory: the firmware's default split, gpu_mem=76",
            RamSource::MemOption => "mem= on the command line",
        }
    }
}

impl defmt::Format for RamSource {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "{=str}", self.describe())
    }
}

/// Where ARM RAM ends for this run, and what said so.
static RAM_END: spin::Once<(usize, RamSource)> = spin::Once::new();

/// Where ARM RAM ends (what the image may use lies below; the MMU maps nothing of the first GiB
/// past it, except a DTB that `mem=` cut off), and what said so. [`DEFAULT_RAM_END`] before [`discover`].
pub fn ram_end() -> (usize, RamSource) {
    RAM_END.get().copied().unwrap_or((DEFAULT_RAM_END, RamSource::DefaultSplit))
}

/// The end of the bank at address 0 in the DTB's `/memory`, clipped to the first GiB.
fn memory_node_end(fdt: &fdt::Fdt) -> Option<usize> {
    let bank = fdt.find_node("/memory")?.reg()?.find(|r| r.starting_address as usize == 0)?;
    Some(bank.size?.min(BOOT_RAM_END))
}

/// A size as Linux's `memparse` reads it: decimal or `0x` hex, with an optional K, M or G.
pub fn parse_size(s: &str) -> Option<usize> {
    let (num, shift) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 10),
        b'm' | b'M' => (&s[..s.len() - 1], 20),
        b'g' | b'G' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let v = match num.strip_prefix("0x").or_else(|| num.strip_prefix("0X")) {
        Some(hex) => usize::from_str_radix(hex, 16).ok()?,
        None => num.parse::<usize>().ok()?,
    };
    v.checked_mul(1 << shift)
}

/// Where ARM RAM ends: `/memory`'s bank at 0 if there is a DTB with one, else the default
/// split; `mem=SIZE` on the command line (Linux's option) lowers it.
fn find_ram_end(fdt: Option<&fdt::Fdt>) -> (usize, RamSource) {
    let (mut end, mut source) = match fdt.and_then(memory_node_end) {
        Some(end) => (end, RamSource::MemoryNode),
        None => (DEFAULT_RAM_END, RamSource::DefaultSplit),
    };
    if let Some(mem) = super::bootarg("mem") {
        match parse_size(mem) {
            Some(m) if m < end => (end, source) = (m, RamSource::MemOption),
            Some(_) => {}
            None => defmt::warn!("mem={=str}: not a size (decimal or 0x hex, K/M/G); ignored", mem),
        }
    }
    (end, source)
}

/// Ends a run whose boot check failed (the finding is on the UART already; the LED flickers on
/// the board).
fn fail_boot(what: &str) -> ! {
    defmt::error!("boot check failed ({=str}): exit code {}", what, EXIT_BOOT_CHECK);
    crate::console::flush();
    exit(EXIT_BOOT_CHECK)
}

/// The four cores (fixed: the BCM2711 has no others), the command line from the DTB in x0 if
/// the firmware passed one (`cmdline.txt` on the Pi, `-append` with `-dtb` on QEMU), and where
/// ARM RAM ends (the DTB's `/memory`). Checks what the firmware's armstub guarantees (checks.rs)
/// and that RAM reaches the image limit; a failure is named on the UART and ends the run with
/// [`EXIT_BOOT_CHECK`]. Core 0, at boot, before any other core starts.
pub(crate) fn discover(dtb: usize, entry_el: usize) -> BootInfo {
    let me = crate::arch::mpidr();
    if me & 0xff != 0 {
        defmt::warn!("booted on MPIDR {=u64:#x}, not core 0", me);
    }
    // Logical core n is Aff0 = n: src/arch/boot/entry.S's spin_table_entry derives x0 the same way.
    let mpidr = (0..NCPUS).map(|n| (me & !0xff) | n as u64).collect();
    let gic = GicConfig::V2 { gicd: GICD_BASE, gicc: GICC_BASE };
    let mut info = BootInfo { mpidr, listed: NCPUS, gic, bootargs: "" };
    // QEMU's loader leaves x0 = 0x100 (its old ATAGS address) when it has no DTB to pass: only
    // a blob with the FDT magic is a device tree. Without one there is no command line, which is
    // fine: nothing else comes from it.
    let magic = if dtb != 0 && dtb.is_multiple_of(4) && dtb + 4 <= BOOT_RAM_END {
        // SAFETY: any address below the end of the first RAM region is mapped Normal; 4-byte read.
        u32::from_be(unsafe { read_volatile(dtb as *const u32) })
    } else {
        0
    };
    let fdt = if magic != 0xd00d_feed {
        defmt::debug!("x0 = {=usize:#x}: no device tree, no command line", dtb);
        None
    } else {
        // SAFETY: the firmware (or QEMU's loader) placed a DTB at this address and nothing
        // overwrites it: it lies above the image's end (QEMU) or near the top of RAM (firmware),
        // below the end of RAM that it names, which stays mapped.
        match unsafe { fdt::Fdt::from_ptr(dtb as *const u8) } {
            Ok(fdt) => Some(fdt),
            Err(e) => {
                defmt::warn!(
                    "x0 = {=usize:#x} is not a device tree ({}); no command line",
                    dtb,
                    defmt::Debug2Format(&e)
                );
                None
            }
        }
    };
    if let Some(args) = fdt.as_ref().and_then(|f| f.chosen().bootargs()) {
        let args: &'static str =
            // SAFETY: 'static is sound because the DTB stays in place for the whole run (see above).
            unsafe { core::mem::transmute::<&str, &'static str>(args) };
        info.bootargs = args;
        super::set_bootargs(args);
    }

    let found = checks::Found { entry_el, cntfrq: crate::arch::counter_freq(), gic_group1: checks::gic_group1() };
    let mut failed = None;
    for p in checks::problems(&found) {
        defmt::error!("{=str}", p);
        failed = Some(());
    }
    if failed.is_some() {
        fail_boot("what the firmware's armstub guarantees");
    }

    let (end, source) = find_ram_end(fdt.as_ref());
    unsafe extern "C" {
        static __board_image_limit: u8;
    }
    let limit = core::ptr::addr_of!(__board_image_limit) as usize;
    defmt::info!(
        "ARM RAM ends at {=usize:#x} ({}); the image and its per-core memory end at {=usize:#x}",
        end,
        source,
        limit
    );
    if end < limit {
        defmt::error!(
            "RAM ends at {=usize:#x} ({}), below the image limit {=usize:#x}: the other cores' stacks and per-cpu areas would lie in the VideoCore's memory (gpu_mem too large in config.txt?)",
            end,
            source,
            limit
        );
        fail_boot("the end of RAM");
    }
    RAM_END.call_once(|| (end, source));
    // The command line stays in the DTB for the whole run: a `mem=` below the firmware's DTB
    // (placed near the top of RAM) must not unmap it.
    let keep = fdt.as_ref().map_or(0, |f| dtb + f.total_size()).max(end).min(BOOT_RAM_END);
    // SAFETY: core 0 at boot, no other core started; nothing of this run lies past `keep` (the
    // image ends below `limit`, the DTB below `keep`).
    unsafe { crate::arch::mmu::unmap_range(keep.next_multiple_of(4096), BOOT_RAM_END) };
    info
}

/// Address of spin-table slot `cpu`.
fn slot(cpu: usize) -> *mut u64 {
    (SPIN_TABLE + 8 * cpu) as *mut u64
}

/// Releases core `cpu` (MPIDR `mpidr`) from the firmware's spin table.
///
/// The parked core polls its slot with its MMU and caches off, so the entry address is written,
/// then cleaned and invalidated to the point of coherency (`dc civac`: `dc ivac` would discard
/// the write), a `dsb sy` completes that before the `sev` wakes the core from its `wfe`.
///
/// The stub enters with x0 = 0, not the core number, so the core is sent to
/// `spin_table_entry` (src/arch/boot/entry.S), which takes x0 from MPIDR_EL1.Aff0 and continues at
/// `entry` (`secondary_entry`, the only entry point the generic code uses).
///
/// # Safety
/// `entry` is code a core may start at with `x0 = cpu` and nothing else set up
/// ([`secondary_entry_addr`](crate::arch::secondary_entry_addr), for a core `cpu` the runtime
/// gave a stack slot and a per-cpu area), or the call must fail (a core already on, or one that
/// does not exist).
pub unsafe fn start_cpu(cpu: usize, mpidr: u64, entry: usize) -> Result<(), StartError> {
    let me = crate::arch::mpidr();
    if cpu >= NCPUS || mpidr != (me & !0xff) | cpu as u64 {
        return Err(StartError::InvalidParameters);
    }
    if mpidr == me {
        return Err(StartError::AlreadyOn);
    }
    debug_assert_eq!(entry, crate::arch::secondary_entry_addr(), "spin-table cores continue at secondary_entry");
    // SAFETY: page 0 is mapped Normal RW (MEMORY_MAP); the slot is the firmware's, read only by
    // the parked core.
    if unsafe { read_volatile(slot(cpu)) } != 0 {
        return Err(StartError::AlreadyOn);
    }
    if held(cpu) {
        defmt::warn!("core {} left in the spin table (hold-core={})", cpu, cpu);
        return Ok(());
    }
    unsafe extern "C" {
        fn spin_table_entry();
    }
    let target = spin_table_entry as *const () as usize;
    let p = slot(cpu);
    // SAFETY: as above.
    unsafe { write_volatile(p, target as u64) };
    // The parked core reads the slot with its MMU and caches off: clean the line to the point
    // of coherency (not just invalidate, which would drop the write), complete it with a DSB,
    // then wake the core. Pairs with the firmware stub's `wfe` + load of its slot.
    crate::arch::clean_dcache_line_poc(p as usize);
    crate::arch::sev();
    Ok(())
}

/// Whether this build ends a run through semihosting (QEMU) or parks (a real Pi, where `hlt`
/// without a debugger is an undefined instruction). `make image` builds with
/// `QUIESCENT_NO_SEMIHOSTING=1`.
pub const SEMIHOSTING: bool = option_env!("QUIESCENT_NO_SEMIHOSTING").is_none();

/// Ends the run with `code` (the console is flushed by the caller): QEMU exits with it through
/// semihosting; on the board, where nobody can take the code, it is printed and the core parks
/// (power-cycle to run again), flickering the ACT LED if the code says the run failed. Meant to be called by `smp::exit` once the other cores parked.
pub fn exit(code: i32) -> ! {
    if SEMIHOSTING {
        use qemu_exit::QEMUExit;
        qemu_exit::AArch64::new().exit(code as u32)
    }
    if code != 0 {
        defmt::println!("quiescent: finished with exit code {}; the ACT LED flickers (power-cycle to run again)", code);
        crate::console::flush();
        led::flicker_forever()
    }
    defmt::println!("quiescent: finished with exit code {}; parking (power-cycle to run again)", code);
    crate::console::flush();
    loop {
        crate::arch::wfe();
    }
}
