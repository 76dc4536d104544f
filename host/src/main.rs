//! `qrun`: the host side of quiescent.
//!
//! * `qrun run [options] ELF` turns the ELF into the raw arm64 Image the board boots, starts QEMU,
//!   decodes the defmt stream with the ELF's symbols, prints readable lines, kills the image if it
//!   runs past its timeout (naming the test that was running and the cores that had not finished),
//!   and exits with QEMU's exit code (or 124 on a timeout). Cargo's runner (`scripts/runner`)
//!   calls this, so `cargo run` and `cargo test` boot on QEMU.
//! * `qrun decode ELF` decodes a defmt stream from stdin (a real board's serial port).
//! * `qrun suite` builds every on-target test image, runs each in every configuration listed in
//!   `suite.rs` (core counts, EL2 entry, expected failures), runs the host's own unit tests, and
//!   prints the closing `N passed, M failed` line.

mod protocol;
mod qemu;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  qrun run [--board virt|rpi4] [--smp N] [--el2] [--timeout SECS] [--append ARGS]\n           [--icount] [--precise-irq] [--gdb] [--verbose] ELF\n  qrun suite [--board virt|rpi4|all] [--only NAME] [--verbose]\n  qrun decode ELF < /dev/ttyUSB0   (decode a board's console)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else { return usage() };
    match cmd.as_str() {
        "run" => {
            let mut cfg = qemu::RunConfig::default();
            let mut elf = None;
            // Any option that shapes the run means "boot it exactly so, once".
            let explicit = args[1..].iter().any(|a| {
                matches!(a.as_str(), "--smp" | "--el2" | "--append" | "--icount" | "--precise-irq" | "--gdb" | "--timeout")
            });
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                let mut val = || it.next().cloned().unwrap_or_default();
                match a.as_str() {
                    "--board" => cfg.board = val(),
                    "--smp" => cfg.smp = val().parse().unwrap_or(4),
                    "--el2" => cfg.el2 = true,
                    "--timeout" => cfg.timeout_secs = val().parse().unwrap_or(120),
                    "--append" => cfg.append = val(),
                    "--icount" => cfg.icount = true,
                    "--precise-irq" => cfg.precise_irq = true,
                    "--gdb" => cfg.gdb = true,
                    "--verbose" => cfg.verbose = true,
                    s if s.starts_with("--") => return usage(),
                    s => elf = Some(PathBuf::from(s)),
                }
            }
            let Some(elf) = elf else { return usage() };
            if let Ok(b) = std::env::var("QUIESCENT_BOARD") {
                if !b.is_empty() {
                    cfg.board = b;
                }
            }
            if !explicit {
                // A test image cargo test hands us: run it as the suite does.
                if let Some(code) = suite::run_image(&elf, &cfg.board, cfg.verbose) {
                    return code;
                }
            }
            match qemu::run(&elf, &cfg, &mut std::io::stdout()) {
                Ok(r) => {
                    if let Some(s) = &r.summary {
                        println!("{} passed, {} failed", s.0, s.1);
                    }
                    ExitCode::from(r.exit_code.clamp(0, 255) as u8)
                }
                Err(e) => {
                    eprintln!("qrun: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "decode" => {
            // Decodes a defmt stream (a serial port, a capture) from stdin with the ELF's table.
            let Some(elf) = args.get(1) else { return usage() };
            match qemu::decode_stdin(std::path::Path::new(elf), &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("qrun: {e}");
                    ExitCode::from(1)
                }
            }
        }
        "suite" => {
            let mut board = "all".to_string();
            let mut only = None;
            let mut verbose = false;
            let mut it = args[1..].iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--board" => board = it.next().cloned().unwrap_or_default(),
                    "--only" => only = it.next().cloned(),
                    "--verbose" => verbose = true,
                    _ => return usage(),
                }
            }
            suite::run(&board, only.as_deref(), verbose)
        }
        _ => usage(),
    }
}
