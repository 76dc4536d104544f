//! `qrun suite`: every on-target test image in every configuration, then the host's unit tests;
//! and `cargo test`'s runner, which boots one test image in the suite's configurations.
//!
//! * `table`: which images run, in which configurations, expecting what;
//! * `checks`: the host-side checks of an image's output and matching results to expectations;
//! * `select`: what a libtest selection (`cargo test -- NAME`, `--list`) boots;
//! * `cargo`: building the images, and the host crate's unit tests;
//! * `compile_fail`: the snippets that must not compile against the firmware crate;
//! * `card`: the Raspberry Pi 4 SD-card image, built and read back, its kernel booted.

mod card;
mod cargo;
mod checks;
mod compile_fail;
#[cfg(test)]
mod link;
mod select;
mod table;

use crate::board::Board;
use crate::protocol::Selection;
use crate::qemu;
use checks::Tally;
use select::Plan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use table::{Build, Run};

pub use cargo::repo_root;
pub use select::{image_cases as list_cases, print_list};

/// Boots `elf` as run `r` on board `b` as `plan` says and checks it against the run's
/// expectation.
fn execute(r: &Run, elf: &Path, b: Board, plan: Plan, sel: &Selection, verbose: bool, t: &mut Tally) {
    let mut cfg = r.config(b, verbose);
    if plan.filter_image {
        cfg.append = sel.boot_args(&cfg.append);
    }
    let label = r.label(b);
    println!("== {label}");
    let res = match qemu::run(elf, &cfg, &mut std::io::stdout()) {
        Ok(res) => res,
        Err(e) => {
            println!("test {}::boot ... FAILED: {e}", r.bin);
            t.failed += 1;
            t.failures.push(format!("{label}: {e}"));
            return;
        }
    };
    checks::judge(r, &res, b, &label, plan.run_check, t);
}

/// Whether `elf` is a test image the suite knows (`<bin>-<hash>` in `deps/`): its runs on
/// `board` (`None` if it is not).
fn image_runs(elf: &Path, board: Board) -> Option<Vec<Run>> {
    let name = elf.file_name()?.to_str()?;
    let (bin, hash) = name.rsplit_once('-')?;
    if hash.len() != 16 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let runs: Vec<Run> = table::runs(board).into_iter().filter(|r| r.bin == bin && r.build == Build::Test).collect();
    (!runs.is_empty()).then_some(runs)
}

/// `cargo test`'s runner: if `elf` is a test image the suite knows, runs it in every
/// configuration the suite lists for `board`, with the same expectations, as far as `sel`
/// selects (or lists its cases), and returns the exit code; otherwise `None` (boot it once,
/// plainly).
pub fn run_image(elf: &Path, board: Board, sel: &Selection, verbose: bool) -> Option<ExitCode> {
    let runs = image_runs(elf, board)?;
    Some(match run_selected(elf, board, &runs, sel, verbose) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("qrun: {e}");
            ExitCode::from(1)
        }
    })
}

fn run_selected(elf: &Path, board: Board, runs: &[Run], sel: &Selection, verbose: bool) -> Result<ExitCode, String> {
    // Choosing runs needs the image's case names: one quick boot that lists them.
    let cases = match runs.first() {
        Some(first) if sel.list || sel.is_filtered() => select::image_cases(elf, &first.config(board, false))?,
        _ => Vec::new(),
    };
    if sel.list {
        let names: Vec<String> = cases.into_iter().chain(select::checks(runs)).filter(|n| sel.matches(n)).collect();
        select::print_list(&names);
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = Tally::default();
    let mut skipped = 0;
    for r in runs {
        match select::plan(r, &cases, sel) {
            Some(plan) => execute(r, elf, board, plan, sel, verbose, &mut t),
            None => skipped += 1,
        }
    }
    if sel.is_filtered() {
        let selected = cases.iter().filter(|c| sel.matches(c)).count();
        println!(
            "filter {}: {selected} of {} cases selected; {skipped} of {} configurations skipped",
            sel.filters.join(" "),
            cases.len(),
            runs.len()
        );
    }
    println!("{} passed, {} failed", t.passed, t.failed);
    Ok(if t.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A host-side part of the suite: runs from the repository's root, returns (passed, failed).
type HostPart = fn(&Path) -> (u32, u32);

/// `qrun suite`: every image in every configuration for each of `boards`, then the host's unit
/// tests, the loom models, the crates on the host machine and the compile-fail snippets. `only`
/// keeps the runs of one image (or `host`: only the unit tests; `model`: only the loom models;
/// `hosted`: only the crates on the host machine; `compile-fail`: only the
/// snippets; `many`: the runs on more than 8 cores; `gicv3`: every GICv3 run).
pub fn run(boards: &[Board], only: Option<&str>, verbose: bool) -> ExitCode {
    let root = cargo::repo_root();
    let mut total = Tally::default();
    // The host-only parts need no firmware images.
    let card = (only.is_none() && boards.contains(&Board::Rpi4)) || only == Some("card");
    let boards =
        if matches!(only, Some("host" | "model" | "hosted" | "compile-fail" | "card")) { &[][..] } else { boards };
    for &b in boards {
        let images = match cargo::build_tests(&root, b) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("qrun: {e}");
                println!("test {b}::build ... FAILED: {e}");
                total.failures.push(e);
                total.failed += 1;
                continue;
            }
        };
        let mut bins: BTreeMap<Build, Result<PathBuf, String>> = BTreeMap::new();
        for r in table::runs(b) {
            if !table::selected(&r, only) {
                continue;
            }
            let elf = if r.build == Build::Test {
                match images.get(r.bin) {
                    Some(e) => e.clone(),
                    None => {
                        println!("test {}::image ... FAILED: no test image named {}", r.bin, r.bin);
                        total.failed += 1;
                        continue;
                    }
                }
            } else {
                match bins.entry(r.build).or_insert_with(|| cargo::build_bin(&root, b, r.bin, r.build)) {
                    Ok(e) => e.clone(),
                    Err(e) => {
                        println!("test {}::build ... FAILED: {e}", r.bin);
                        total.failures.push(e.clone());
                        total.failed += 1;
                        continue;
                    }
                }
            };
            let mut t = Tally::default();
            execute(&r, &elf, b, Plan::WHOLE, &Selection::default(), verbose, &mut t);
            total.add(t);
        }
    }
    if card {
        total.add(card::run(&root, verbose));
    }
    // The host-side parts: (`--only` name, heading, what a failure is called, the run).
    let host_parts: [(&str, &str, &str, HostPart); 4] = [
        ("host", "host unit tests (host/)", "host unit tests", cargo::host_tests),
        ("model", "loom models (model/)", "loom models", cargo::model_tests),
        ("hosted", "the crates on the host machine (hosted/, doc examples)", "hosted tests", cargo::hosted_tests),
        ("compile-fail", "compile-fail snippets (tests/compile-fail/)", "compile-fail snippets", compile_fail::run),
    ];
    for (name, heading, what, run) in host_parts {
        if only.is_none() || only == Some(name) {
            println!("== {heading}");
            let (p, f) = run(&root);
            total.passed += p;
            total.failed += f;
            if f > 0 {
                total.failures.push(what.into());
            }
        }
    }
    if !total.failures.is_empty() {
        println!("\nfailures:");
        for f in &total.failures {
            println!("    {f}");
        }
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
