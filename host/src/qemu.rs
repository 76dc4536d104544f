//! Booting one image on QEMU: the machine's arguments, the timeout (and the kill), the exit code,
//! and following the image's markers while its lines are shown.

use crate::board::Board;
use crate::decode::{read_table, Lines};
use crate::dtb::minimal_dtb;
use crate::protocol::{classify, cores_of, Line};
use crate::toolchain::raw_image;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The emulator every board runs on.
pub const QEMU: &str = "qemu-system-aarch64";

/// The exit code of a run the runner killed at its timeout (as coreutils' `timeout`).
pub const EXIT_TIMEOUT: i32 = 124;

/// Which interrupt controller QEMU virt gets (`-machine virt,gic-version=N`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Gic {
    /// GICv2 up to 8 cores (QEMU's default), GICv3 beyond.
    #[default]
    Auto,
    /// GICv2: at most 8 cores (its CPU interfaces are an 8-bit mask).
    V2,
    /// GICv3: up to 512 cores (QEMU virt's limit, and the firmware's MAX_CPUS).
    V3,
}

/// GICv2's reach.
pub const GICV2_MAX_CORES: u32 = 8;
/// Past this many cores QEMU runs every vCPU in one host thread, round-robin (`-accel
/// tcg,thread=single`): with hundreds of multi-threaded vCPUs on a 2-core host, the vCPU threads
/// starved each other (bring-up at 256 did not finish in minutes while idle cores still took
/// the tick; with no tick while idle, 256 takes about 6 s multi-threaded but 512 had not finished
/// after 200 s); single-threaded 256 take about 5 s and 512 20-35 s, since idle cores sit in WFI
/// with their tick stopped and cost nothing (while they still took it, 512 idle cores' ticks
/// outran the one host thread: see `smp::tick`). Below it, multi-threaded TCG keeps real
/// parallelism between the vCPUs (work spread over every core, as the 64-core runs do, is many
/// times slower round-robin).
pub const SINGLE_THREAD_ABOVE: u32 = 128;
/// QEMU virt's maximum with GICv3, which is also the firmware's MAX_CPUS.
pub const VIRT_MAX_CORES: u32 = 512;

impl Gic {
    /// The version a run on `smp` cores gets, or why that cannot be.
    pub fn version_for(self, smp: u32) -> Result<u32, String> {
        if smp > VIRT_MAX_CORES {
            return Err(format!(
                "{smp} cores: QEMU virt (with GICv3) and the firmware (MAX_CPUS) stop at {VIRT_MAX_CORES}"
            ));
        }
        match self {
            Gic::V2 if smp > GICV2_MAX_CORES => Err(format!(
                "{smp} cores with GICv2: a GICv2 reaches at most {GICV2_MAX_CORES} cores (QEMU refuses more). \
                 Select GICv3 with --gic 3 (make run SMP={smp} GIC=3), or leave the GIC out: more than \
                 {GICV2_MAX_CORES} cores select GICv3 by themselves"
            )),
            Gic::V2 => Ok(2),
            Gic::V3 => Ok(3),
            Gic::Auto => Ok(if smp > GICV2_MAX_CORES { 3 } else { 2 }),
        }
    }
}

impl std::str::FromStr for Gic {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "2" => Ok(Gic::V2),
            "3" => Ok(Gic::V3),
            "auto" => Ok(Gic::Auto),
            _ => Err(format!("unknown GIC version '{s}'")),
        }
    }
}

/// How to boot one image.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The board, hence QEMU's machine.
    pub board: Board,
    /// Number of cores (virt only: the Pi 4 always has 4).
    pub smp: u32,
    /// Enter at EL2 (`virtualization=on`), so the boot code's EL2 -> EL1 drop runs.
    pub el2: bool,
    /// rpi4: enter at EL1, as after a stub that already dropped there (`armstub=`): the cores
    /// get no EL2 and no EL3 (`has_el2=off`, `has_el3=off`), so QEMU starts the image at EL1.
    pub el1: bool,
    /// The interrupt controller (virt only: the Pi 4 has its GIC-400).
    pub gic: Gic,
    /// Seconds before the image is killed and counted as a failure.
    pub timeout_secs: u64,
    /// Kernel command line, placed in the DTB's /chosen/bootargs.
    pub append: String,
    /// `-icount shift=0`: one instruction = 1 ns of virtual time, deterministic counts.
    pub icount: bool,
    /// Wait for GDB on tcp::1234 (`-s -S`) and never time out.
    pub gdb: bool,
    /// `-accel tcg,one-insn-per-tb=on`: interrupts can land between any two instructions (TCG
    /// otherwise takes them only at translation-block boundaries). Slower.
    pub precise_irq: bool,
    /// Also print the `@` marker lines.
    pub verbose: bool,
    /// Boot this raw image instead of the one made from the ELF (which still decodes the
    /// output): the SD card's own `kernel8.img`.
    pub kernel: Option<PathBuf>,
    /// rpi4: pass this device tree with `-dtb` (the card's real one) instead of the minimal one.
    pub dtb: Option<PathBuf>,
    /// End the run (kill QEMU, exit code 0) once a shown line contains this: for an image that
    /// parks instead of exiting through semihosting, as the board's own build does.
    pub until: Option<String>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            board: Board::Virt,
            smp: 4,
            el2: false,
            el1: false,
            gic: Gic::Auto,
            timeout_secs: 120,
            append: String::new(),
            icount: false,
            gdb: false,
            precise_irq: false,
            verbose: false,
            kernel: None,
            dtb: None,
            until: None,
        }
    }
}

/// What one boot produced.
#[derive(Debug, Default)]
pub struct RunResult {
    /// QEMU's exit status (the code the image passed to semihosting `SYS_EXIT`), 124 on timeout.
    pub exit_code: i32,
    /// `test ... ok` lines seen.
    pub passed: u32,
    /// `test ... FAILED` lines seen, plus one for a timeout or an unexplained non-zero exit.
    pub failed: u32,
    /// The image's own `@summary` (passed, failed), if it got that far.
    pub summary: Option<(u32, u32)>,
    /// Every shown line, for expected-failure checks.
    pub text: String,
    /// Names and reasons of failed cases.
    pub failures: Vec<String>,
}

/// Fails with a one-line message unless QEMU is on PATH.
pub fn check_installed() -> Result<(), String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|dir| dir.join(QEMU).is_file()) {
        Ok(())
    } else {
        Err(format!("{QEMU} not found on PATH (scripts/setup.sh installs it)"))
    }
}

/// The QEMU command line for a board.
pub fn qemu_command(cfg: &RunConfig, img: &Path) -> Result<Command, String> {
    let mut c = Command::new(QEMU);
    match cfg.board {
        Board::Virt => {
            let gic = cfg.gic.version_for(cfg.smp)?;
            // ACPI off past 8 cores: the firmware reads the DTB only, and QEMU warns about its
            // ACPI tables' size at hundreds of cores.
            let machine = format!(
                "virt,gic-version={gic}{}{}",
                if cfg.smp > GICV2_MAX_CORES { ",acpi=off" } else { "" },
                if cfg.el2 { ",virtualization=on" } else { "" }
            );
            c.args(["-machine", &machine, "-cpu", "cortex-a72", "-m", "1G"]);
            c.args(["-smp", &cfg.smp.to_string()]);
            if !cfg.append.is_empty() {
                c.args(["-append", &cfg.append]);
            }
        }
        Board::Rpi4 => {
            // The Pi 4 has 4 cores (QEMU refuses any other -smp) and enters at EL2 by itself
            // (QEMU boots a raw arm64 Image on raspi4b at EL2, like the firmware), so --smp and
            // --el2 change nothing here. The PL011 (UART0) is serial 0, so `-serial stdio` below
            // is the console; the mini UART would be serial 1.
            c.args(["-machine", "raspi4b"]);
            if cfg.el1 {
                // raspi4b's Cortex-A72s without EL2 and EL3: QEMU's loader then enters at EL1.
                c.args(["-global", "cortex-a72-arm-cpu.has_el2=off", "-global", "cortex-a72-arm-cpu.has_el3=off"]);
            }
            if let Some(dtb) = &cfg.dtb {
                // A real device tree: QEMU fills in its /memory and /chosen/bootargs.
                c.arg("-dtb").arg(dtb);
                if !cfg.append.is_empty() {
                    c.args(["-append", &cfg.append]);
                }
            } else if !cfg.append.is_empty() {
                // QEMU passes a DTB in x0 only with -dtb, and writes -append into its
                // /chosen/bootargs: give it a minimal one (the board reads nothing else).
                let dtb = img.with_extension("dtb");
                std::fs::write(&dtb, minimal_dtb("raspberrypi,4-model-b\0brcm,bcm2711\0"))
                    .map_err(|e| format!("cannot write {}: {e}", dtb.display()))?;
                c.arg("-dtb").arg(&dtb);
                c.args(["-append", &cfg.append]);
            }
        }
    }
    c.args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-semihosting"]);
    if cfg.precise_irq {
        c.args(["-accel", "tcg,one-insn-per-tb=on"]);
    } else if cfg.board == Board::Virt && cfg.smp > SINGLE_THREAD_ABOVE && !cfg.icount {
        c.args(["-accel", "tcg,thread=single"]);
    }
    if cfg.icount {
        c.args(["-icount", "shift=0"]);
    }
    if cfg.gdb {
        c.args(["-s", "-S"]);
    }
    c.arg("-kernel").arg(img);
    Ok(c)
}

/// Boots `elf` on QEMU and reports what happened; decoded lines go to `out`.
pub fn run(elf: &Path, cfg: &RunConfig, out: &mut dyn Write) -> Result<RunResult, String> {
    let table = read_table(elf)?;
    let img = match &cfg.kernel {
        Some(k) => k.clone(),
        None => raw_image(elf)?,
    };
    let mut cmd = qemu_command(cfg, &img)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    if !cfg.gdb {
        cmd.stdin(Stdio::null());
    } else {
        let _ = writeln!(
            out,
            "qrun: waiting for GDB on localhost:1234 (gdb-multiarch -ex 'target remote :1234' {})",
            elf.display()
        );
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {QEMU}: {e} (run scripts/setup.sh)"))?;
    let mut stdout = child.stdout.take().ok_or("QEMU's stdout is not a pipe")?;
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut res = RunResult::default();
    let mut state = Tracker::default();
    let deadline = Instant::now() + Duration::from_secs(cfg.timeout_secs);
    let mut lines = Lines::new(table.as_ref());
    let mut timed_out = false;
    let mut ended = false;

    while !ended {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() && !cfg.gdb {
            timed_out = true;
            break;
        }
        let chunk = match rx.recv_timeout(if cfg.gdb { Duration::from_secs(3600) } else { left }) {
            Ok(c) => c,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        for line in lines.feed(&chunk) {
            state.handle(&line, cfg.verbose, &mut res, out);
            if cfg.until.as_deref().is_some_and(|u| line.contains(u)) {
                ended = true;
            }
        }
    }
    if ended {
        let _ = child.kill();
    }

    if timed_out {
        let _ = child.kill();
        let case = state.case.clone().unwrap_or_else(|| "(before the first test case)".into());
        let msg = format!(
            "TIMEOUT: {} ran past {}s while running {case}; cores not finished: {}",
            elf.file_name().and_then(|n| n.to_str()).unwrap_or("image"),
            cfg.timeout_secs,
            cores_of(&state.busy)
        );
        let _ = writeln!(out, "{msg}");
        res.text.push_str(&msg);
        res.text.push('\n');
        res.failures.push(msg);
        res.failed += 1;
    }
    let status = child.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
    let _ = reader.join();
    res.exit_code = if timed_out {
        EXIT_TIMEOUT
    } else if ended {
        0
    } else {
        status.code().unwrap_or(128)
    };
    if !timed_out && res.exit_code != 0 && res.failures.is_empty() {
        let case = state.case.clone().unwrap_or_else(|| "(before the first test case)".into());
        let msg = format!("image exited with code {} during {case}", res.exit_code);
        let _ = writeln!(out, "qrun: {msg}");
        res.failures.push(msg);
        res.failed += 1;
    }
    Ok(res)
}

/// Follows the markers of one run.
#[derive(Default)]
struct Tracker {
    case: Option<String>,
    busy: std::collections::BTreeSet<u32>,
}

impl Tracker {
    fn handle(&mut self, line: &str, verbose: bool, res: &mut RunResult, out: &mut dyn Write) {
        let shown = match classify(line) {
            Line::CaseStart(name) => {
                self.case = Some(name.to_string());
                self.busy.clear();
                false
            }
            Line::CoresBusy(cores) => {
                self.busy.extend(cores);
                false
            }
            Line::CoreDone(c) => {
                self.busy.remove(&c);
                false
            }
            Line::Summary { passed, failed, .. } => {
                res.summary = Some((passed, failed));
                false
            }
            Line::Result { name, ok, reason } => {
                if ok {
                    res.passed += 1;
                } else {
                    res.failed += 1;
                    res.failures.push(format!("{name}: {reason}"));
                }
                self.case = None;
                true
            }
            Line::Listed(_) | Line::Text(_) => true,
        };
        if shown || verbose {
            let _ = writeln!(out, "{line}");
            res.text.push_str(line);
            res.text.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{qemu_command, Gic, RunConfig};
    use crate::board::Board;
    use std::path::Path;

    fn args(cfg: &RunConfig) -> Vec<String> {
        let c = qemu_command(cfg, Path::new("/nonexistent/x.img")).unwrap();
        c.get_args().map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn virt_takes_cores_el2_and_the_command_line() {
        let cfg = RunConfig { smp: 2, el2: true, append: "maxcpus=1".into(), ..RunConfig::default() };
        let a = args(&cfg).join(" ");
        assert!(
            a.starts_with(
                "-machine virt,gic-version=2,virtualization=on -cpu cortex-a72 -m 1G -smp 2 -append maxcpus=1"
            ),
            "{a}"
        );
        assert!(a.ends_with("-kernel /nonexistent/x.img"), "{a}");
    }

    #[test]
    fn the_gic_follows_the_core_count_unless_chosen() {
        let machine = |smp, gic| args(&RunConfig { smp, gic, ..RunConfig::default() })[1].clone();
        assert_eq!(machine(8, Gic::Auto), "virt,gic-version=2");
        assert_eq!(machine(9, Gic::Auto), "virt,gic-version=3,acpi=off");
        assert_eq!(machine(4, Gic::V3), "virt,gic-version=3");
        assert_eq!(machine(512, Gic::V3), "virt,gic-version=3,acpi=off");
    }

    #[test]
    fn single_threaded_tcg_only_past_128_cores() {
        let accel = |smp| args(&RunConfig { smp, ..RunConfig::default() }).join(" ").contains("tcg,thread=single");
        assert!(!accel(4) && !accel(64) && !accel(128));
        assert!(accel(129) && accel(256));
        // -icount is single-threaded already (and exclusive with thread=single's explicit -accel).
        assert!(!args(&RunConfig { smp: 256, icount: true, ..RunConfig::default() })
            .join(" ")
            .contains("thread=single"));
    }

    #[test]
    fn impossible_gic_and_core_counts_are_named_before_qemu() {
        let err = |smp, gic| qemu_command(&RunConfig { smp, gic, ..RunConfig::default() }, Path::new("x")).unwrap_err();
        let e = err(9, Gic::V2);
        assert!(e.contains("at most 8 cores") && e.contains("--gic 3") && e.contains("GIC=3"), "{e}");
        assert!(err(513, Gic::Auto).contains("stop at 512"));
        assert!(err(513, Gic::V3).contains("stop at 512"));
    }

    #[test]
    fn rpi4_ignores_the_core_count() {
        let cfg = RunConfig { board: Board::Rpi4, smp: 1, ..RunConfig::default() };
        let a = args(&cfg);
        assert_eq!(&a[..2], ["-machine", "raspi4b"]);
        assert!(!a.iter().any(|x| x == "-smp"));
    }

    #[test]
    fn rpi4_passes_a_given_device_tree_and_kernel_as_they_are() {
        let cfg = RunConfig {
            board: Board::Rpi4,
            dtb: Some("/card/bcm2711-rpi-4-b.dtb".into()),
            append: "hold-core=3".into(),
            ..RunConfig::default()
        };
        let a = args(&cfg).join(" ");
        assert!(a.contains("-dtb /card/bcm2711-rpi-4-b.dtb -append hold-core=3"), "{a}");
    }

    #[test]
    fn rpi4_enters_at_el1_on_cores_without_el2_and_el3() {
        let a = args(&RunConfig { board: Board::Rpi4, el1: true, ..RunConfig::default() }).join(" ");
        assert!(a.contains("-global cortex-a72-arm-cpu.has_el2=off -global cortex-a72-arm-cpu.has_el3=off"), "{a}");
        assert!(!args(&RunConfig { board: Board::Rpi4, ..RunConfig::default() }).join(" ").contains("has_el2"));
    }
}
