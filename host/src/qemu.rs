//! Booting one image on QEMU and decoding what it prints.

use crate::protocol::{classify, cores_of, Line};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How to boot one image.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// `virt` (QEMU's virt machine, cortex-a72) or `rpi4` (QEMU's raspi4b).
    pub board: String,
    /// Number of cores (virt only: the Pi 4 always has 4).
    pub smp: u32,
    /// Enter at EL2 (`virtualization=on`), so the boot code's EL2 -> EL1 drop runs.
    pub el2: bool,
    /// Seconds before the image is killed and counted as a failure.
    pub timeout_secs: u64,
    /// Kernel command line, placed in the DTB's /chosen/bootargs (virt).
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
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            board: "virt".into(),
            smp: 4,
            el2: false,
            timeout_secs: 120,
            append: String::new(),
            icount: false,
            gdb: false,
            precise_irq: false,
            verbose: false,
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

fn host_triple() -> String {
    let out = Command::new("rustc").arg("-vV").output().map(|o| o.stdout).unwrap_or_default();
    String::from_utf8_lossy(&out)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
}

fn objcopy() -> PathBuf {
    let out = Command::new("rustc").args(["--print", "sysroot"]).output().map(|o| o.stdout).unwrap_or_default();
    let sysroot = String::from_utf8_lossy(&out).trim().to_string();
    let p = Path::new(&sysroot).join("lib/rustlib").join(host_triple()).join("bin/rust-objcopy");
    if p.exists() {
        p
    } else {
        PathBuf::from("llvm-objcopy")
    }
}

/// Makes the raw image (what the board's loader expects) next to the ELF.
pub fn raw_image(elf: &Path) -> Result<PathBuf, String> {
    let img = elf.with_extension("img");
    let st = Command::new(objcopy())
        .args(["-O", "binary"])
        .arg(elf)
        .arg(&img)
        .status()
        .map_err(|e| format!("cannot run rust-objcopy: {e}"))?;
    if !st.success() {
        return Err(format!("rust-objcopy failed on {}", elf.display()));
    }
    Ok(img)
}

/// The QEMU command line for a board.
pub fn qemu_command(cfg: &RunConfig, img: &Path) -> Result<Command, String> {
    let mut c = Command::new("qemu-system-aarch64");
    match cfg.board.as_str() {
        "virt" => {
            let machine = if cfg.el2 { "virt,virtualization=on" } else { "virt" };
            c.args(["-machine", machine, "-cpu", "cortex-a72", "-m", "1G"]);
            c.args(["-smp", &cfg.smp.to_string()]);
            if !cfg.append.is_empty() {
                c.args(["-append", &cfg.append]);
            }
        }
        "rpi4" => {
            // The Pi 4 has 4 cores (QEMU refuses any other -smp) and enters at EL2 by itself
            // (QEMU boots a raw arm64 Image on raspi4b at EL2, like the firmware), so --smp and
            // --el2 change nothing here. The PL011 (UART0) is serial 0, so `-serial stdio` below
            // is the console; the mini UART would be serial 1.
            c.args(["-machine", "raspi4b"]);
            if !cfg.append.is_empty() {
                // QEMU passes a DTB in x0 only with -dtb, and writes -append into its
                // /chosen/bootargs: give it a minimal one (the board reads nothing else).
                let dtb = img.with_extension("dtb");
                std::fs::write(&dtb, minimal_dtb("raspberrypi,4-model-b\0brcm,bcm2711\0"))
                    .map_err(|e| format!("cannot write {}: {e}", dtb.display()))?;
                c.arg("-dtb").arg(&dtb);
                c.args(["-append", &cfg.append]);
            }
        }
        b => return Err(format!("unknown board `{b}` (expected virt or rpi4)")),
    }
    c.args(["-display", "none", "-monitor", "none", "-serial", "stdio", "-semihosting"]);
    if cfg.precise_irq {
        c.args(["-accel", "tcg,one-insn-per-tb=on"]);
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

/// A flattened device tree with only what QEMU's loader needs to fill in (`#address-cells`,
/// `#size-cells`, `/chosen`, `/memory`): the root's `compatible` (NUL-separated list), an empty
/// `/chosen` for QEMU to put `-append` into, and a `/memory` node that QEMU replaces.
/// Layout per the Devicetree Specification v0.4, chapter 5 (header, reservation map,
/// structure block, strings block; big-endian).
pub fn minimal_dtb(compatible: &str) -> Vec<u8> {
    const BEGIN_NODE: u32 = 1;
    const END_NODE: u32 = 2;
    const PROP: u32 = 3;
    const END: u32 = 9;
    let mut st: Vec<u8> = Vec::new();
    let mut strings: Vec<u8> = Vec::new();
    let u32be = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_be_bytes());
    let pad = |v: &mut Vec<u8>| {
        while v.len() % 4 != 0 {
            v.push(0);
        }
    };
    let node = |st: &mut Vec<u8>, name: &str| {
        u32be(st, BEGIN_NODE);
        st.extend_from_slice(name.as_bytes());
        st.push(0);
        pad(st);
    };
    let prop = |st: &mut Vec<u8>, strings: &mut Vec<u8>, name: &str, val: &[u8]| {
        let off = strings.len() as u32;
        strings.extend_from_slice(name.as_bytes());
        strings.push(0);
        u32be(st, PROP);
        u32be(st, val.len() as u32);
        u32be(st, off);
        st.extend_from_slice(val);
        pad(st);
    };
    let cells = |xs: &[u32]| xs.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    node(&mut st, "");
    prop(&mut st, &mut strings, "#address-cells", &cells(&[2]));
    prop(&mut st, &mut strings, "#size-cells", &cells(&[1]));
    prop(&mut st, &mut strings, "compatible", compatible.as_bytes());
    prop(&mut st, &mut strings, "model", b"quiescent minimal DT for QEMU\0");
    node(&mut st, "chosen");
    prop(&mut st, &mut strings, "bootargs", b"\0");
    u32be(&mut st, END_NODE);
    node(&mut st, "memory@0");
    prop(&mut st, &mut strings, "device_type", b"memory\0");
    prop(&mut st, &mut strings, "reg", &cells(&[0, 0, 0x3c00_0000]));
    u32be(&mut st, END_NODE);
    u32be(&mut st, END_NODE);
    u32be(&mut st, END);
    let hdr = 40usize;
    let rsv = hdr; // 8-byte aligned: one empty (terminating) entry
    let off_st = rsv + 16;
    let off_str = off_st + st.len();
    let total = off_str + strings.len();
    let mut out = Vec::with_capacity(total);
    for x in [0xd00d_feed, total as u32, off_st as u32, off_str as u32, rsv as u32, 17, 16, 0, strings.len() as u32, st.len() as u32] {
        u32be(&mut out, x);
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&st);
    out.extend_from_slice(&strings);
    out
}

/// Boots `elf` on QEMU and reports what happened; decoded lines go to `out`.
pub fn run(elf: &Path, cfg: &RunConfig, out: &mut dyn Write) -> Result<RunResult, String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let table = defmt_decoder::Table::parse(&bytes).map_err(|e| format!("bad defmt data in {}: {e}", elf.display()))?;
    let img = raw_image(elf)?;
    let mut cmd = qemu_command(cfg, &img)?;
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    if !cfg.gdb {
        cmd.stdin(Stdio::null());
    } else {
        let _ = writeln!(out, "qrun: waiting for GDB on localhost:1234 (gdb-multiarch -ex 'target remote :1234' {})", elf.display());
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start qemu-system-aarch64: {e} (run scripts/setup.sh)"))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
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
    let mut decoder = table.as_ref().map(|t| t.new_stream_decoder());
    let mut raw_line = Vec::new();
    let mut timed_out = false;

    loop {
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
        let mut lines = Vec::new();
        match decoder.as_mut() {
            Some(d) => {
                d.received(&chunk);
                loop {
                    match d.decode() {
                        Ok(frame) => {
                            let msg = frame.display_message().to_string();
                            let line = match (frame.level(), frame.display_timestamp()) {
                                (Some(level), Some(ts)) => {
                                    format!("[{ts} {}] {msg}", format!("{level:?}").to_uppercase())
                                }
                                (Some(level), None) => format!("[{}] {msg}", format!("{level:?}").to_uppercase()),
                                _ => msg,
                            };
                            lines.push(line);
                        }
                        Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
                        Err(defmt_decoder::DecodeError::Malformed) => {
                            lines.push("qrun: (malformed defmt frame skipped)".into());
                        }
                    }
                }
            }
            None => {
                for b in chunk {
                    if b == b'\n' {
                        lines.push(String::from_utf8_lossy(&raw_line).trim_end().to_string());
                        raw_line.clear();
                    } else {
                        raw_line.push(b);
                    }
                }
            }
        }
        for line in lines {
            for l in line.lines() {
                state.handle(l, cfg.verbose, &mut res, out);
            }
        }
    }

    if timed_out {
        let _ = child.kill();
        let case = state.case.clone().unwrap_or_else(|| "(before the first test case)".into());
        let msg = format!(
            "TIMEOUT: {} ran past {}s while running {case}; cores not finished: {}",
            elf.file_name().and_then(|n| n.to_str()).unwrap_or("image"),
            cfg.timeout_secs,
            cores_of(state.busy)
        );
        let _ = writeln!(out, "{msg}");
        res.text.push_str(&msg);
        res.text.push('\n');
        res.failures.push(msg);
        res.failed += 1;
    }
    let status = child.wait().map_err(|e| format!("waiting for QEMU: {e}"))?;
    let _ = reader.join();
    res.exit_code = if timed_out { 124 } else { status.code().unwrap_or(128) };
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
    busy: u64,
}

impl Tracker {
    fn handle(&mut self, line: &str, verbose: bool, res: &mut RunResult, out: &mut dyn Write) {
        let shown = match classify(line) {
            Line::CaseStart(name) => {
                self.case = Some(name.to_string());
                self.busy = 0;
                false
            }
            Line::CoresBusy(mask) => {
                self.busy |= mask;
                false
            }
            Line::CoreDone(c) => {
                self.busy &= !(1u64 << (c % 64));
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
            Line::Text(_) => true,
        };
        if shown || verbose {
            let _ = writeln!(out, "{line}");
            res.text.push_str(line);
            res.text.push('\n');
        }
    }
}

/// Decodes the defmt stream on stdin with `elf`'s table and prints one line per frame until EOF.
pub fn decode_stdin(elf: &Path, out: &mut dyn Write) -> Result<(), String> {
    let bytes = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let table = defmt_decoder::Table::parse(&bytes)
        .map_err(|e| format!("bad defmt data in {}: {e}", elf.display()))?
        .ok_or_else(|| format!("{} has no defmt table", elf.display()))?;
    let mut decoder = table.new_stream_decoder();
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 4096];
    loop {
        let n = stdin.read(&mut buf).map_err(|e| format!("reading stdin: {e}"))?;
        if n == 0 {
            return Ok(());
        }
        decoder.received(&buf[..n]);
        loop {
            match decoder.decode() {
                Ok(frame) => {
                    let msg = frame.display_message().to_string();
                    let line = match (frame.level(), frame.display_timestamp()) {
                        (Some(level), Some(ts)) => format!("[{ts} {}] {msg}", format!("{level:?}").to_uppercase()),
                        _ => msg,
                    };
                    let _ = writeln!(out, "{line}");
                }
                Err(defmt_decoder::DecodeError::UnexpectedEof) => break,
                Err(defmt_decoder::DecodeError::Malformed) => {
                    let _ = writeln!(out, "qrun: (malformed defmt frame skipped)");
                }
            }
        }
    }
}
