//! Choosing an image's runs under a libtest selection (`cargo test -- NAME`, `--exact`,
//! `--list`), and listing its cases.

use super::table::{Expect, Run};
use crate::protocol::{classify, Line, Selection};
use crate::qemu::{self, RunConfig};
use std::path::Path;

/// How one run of the table boots under a selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Pass the selection on to the image, which then runs only the selected cases.
    pub filter_image: bool,
    /// Run the run's host-side check (a `PassAnd`'s).
    pub run_check: bool,
}

impl Plan {
    /// The run as the table has it: every case, every check.
    pub const WHOLE: Plan = Plan { filter_image: false, run_check: true };
    /// Only the selected cases, no host check.
    const FILTERED: Plan = Plan { filter_image: true, run_check: false };
}

/// How run `r` of an image whose cases are `cases` boots under `sel`; `None` skips it.
///
/// A plain run hands the filter to the image. A host check reads every case's output, so a
/// selected check boots the whole image and an unselected one is left out. A run that expects a
/// failure, a hang or a torture verdict is about the whole image: it runs whole when any of the
/// image's cases is selected.
pub fn plan(r: &Run, cases: &[String], sel: &Selection) -> Option<Plan> {
    if !sel.is_filtered() {
        return Some(Plan::WHOLE);
    }
    let any_case = cases.iter().any(|c| sel.matches(c));
    match r.expect {
        Expect::Pass => any_case.then_some(Plan::FILTERED),
        Expect::PassAnd(check, _) if sel.matches(check) => Some(Plan::WHOLE),
        Expect::PassAnd(..) => any_case.then_some(Plan::FILTERED),
        _ => any_case.then_some(Plan::WHOLE),
    }
}

/// The host checks of `runs`, by name, once each.
pub fn checks(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        if let Expect::PassAnd(name, _) = r.expect {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// Every case of `elf`, as the image lists them when booted as `cfg` with `test-list=1`.
pub fn image_cases(elf: &Path, cfg: &RunConfig) -> Result<Vec<String>, String> {
    let list = Selection { list: true, ..Selection::default() };
    let cfg = RunConfig { append: list.boot_args(&cfg.append), verbose: false, ..cfg.clone() };
    let res = qemu::run(elf, &cfg, &mut std::io::sink())?;
    if res.exit_code != 0 {
        return Err(format!("listing the cases of {} failed (exit {})", elf.display(), res.exit_code));
    }
    let cases = res.text.lines().filter_map(|l| match classify(l) {
        Line::Listed(name) => Some(name.to_string()),
        _ => None,
    });
    Ok(cases.collect())
}

/// Prints the names as libtest's `--list` does.
pub fn print_list(names: &[String]) {
    for n in names {
        println!("{n}: test");
    }
    println!();
    println!("{} test{}, 0 benchmarks", names.len(), if names.len() == 1 { "" } else { "s" });
}

#[cfg(test)]
mod tests {
    use super::{plan, Plan};
    use crate::board::Board;
    use crate::protocol::Selection;
    use crate::suite::table::{runs, Expect, Run};

    fn find(bin: &str, f: impl Fn(&Run) -> bool) -> Run {
        runs(Board::Virt).into_iter().find(|r| r.bin == bin && f(r)).expect("run in the table")
    }

    fn filter(f: &str) -> Selection {
        Selection { filters: vec![f.into()], ..Selection::default() }
    }

    #[test]
    fn no_filter_boots_every_run_whole() {
        let r = find("selftest", |_| true);
        assert_eq!(plan(&r, &[], &Selection::default()), Some(Plan::WHOLE));
    }

    #[test]
    fn plain_runs_hand_the_filter_to_the_image() {
        let r = find("rcu", |_| true);
        let cases = vec!["rcu::grace_period_completes".to_string(), "rcu::stall".to_string()];
        assert_eq!(plan(&r, &cases, &filter("grace")), Some(Plan::FILTERED));
        assert_eq!(plan(&r, &cases, &filter("percpu")), None);
    }

    #[test]
    fn host_checks_need_the_whole_image() {
        let r = find("console", |r| matches!(r.expect, Expect::PassAnd(..)));
        let cases = vec!["console::concurrent_lines_from_all_cores".to_string()];
        assert_eq!(plan(&r, &cases, &filter("whole_lines")), Some(Plan::WHOLE));
        assert_eq!(plan(&r, &cases, &filter("concurrent")), Some(Plan::FILTERED));
    }

    #[test]
    fn expected_failures_run_whole_or_not_at_all() {
        let r = find("selftest", |_| true);
        let cases = vec!["selftest::passing_case".to_string(), "selftest::deliberately_failing_case".to_string()];
        assert_eq!(plan(&r, &cases, &filter("passing")), Some(Plan::WHOLE));
        assert_eq!(plan(&r, &cases, &filter("grace")), None);
    }
}
