//! The command line, parsed once into a [`Command`] (with `lexopt`).

use crate::bench::BenchArgs;
use crate::board::{Board, Variant};
use crate::protocol::Selection;
use crate::qemu::RunConfig;
use lexopt::prelude::*;
use std::ffi::OsString;
use std::fmt;
use std::num::{NonZeroU32, NonZeroU64};
use std::path::PathBuf;
use std::str::FromStr;

/// `qrun --help`.
pub const USAGE: &str = "\
usage:
  qrun run [--board virt|rpi4] [--smp N] [--gic 2|3] [--el2] [--timeout SECS] [--append ARGS]
           [--icount] [--precise-irq] [--gdb] [--verbose] ELF [FILTER...] [--exact] [--list]
  qrun suite [--board virt|rpi4|all] [--only IMAGE|many|gicv3|host|model|hosted|compile-fail|card] [--verbose]
  qrun bench [--out DIR] [--smp N] [--smp-icount N] [--sections LIST] [--timeout SECS]
             [--gp-cores LIST] [--gp-leaves LIST] ELF
  qrun bench --report-only [--out DIR]
  qrun decode ELF < /dev/ttyUSB0   (decode a board's console)
  qrun cargo [--board virt|rpi4] [--image] CARGO-COMMAND [ARGS...]
  qrun cargo-env [--board virt|rpi4] [--image]

qrun run boots ELF on QEMU and decodes its defmt output. A test image cargo test hands it runs in
every configuration the suite lists for it, unless an option that shapes the run (--smp, --gic,
--el2, --timeout, --append, --icount, --precise-irq, --gdb) asks for one boot exactly so.
--gic: QEMU virt's interrupt controller; by default GICv2 up to 8 cores and GICv3 beyond (GICv2
reaches only 8; --smp up to 512). FILTER,
--exact and --list select test cases as libtest does (cargo test -- FILTER); --nocapture and
--show-output are accepted and change nothing (output is never captured).
The board also comes from QUIESCENT_BOARD, which overrides --board.
qrun bench boots the bench image on QEMU virt: with -icount shift=0 on --smp-icount cores
(default 4); on multi-threaded TCG on --smp cores (default 8) for the costs, the scaling and
the mixed workload; and on as many vCPUs as the host has cores for the update side. It keeps
the consoles in DIR (default bench) and writes DIR/results.md and PNG charts; --report-only
rewrites those from the kept consoles. --sections: costs,scaling,update,mixed,gp (default all).
The gp section (grace-period cost vs cores, icount) boots once per core count in --gp-cores
(default 2,4,8) and RCU leaf size in --gp-leaves (default 16; `rcu_leaf=N`).
qrun cargo runs `cargo CARGO-COMMAND ARGS...` for the board (default virt): the board's cargo
features after the command, in the board's own target directory; --image is the build for the
board itself (the Pi 4's runs without semihosting). It sets QUIESCENT_BOARD too, so cargo's
runner boots the board's machine. qrun cargo-env prints the same for a shell to eval: the
variables exported, and the flags as CARGO_BOARD_FLAGS.
";

/// What to do.
#[derive(Debug)]
pub enum Command {
    /// Print the usage.
    Help,
    /// Boot one image (or one test image in the suite's configurations).
    Run(RunArgs),
    /// Decode a defmt stream from stdin with an ELF's table.
    Decode {
        /// The image whose table decodes the stream.
        elf: PathBuf,
    },
    /// Run the benchmarks and write their report and charts.
    Bench(BenchArgs),
    /// Run cargo for a board (`cargo`), or print how (`cargo-env`: `args` is `None`).
    Cargo {
        /// The board.
        board: Board,
        /// Which build: QEMU's, or the board's own image.
        variant: Variant,
        /// Cargo's subcommand and its arguments, as given.
        args: Option<Vec<OsString>>,
    },
    /// Run the whole suite.
    Suite {
        /// The boards to run it on.
        boards: Vec<Board>,
        /// Only this image's runs (or `host`: only the host's unit tests; `model`: only the loom
        /// models; `hosted`: only the crates on the host machine; `card`: only the rpi4 SD-card
        /// image).
        only: Option<String>,
        /// Also print the `@` marker lines.
        verbose: bool,
    },
}

/// `qrun run`'s arguments.
#[derive(Debug)]
pub struct RunArgs {
    /// How to boot it.
    pub cfg: RunConfig,
    /// An option that shapes the run was given: boot it exactly so, once.
    pub explicit: bool,
    /// The image.
    pub elf: PathBuf,
    /// Which test cases run (libtest's filters, `--exact`, `--list`).
    pub selection: Selection,
}

/// A command line qrun cannot act on; the message names what is wrong.
#[derive(Debug, PartialEq, Eq)]
pub struct CliError(String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> Self {
        CliError(e.to_string())
    }
}

/// `args` without the program name; `board_env` is `QUIESCENT_BOARD`.
pub fn parse<I>(args: I, board_env: Option<&str>) -> Result<Command, CliError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut p = lexopt::Parser::from_args(args);
    match p.next()? {
        None => Err(CliError("missing command: run, suite, bench, decode or cargo (see qrun --help)".into())),
        Some(Short('h') | Long("help")) => Ok(Command::Help),
        Some(Value(cmd)) => match cmd.to_str() {
            Some("run") => parse_run(&mut p, board_env),
            Some("suite") => parse_suite(&mut p),
            Some("decode") => parse_decode(&mut p),
            Some("bench") => parse_bench(&mut p),
            Some("cargo") => parse_cargo(&mut p, true),
            Some("cargo-env") => parse_cargo(&mut p, false),
            _ => Err(CliError(format!(
                "unknown command '{}' (expected run, suite, bench, decode, cargo or cargo-env)",
                cmd.to_string_lossy()
            ))),
        },
        Some(arg) => Err(unknown(arg)),
    }
}

fn unknown(arg: lexopt::Arg<'_>) -> CliError {
    match arg {
        Short(c) => CliError(format!("unknown option '-{c}' (see qrun --help)")),
        Long(o) => CliError(format!("unknown option '--{o}' (see qrun --help)")),
        Value(v) => CliError(format!("unexpected argument '{}' (see qrun --help)", v.to_string_lossy())),
    }
}

/// A value that must parse as `T`; otherwise an error naming the value, the option and what it
/// expected: `invalid value 'abc' for --smp: expected a number of cores`.
fn parse_as<T: FromStr>(value: &str, what: &str, expected: &str) -> Result<T, CliError> {
    value.parse().map_err(|_| CliError(format!("invalid value '{value}' for {what}: expected {expected}")))
}

/// The next option's value as a string.
fn value(p: &mut lexopt::Parser) -> Result<String, CliError> {
    Ok(p.value()?.to_string_lossy().into_owned())
}

fn parse_run(p: &mut lexopt::Parser, board_env: Option<&str>) -> Result<Command, CliError> {
    let mut cfg = RunConfig::default();
    let mut explicit = false;
    let mut elf = None;
    let mut selection = Selection::default();
    while let Some(arg) = p.next()? {
        explicit |=
            matches!(arg, Long("smp" | "gic" | "el2" | "timeout" | "append" | "icount" | "precise-irq" | "gdb"));
        match arg {
            Long("board") => cfg.board = parse_as(&value(p)?, "--board", "virt or rpi4")?,
            Long("smp") => cfg.smp = parse_as::<NonZeroU32>(&value(p)?, "--smp", "a number of cores")?.get(),
            Long("gic") => cfg.gic = parse_as(&value(p)?, "--gic", "2 or 3")?,
            Long("el2") => cfg.el2 = true,
            Long("timeout") => {
                cfg.timeout_secs = parse_as::<NonZeroU64>(&value(p)?, "--timeout", "a number of seconds")?.get()
            }
            Long("append") => cfg.append = value(p)?,
            Long("icount") => cfg.icount = true,
            Long("precise-irq") => cfg.precise_irq = true,
            Long("gdb") => cfg.gdb = true,
            Long("verbose") => cfg.verbose = true,
            Long("list") => selection.list = true,
            Long("exact") => selection.exact = true,
            // libtest's: cargo users pass them, and there is nothing to capture.
            Long("nocapture" | "show-output") => {}
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(v) if elf.is_none() => elf = Some(PathBuf::from(v)),
            Value(v) => selection.filters.push(filter(v)?),
            arg => return Err(unknown(arg)),
        }
    }
    let elf = elf.ok_or_else(|| CliError("missing ELF file: qrun run [options] ELF (see qrun --help)".into()))?;
    if let Some(b) = board_env.filter(|b| !b.is_empty()) {
        cfg.board = parse_as(b, "QUIESCENT_BOARD", "virt or rpi4")?;
    }
    Ok(Command::Run(RunArgs { cfg, explicit, elf, selection }))
}

/// A test filter: it travels on the kernel command line, split at spaces and commas.
fn filter(v: OsString) -> Result<String, CliError> {
    let f = v.to_string_lossy().into_owned();
    if f.is_empty() || f.contains(|c: char| c.is_whitespace() || c == ',') {
        return Err(CliError(format!("invalid value '{f}' for the test filter: expected part of a test name")));
    }
    Ok(f)
}

fn parse_suite(p: &mut lexopt::Parser) -> Result<Command, CliError> {
    let mut boards = Board::ALL.to_vec();
    let mut only = None;
    let mut verbose = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("board") => {
                let b = value(p)?;
                boards =
                    if b == "all" { Board::ALL.to_vec() } else { vec![parse_as(&b, "--board", "virt, rpi4 or all")?] };
            }
            Long("only") => only = Some(value(p)?),
            Long("verbose") => verbose = true,
            Short('h') | Long("help") => return Ok(Command::Help),
            arg => return Err(unknown(arg)),
        }
    }
    Ok(Command::Suite { boards, only, verbose })
}

fn parse_bench(p: &mut lexopt::Parser) -> Result<Command, CliError> {
    let mut a = BenchArgs::default();
    while let Some(arg) = p.next()? {
        match arg {
            Long("out") => a.out = PathBuf::from(value(p)?),
            Long("smp") => a.smp = parse_as::<NonZeroU32>(&value(p)?, "--smp", "a number of cores")?.get(),
            Long("smp-icount") => {
                a.smp_icount = parse_as::<NonZeroU32>(&value(p)?, "--smp-icount", "a number of cores")?.get()
            }
            Long("sections") => a.sections = Some(value(p)?),
            Long("gp-cores") => a.gp_cores = parse_list(&value(p)?, "--gp-cores")?,
            Long("gp-leaves") => a.gp_leaves = parse_list(&value(p)?, "--gp-leaves")?,
            Long("timeout") => {
                a.timeout_secs = parse_as::<NonZeroU64>(&value(p)?, "--timeout", "a number of seconds")?.get()
            }
            Long("report-only") => a.report_only = true,
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(v) if a.elf.is_none() => a.elf = Some(PathBuf::from(v)),
            arg => return Err(unknown(arg)),
        }
    }
    if a.elf.is_none() && !a.report_only {
        return Err(CliError("missing ELF file: qrun bench [options] ELF (see qrun --help)".into()));
    }
    Ok(Command::Bench(a))
}

/// A comma-separated list of positive numbers (`2,4,8`).
fn parse_list(v: &str, opt: &str) -> Result<Vec<u32>, CliError> {
    v.split(',')
        .map(|x| x.trim().parse::<NonZeroU32>().map(NonZeroU32::get))
        .collect::<Result<_, _>>()
        .map_err(|_| CliError(format!("invalid value '{v}' for {opt}: expected a comma-separated list of numbers")))
}

/// `qrun cargo` (`run`: the options end at cargo's subcommand, whose arguments are taken as they
/// are) or `qrun cargo-env`.
fn parse_cargo(p: &mut lexopt::Parser, run: bool) -> Result<Command, CliError> {
    let mut board = Board::default();
    let mut variant = Variant::Qemu;
    while let Some(arg) = p.next()? {
        match arg {
            Long("board") => board = parse_as(&value(p)?, "--board", "virt or rpi4")?,
            Long("image") => variant = Variant::Image,
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(cmd) if run => {
                let args = std::iter::once(cmd).chain(p.raw_args()?).collect();
                return Ok(Command::Cargo { board, variant, args: Some(args) });
            }
            arg => return Err(unknown(arg)),
        }
    }
    if run {
        return Err(CliError("missing cargo command: qrun cargo [options] CARGO-COMMAND (see qrun --help)".into()));
    }
    Ok(Command::Cargo { board, variant, args: None })
}

fn parse_decode(p: &mut lexopt::Parser) -> Result<Command, CliError> {
    let mut elf = None;
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Value(v) if elf.is_none() => elf = Some(PathBuf::from(v)),
            arg => return Err(unknown(arg)),
        }
    }
    let elf = elf.ok_or_else(|| CliError("missing ELF file: qrun decode ELF (see qrun --help)".into()))?;
    Ok(Command::Decode { elf })
}

#[cfg(test)]
mod tests {
    use super::{parse, CliError, Command, RunArgs};
    use crate::board::{Board, Variant};

    fn run(args: &[&str]) -> Result<RunArgs, CliError> {
        run_env(args, None)
    }

    fn run_env(args: &[&str], board_env: Option<&str>) -> Result<RunArgs, CliError> {
        match parse(["run"].iter().chain(args), board_env)? {
            Command::Run(r) => Ok(r),
            other => panic!("not a run: {other:?}"),
        }
    }

    fn err(args: &[&str]) -> String {
        match parse(args, None) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{args:?} parsed as {c:?}"),
        }
    }

    #[test]
    fn bad_numbers_are_named() {
        assert_eq!(err(&["run", "--smp", "abc", "x"]), "invalid value 'abc' for --smp: expected a number of cores");
        assert_eq!(err(&["run", "--smp", "0", "x"]), "invalid value '0' for --smp: expected a number of cores");
        assert_eq!(
            err(&["run", "--timeout=soon", "x"]),
            "invalid value 'soon' for --timeout: expected a number of seconds"
        );
        assert!(err(&["run", "x", "--smp"]).contains("--smp"), "a missing value names the option");
    }

    #[test]
    fn unknown_options_and_commands_are_errors() {
        assert_eq!(err(&["run", "--frobnicate", "x"]), "unknown option '--frobnicate' (see qrun --help)");
        assert_eq!(err(&["suite", "-x"]), "unknown option '-x' (see qrun --help)");
        assert!(err(&["boot"]).starts_with("unknown command 'boot'"));
        assert!(err(&[]).starts_with("missing command"));
        assert!(err(&["run"]).starts_with("missing ELF file"));
        assert!(err(&["decode", "a", "b"]).starts_with("unexpected argument 'b'"));
    }

    #[test]
    fn boards_are_parsed_once_into_the_enum() {
        assert_eq!(run(&["x"]).unwrap().cfg.board, Board::Virt);
        assert_eq!(run(&["--board", "rpi4", "x"]).unwrap().cfg.board, Board::Rpi4);
        assert_eq!(err(&["run", "--board", "pi4", "x"]), "invalid value 'pi4' for --board: expected virt or rpi4");
        // QUIESCENT_BOARD (the Makefile's) wins over --board; empty means unset.
        assert_eq!(run_env(&["--board", "virt", "x"], Some("rpi4")).unwrap().cfg.board, Board::Rpi4);
        assert_eq!(run_env(&["x"], Some("")).unwrap().cfg.board, Board::Virt);
        assert!(run_env(&["x"], Some("pi")).is_err());
        match parse(["suite", "--board", "all"], None) {
            Ok(Command::Suite { boards, .. }) => assert_eq!(boards, Board::ALL),
            other => panic!("{other:?}"),
        }
        match parse(["suite", "--board=rpi4"], None) {
            Ok(Command::Suite { boards, .. }) => assert_eq!(boards, [Board::Rpi4]),
            other => panic!("{other:?}"),
        }
        assert!(parse(["suite", "--board", "both"], None).is_err());
    }

    #[test]
    fn options_that_shape_the_run_make_it_explicit() {
        let r = run(&["--smp=2", "--el2", "--append", "maxcpus=1", "img"]).unwrap();
        assert!(r.explicit);
        assert_eq!((r.cfg.smp, r.cfg.el2, r.cfg.append.as_str()), (2, true, "maxcpus=1"));
        assert_eq!(r.elf.to_str(), Some("img"));
        assert!(!run(&["--board", "rpi4", "--verbose", "img"]).unwrap().explicit);
    }

    #[test]
    fn libtest_arguments_select_cases() {
        // What cargo test -- grace barrier --exact --list --nocapture hands the runner.
        let r = run(&["img", "grace", "barrier", "--exact", "--list", "--nocapture"]).unwrap();
        assert_eq!(r.selection.filters, ["grace", "barrier"]);
        assert!(r.selection.exact && r.selection.list && !r.explicit);
        assert!(err(&["run", "img", "two words"]).starts_with("invalid value 'two words' for the test filter"));
        assert!(err(&["run", "img", "a,b"]).starts_with("invalid value 'a,b'"));
    }

    #[test]
    fn bench_takes_its_options() {
        match parse(["bench", "--smp=2", "--out", "o", "--sections", "costs", "img"], None) {
            Ok(Command::Bench(a)) => {
                assert_eq!(
                    (a.smp, a.smp_icount, a.out.to_str(), a.elf.as_deref().and_then(|e| e.to_str())),
                    (2, 4, Some("o"), Some("img"))
                );
                assert_eq!(a.sections.as_deref(), Some("costs"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(["bench", "--report-only"], None), Ok(Command::Bench(a)) if a.report_only));
        assert!(err(&["bench"]).starts_with("missing ELF file"));
        match parse(["bench", "--gp-cores", "16,64,256", "--gp-leaves=2", "img"], None) {
            Ok(Command::Bench(a)) => assert_eq!((a.gp_cores, a.gp_leaves), (vec![16, 64, 256], vec![2])),
            other => panic!("{other:?}"),
        }
        assert!(err(&["bench", "--gp-cores", "4,x", "img"]).starts_with("invalid value '4,x' for --gp-cores"));
        assert_eq!(err(&["bench", "--smp", "0", "x"]), "invalid value '0' for --smp: expected a number of cores");
    }

    #[test]
    fn cargo_takes_the_board_then_cargos_arguments_as_they_are() {
        match parse(["cargo", "--board", "rpi4", "--image", "build", "--release", "--bin", "x", "--", "-D"], None) {
            Ok(Command::Cargo { board: Board::Rpi4, variant: Variant::Image, args: Some(a) }) => {
                assert_eq!(a, ["build", "--release", "--bin", "x", "--", "-D"])
            }
            other => panic!("{other:?}"),
        }
        // `--` before the subcommand is allowed; the board defaults to virt.
        match parse(["cargo", "--", "run", "--board", "rpi4"], None) {
            Ok(Command::Cargo { board: Board::Virt, variant: Variant::Qemu, args: Some(a) }) => {
                assert_eq!(a, ["run", "--board", "rpi4"])
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(["cargo-env", "--board=rpi4"], None),
            Ok(Command::Cargo { board: Board::Rpi4, variant: Variant::Qemu, args: None })
        ));
        assert!(err(&["cargo", "--board", "rpi4"]).starts_with("missing cargo command"));
        assert_eq!(err(&["cargo-env", "build"]), "unexpected argument 'build' (see qrun --help)");
        assert_eq!(err(&["cargo", "--board", "pi", "build"]), "invalid value 'pi' for --board: expected virt or rpi4");
    }

    #[test]
    fn help_is_a_command() {
        assert!(matches!(parse(["--help"], None), Ok(Command::Help)));
        assert!(matches!(parse(["run", "-h"], None), Ok(Command::Help)));
    }
}
