//! `qrun`: the host side of quiescent.
//!
//! * `qrun run [options] ELF` turns the ELF into the raw arm64 Image the board boots, starts QEMU,
//!   decodes the defmt stream with the ELF's symbols, prints readable lines, kills the image if it
//!   runs past its timeout (naming the test that was running and the cores that had not finished),
//!   and exits with QEMU's exit code (or 124 on a timeout). Cargo's runner (`scripts/runner`)
//!   calls this, so `cargo run` and `cargo test` boot on QEMU; the arguments after the ELF
//!   (`cargo test -- NAME`, `--list`) select test cases as libtest's do.
//! * `qrun bench [options] ELF` runs the benchmark image in both of its modes and writes
//!   `bench/results.md` and the charts (module `bench`).
//! * `qrun decode ELF` decodes a defmt stream from stdin (a real board's serial port).
//! * `qrun cargo [--board B] [--image] ARGS` runs cargo for a board (its features and target
//!   directory, from `board`), and `qrun cargo-env` prints them for a shell: the Makefile and the
//!   scripts build through these, so the mapping is written once.
//! * `qrun suite` builds every on-target test image, runs each in every configuration listed in
//!   `suite/table.rs` (core counts, EL2 entry, expected failures), runs the host's own unit
//!   tests, and prints the closing `N passed, M failed` line.
//!
//! Modules: `cli` (the command line), `board`, `qemu` (booting one image), `decode` (defmt to
//! lines), `dtb`, `toolchain` (host triple, raw image), `protocol` (the image's markers and case
//! selection), `suite`.

mod bench;
mod board;
mod cli;
mod decode;
mod dtb;
mod protocol;
mod qemu;
mod suite;
mod toolchain;

use cli::{Command, RunArgs};
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let board_env = std::env::var("QUIESCENT_BOARD").ok();
    let cmd = match cli::parse(std::env::args_os().skip(1), board_env.as_deref()) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("qrun: {e}");
            return ExitCode::from(2);
        }
    };
    let done = match cmd {
        Command::Help => {
            print!("{}", cli::USAGE);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run(args),
        Command::Decode { elf } => check_elf(&elf)
            .and_then(|()| decode::decode_stdin(&elf, &mut std::io::stdout()))
            .map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(&args),
        Command::Cargo { board, variant, args } => {
            let build = board.cargo(&suite::repo_root(), variant);
            match args {
                Some(args) => cargo(build.command(&args[0]).args(&args[1..])),
                None => {
                    print!("{}", build.shell());
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Suite { boards, only, verbose } => {
            qemu::check_installed().map(|()| suite::run(&boards, only.as_deref(), verbose))
        }
    };
    done.unwrap_or_else(|e| {
        eprintln!("qrun: {e}");
        ExitCode::from(1)
    })
}

/// `qrun cargo`: cargo in the board's build, in this process's place (its exit status is ours).
fn cargo(cmd: &mut std::process::Command) -> Result<ExitCode, String> {
    use std::os::unix::process::CommandExt;
    Err(format!("cannot run cargo: {}", cmd.exec()))
}

/// A missing or unreadable ELF is named before anything else happens.
fn check_elf(elf: &Path) -> Result<(), String> {
    std::fs::metadata(elf).map(|_| ()).map_err(|e| format!("cannot read ELF file '{}': {e}", elf.display()))
}

/// `qrun run`: a test image in the suite's configurations, or one boot exactly as asked.
fn run(args: RunArgs) -> Result<ExitCode, String> {
    let RunArgs { mut cfg, explicit, elf, selection } = args;
    check_elf(&elf)?;
    qemu::check_installed()?;
    if !explicit {
        // A test image cargo test hands us: run it as the suite does.
        if let Some(code) = suite::run_image(&elf, cfg.board, &selection, cfg.verbose) {
            return Ok(code);
        }
    }
    if selection.list {
        let cases = suite::list_cases(&elf, &cfg)?;
        let names: Vec<String> = cases.into_iter().filter(|c| selection.matches(c)).collect();
        suite::print_list(&names);
        return Ok(ExitCode::SUCCESS);
    }
    cfg.append = selection.boot_args(&cfg.append);
    let r = qemu::run(&elf, &cfg, &mut std::io::stdout())?;
    if let Some((passed, failed)) = r.summary {
        println!("{passed} passed, {failed} failed");
    }
    Ok(ExitCode::from(u8::try_from(r.exit_code.clamp(0, 255)).unwrap_or(u8::MAX)))
}
