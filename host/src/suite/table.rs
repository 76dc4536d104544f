//! The suite's table: which images run, in which configurations (core counts, EL2 entry,
//! command lines, builds), on which board, and what each run must show.

use super::checks::{beyond_limit, whole_lines};
use crate::board::Board;
use crate::qemu::{Gic, RunConfig};

/// What a run must show to count as passed.
pub enum Expect {
    /// Every case passes and the image reports its summary.
    Pass,
    /// The image must exit non-zero and print this text (a deliberate failure or fault).
    Fail(&'static str),
    /// The board must refuse the boot: exit with its boot-check code (103, `EXIT_BOOT_CHECK`)
    /// and print this text.
    Refused(&'static str),
    /// The runner must kill the image after `secs` and say this (a deliberate hang).
    Timeout(u64, &'static str),
    /// Every case passes, and the output passes this host-side check (given the core count).
    PassAnd(&'static str, fn(&str, u32) -> Result<(), String>),
    /// The torture image ends with `End of test: SUCCESS` and exit code 0.
    TortureSucceeds,
    /// The torture image (built with an injected bug) ends with `End of test: FAILURE`, a
    /// non-zero exit, and at least one of these failure reports (the counter that must catch it).
    TortureCatches(&'static [&'static str]),
}

/// How a run's image is built.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Build {
    /// A test image (`cargo test --no-run`, the test profile: debug assertions on).
    Test,
    /// The `torture` binary, release profile (what users run: `rcu_read_lock` is no instruction).
    Release,
    /// The `torture` binary, dev profile (debug assertions on).
    Debug,
    /// The `torture` binary, release profile, with the `inject-<name>` fault injection.
    Inject(&'static str),
}

/// One boot of one test image.
pub struct Run {
    /// The image: a test target, or the `torture` binary.
    pub bin: &'static str,
    /// How the image is built.
    pub build: Build,
    /// Interrupts may land between any two instructions (see qemu::RunConfig::precise_irq).
    pub precise_irq: bool,
    /// Cores (virt; the Pi 4 always has 4).
    pub smp: u32,
    /// Enter at EL2 (virt).
    pub el2: bool,
    /// Enter at EL1 (rpi4: cores without EL2 and EL3).
    pub el1: bool,
    /// The interrupt controller (virt): GICv2 up to 8 cores, GICv3 beyond, unless chosen.
    pub gic: Gic,
    /// Seconds before the runner kills the run, if not the expectation's default.
    pub timeout: Option<u64>,
    /// The kernel command line.
    pub append: &'static str,
    /// What the run must show.
    pub expect: Expect,
}

const fn pass(bin: &'static str, smp: u32) -> Run {
    Run {
        precise_irq: false,
        bin,
        build: Build::Test,
        smp,
        el2: false,
        el1: false,
        gic: Gic::Auto,
        timeout: None,
        append: "",
        expect: Expect::Pass,
    }
}

/// `bin` on GICv3 at `smp` cores.
fn v3(bin: &'static str, smp: u32) -> Run {
    Run { gic: Gic::V3, append: "expect-gic=3", ..pass(bin, smp) }
}

/// Cores of the many-core runs: QEMU virt with GICv3, 16 cores per cluster, so 4 clusters (the
/// SGI target lists and MPIDR-to-core mapping go past one Aff1 value), on 2 host cores.
const MANY: u32 = 64;
/// The largest boots: 128 (multi-threaded TCG, past 123 cores, so the redistributors of the last
/// ones sit in QEMU's second, high region), 256 and 512 (single-threaded TCG, see
/// `qemu::SINGLE_THREAD_ABOVE`; 512 is QEMU virt's limit and MAX_CPUS). Measured on the 2-core
/// build host, bring-up only: 256 cores 4-6 s, 512 cores 22-35 s. (512 used to starve core 0
/// after the memory report: idle cores took the tick, see `smp::tick`.)
const MOST: [u32; 3] = [128, 256, 512];
/// The big boot checks bring-up only: the cases that hand work to every core take minutes there.
const BRING_UP_CASES: &str =
    "expect-gic=3 test-filter=every_listed_core_comes_online,the_gic_is_the_one_the_machine_has";

/// The many-core runs (`qrun suite --only many`): GICv3 at 64 cores for the per-core and RCU
/// images and the short torture, and bring-up at 128, 256 and 512 cores.
fn many_core_runs() -> Vec<Run> {
    vec![
        Run { timeout: Some(120), ..v3("boot", MANY) },
        Run { timeout: Some(120), ..v3("percpu", MANY) },
        Run { timeout: Some(180), ..v3("rcu", MANY) },
        Run { timeout: Some(180), ..v3("rwsem", MANY) },
        Run { timeout: Some(180), ..v3("percpu_ref", MANY) },
        Run { gic: Gic::V3, timeout: Some(180), ..torture(Build::Release, MANY) },
        // Bring-up (every core online, each named if not) past the first redistributor region.
        Run { timeout: Some(240), append: BRING_UP_CASES, ..v3("boot", MOST[0]) },
        Run { timeout: Some(180), append: BRING_UP_CASES, ..v3("boot", MOST[1]) },
        Run { timeout: Some(240), append: BRING_UP_CASES, ..v3("boot", MOST[2]) },
    ]
}

/// Seconds each torture run in the suite lasts (`make torture` is the long soak).
const SHORT_TORTURE: &str = "duration=10";

/// The short torture (every torture at once) on `smp` cores, built as `build`.
fn torture(build: Build, smp: u32) -> Run {
    torture_with(build, smp, "")
}

/// The short torture with `extra` on the command line.
fn torture_with(build: Build, smp: u32, extra: &str) -> Run {
    let append: &'static str = Box::leak(format!("torture=all {SHORT_TORTURE}{extra}").into_boxed_str());
    Run { bin: "torture", build, append, expect: Expect::TortureSucceeds, ..pass("torture", smp) }
}

/// The short torture of `which` (rcu, lock or ref) built with fault injection `bug`: it must
/// report FAILURE through one of `caught_by`.
fn injected(bug: &'static str, which: &str, caught_by: &'static [&'static str]) -> Run {
    // Up to 30 s, though the run ends a second after the first failure it reports (typically
    // within 1 to 5 s of the start).
    let append: &'static str = Box::leak(format!("torture={which} duration=30").into_boxed_str());
    Run {
        bin: "torture",
        build: Build::Inject(bug),
        append,
        expect: Expect::TortureCatches(caught_by),
        ..pass("torture", 4)
    }
}

/// Each injected bug and the counter that must catch it.
fn fault_injection_runs() -> Vec<Run> {
    vec![
        // A grace period that does not wait for one core: its readers see objects retired
        // more than one grace period ago.
        injected(
            "gp-skip-core",
            "rcu",
            &["rcu-torture: !!! too-short grace period", "rcu-torture: !!! use-after-free"],
        ),
        // Interrupt entry that leaves the core in its extended quiescent state (review hazard
        // 1 reintroduced): the tick's and IPI readers on cores in blocking waits are unprotected.
        injected("irq-eqs", "rcu", &["rcu-torture: !!! too-short grace period", "rcu-torture: !!! use-after-free"]),
        // percpu_down_write that does not wait for the readers to drain.
        injected("rwsem-no-drain", "lock", &["percpu_rwsem_lock-torture: !!! exclusion violated"]),
        // percpu_ref folding its counters without a grace period: in-flight gets and puts are
        // lost, so release comes early (while references are held) or twice, or never.
        injected(
            "ref-fold-no-gp",
            "ref",
            &[
                "percpu_ref-torture: !!! release twice",
                "percpu_ref-torture: !!! use after release",
                "percpu_ref-torture: !!! confirm after release",
                "percpu_ref-torture: !!! release missing",
                "percpu_ref-torture: !!! misuse reports",
            ],
        ),
    ]
}

/// Image `bin` booted with `key=kind` on its command line; must exit non-zero showing `text`.
fn fails_with(bin: &'static str, key: &str, kind: &str, text: &'static str) -> Run {
    let append: &'static str = Box::leak(format!("{key}={kind}").into_boxed_str());
    Run { append, expect: Expect::Fail(text), ..pass(bin, 2) }
}

/// The fault image, made to take fault `kind`.
fn fault(kind: &str, text: &'static str) -> Run {
    fails_with("fault", "fault", kind, text)
}

/// The RCU misuse image, made to commit `kind`.
fn misuse(kind: &str, text: &'static str) -> Run {
    fails_with("rcu_misuse", "misuse", kind, text)
}

/// The console check on 4 cores, and the runner's own failure paths (a failing case on core 1,
/// a hang on core 1) on `smp` cores.
fn console_and_runner(smp: u32) -> Vec<Run> {
    vec![
        Run { expect: Expect::PassAnd("console::host_sees_whole_lines", whole_lines), ..pass("console", 4) },
        Run {
            expect: Expect::Fail("test selftest::deliberately_failing_case ... FAILED: 1 + 1 == 3 (deliberate)"),
            ..pass("selftest", smp)
        },
        Run {
            expect: Expect::Timeout(8, "while running hang::core_1_never_finishes; cores not finished: 1"),
            ..pass("hang", smp)
        },
    ]
}

/// The suite for QEMU `virt`. Core counts: 4 is the demo's, 1 catches code that assumes a peer,
/// 8 is the compile-time maximum.
fn virt_runs() -> Vec<Run> {
    vec![
        pass("boot", 4),
        pass("boot", 1),
        Run { append: "expect-gic=2", ..pass("boot", 8) },
        // GICv3 at a small count, at EL1 and at EL2 (where the boot code must enable the
        // system-register interface for EL1: ICC_SRE_EL2).
        v3("boot", 4),
        Run { el2: true, append: "expect-gic=3 expect-entry-el=2", ..v3("boot", 4) },
        v3("irq", 4),
        // More cores than the run may use: the extra ones are named and left off.
        Run {
            append: "maxcpus=2",
            expect: Expect::PassAnd("boot::cores_beyond_the_limit_are_reported", beyond_limit),
            ..pass("boot", 4)
        },
        Run { el2: true, append: "expect-entry-el=2", ..pass("boot", 4) },
        Run { el2: true, append: "expect-entry-el=2", ..pass("boot", 1) },
        pass("percpu", 4),
        pass("percpu", 1),
        pass("mmu", 4),
        pass("mmu", 1),
        pass("irq", 4),
        pass("irq", 1),
        // TCG takes interrupts only between translation blocks; this run lets them land inside
        // this_cpu_add's ldr/add/str, so the restartable-sequence fix-up is really exercised.
        Run { precise_irq: true, ..pass("irq", 2) },
        pass("idle", 4),
        pass("idle", 1),
        pass("rcu", 4),
        pass("rcu", 1),
        // RCU's combining tree with 2-core leaves: 4 leaves under the root instead of one leaf
        // (maxcpus keeps the leaf size from being raised to fit a larger MAX_CPUS in 64 leaves).
        Run { append: "rcu_leaf=2 maxcpus=8", ..pass("rcu", 8) },
        Run { append: "rcu_leaf=1 maxcpus=4", ..pass("idle", 4) },
        pass("rwsem", 4),
        pass("rwsem", 1),
        pass("percpu_ref", 4),
        pass("percpu_ref", 1),
        pass("litmus", 4),
        misuse("qs-in-reader", "quiescent state inside RCU read-side critical section on core 0"),
        misuse("sync-in-reader", "synchronize_rcu inside RCU read-side critical section on core 0"),
        misuse("idle-in-reader", "quiescent state inside RCU read-side critical section on core 1"),
        misuse("unbalanced-unlock", "rcu_read_unlock without rcu_read_lock on core 0"),
        misuse("use-after-free", "RCU list: reader reached a freed node"),
        misuse("percpu-up-read-unbalanced", "percpu_up_read without percpu_down_read"),
        misuse("percpu-up-write-not-held", "percpu_up_write by core 0, which does not hold it"),
        misuse("percpu-down-write-in-reader", "percpu_down_write inside RCU read-side critical section on core 0"),
        misuse(
            "rcu-barrier-in-callback",
            "rcu_barrier called from an RCU callback on core 0 (it would wait for itself)",
        ),
        misuse("percpu-ref-wait-in-callback", "percpu_ref: waiting for a mode switch from an RCU callback on core 0"),
        misuse(
            "percpu-ref-switch-in-reader",
            "percpu_ref_switch_to_percpu inside RCU read-side critical section on core 0",
        ),
        misuse("percpu-ref-reinit-in-reader", "percpu_ref_reinit inside RCU read-side critical section on core 0"),
        misuse("synchronize-rcu-in-irq", "synchronize_rcu in interrupt context on core 1"),
        misuse("reader-in-quiescent-wait", "rcu_read_lock while RCU is not watching core 0 (extended quiescent state)"),
        misuse(
            "percpu-ref-get-in-quiescent-wait",
            "percpu_ref_get while RCU is not watching core 0 (extended quiescent state)",
        ),
        fault("unmapped", "EXCEPTION on core 0: data abort (read) translation fault"),
        fault("undefined", "EXCEPTION on core 0: unknown reason / undefined instruction"),
        fault("write-text", "EXCEPTION on core 0: data abort (write) permission fault"),
        fault("exec-data", "EXCEPTION on core 0: instruction abort permission fault"),
        fault("stack-overflow", "stack overflow on core 1"),
        fault("irq-stack-overflow", "exception stack overflow on core 1"),
        fault("percpu-no-area", "per-cpu area of core 2 asked for: only cores 0..2 have one"),
        // The short torture in the build users run and in the debug build, then each injected
        // bug, which it must catch.
        torture(Build::Release, 4),
        torture(Build::Debug, 4),
        // RCU's combining tree with 2-core leaves (two leaves and the root on 4 cores).
        torture_with(Build::Release, 4, " rcu_leaf=2 maxcpus=4"),
    ]
    .into_iter()
    .chain(fault_injection_runs())
    .chain(console_and_runner(2))
    .chain(many_core_runs())
    .collect()
}

/// The suite for QEMU `raspi4b` (the Pi 4 board build): always 4 cores, always entered at EL2 (the
/// firmware's and QEMU's way), so the 1/8-core and `--el2` variants of `virt_runs` do not apply.
/// The kernel command line reaches the image through a minimal DTB the runner passes with `-dtb`
/// (dtb.rs), as cmdline.txt does on the Pi, so the bootarg-driven images run here too.
fn rpi4_runs() -> Vec<Run> {
    let on4 = |r: Run| Run { smp: 4, ..r };
    vec![
        pass("boot", 4),
        Run { append: "expect-entry-el=2", ..pass("boot", 4) },
        // The spin-table release path names a core that never comes up: `hold-core=3` makes the
        // board leave core 3 parked; the boot image's online check fails and the report is seen.
        Run {
            append: "hold-core=3",
            expect: Expect::Fail("core 3 (MPIDR 0x3) did not come online within 2000 ms"),
            ..pass("boot", 4)
        },
        // The board's boot checks, each triggered: entry at EL1 (cores without EL2 and EL3,
        // as after a stub that already dropped there), and RAM smaller than the image limit
        // (`mem=`: QEMU rewrites every /memory node of a -dtb to its own 0x3C00_0000).
        Run {
            el1: true,
            expect: Expect::Refused(
                "entered at EL1, not EL2: a stub other than the firmware's started the image (armstub= in config.txt?)",
            ),
            ..pass("boot", 4)
        },
        Run {
            append: "mem=64M",
            expect: Expect::Refused(
                "RAM ends at 0x4000000 (mem= on the command line), below the image limit 0x8000000",
            ),
            ..pass("boot", 4)
        },
        // The board's own signals: the ACT LED, the armstub checks' verdicts, where RAM ends
        // (no DTB: the default split; QEMU's /memory; mem= between the image limit and it).
        pass("rpi4", 4),
        Run { append: "expect-ram-end=0x3c000000 expect-ram-source=memory", ..pass("rpi4", 4) },
        Run { append: "mem=0x10000000 expect-ram-end=0x10000000 expect-ram-source=mem", ..pass("rpi4", 4) },
        pass("percpu", 4),
        pass("mmu", 4),
        pass("irq", 4),
        pass("idle", 4),
        pass("rcu", 4),
        pass("rwsem", 4),
        pass("percpu_ref", 4),
        on4(misuse("qs-in-reader", "quiescent state inside RCU read-side critical section on core 0")),
        on4(misuse("use-after-free", "RCU list: reader reached a freed node")),
        on4(fault("unmapped", "EXCEPTION on core 0: data abort (read) translation fault")),
        on4(fault("undefined", "EXCEPTION on core 0: unknown reason / undefined instruction")),
        on4(fault("write-text", "EXCEPTION on core 0: data abort (write) permission fault")),
        on4(fault("exec-data", "EXCEPTION on core 0: instruction abort permission fault")),
        on4(fault("stack-overflow", "stack overflow on core 1")),
        on4(fault("irq-stack-overflow", "exception stack overflow on core 1")),
        torture(Build::Release, 4),
    ]
    .into_iter()
    .chain(console_and_runner(4))
    .collect()
}

/// Whether `--only NAME` keeps run `r`: its image's name, `many` (more than 8 cores) or
/// `gicv3` (every GICv3 run).
pub fn selected(r: &Run, only: Option<&str>) -> bool {
    match only {
        None => true,
        Some("many") => r.smp > 8,
        Some("gicv3") => r.gic.version_for(r.smp) == Ok(3),
        Some(name) => name == r.bin,
    }
}

/// The suite's runs for `board`.
pub fn runs(board: Board) -> Vec<Run> {
    match board {
        Board::Virt => virt_runs(),
        Board::Rpi4 => rpi4_runs(),
    }
}

impl Expect {
    /// Seconds the run may take before the runner kills it.
    pub fn timeout_secs(&self) -> u64 {
        match self {
            Expect::Timeout(t, _) => *t,
            // The short torture runs 10 s; the rest is boot, the final checks, and a loaded host.
            Expect::TortureSucceeds | Expect::TortureCatches(_) => 120,
            _ => RunConfig::default().timeout_secs,
        }
    }
}

impl Run {
    /// How QEMU boots this run on `board`.
    pub fn config(&self, board: Board, verbose: bool) -> RunConfig {
        RunConfig {
            precise_irq: self.precise_irq,
            timeout_secs: self.timeout.unwrap_or(self.expect.timeout_secs()),
            board,
            smp: self.smp,
            el2: self.el2,
            el1: self.el1,
            gic: self.gic,
            append: self.append.to_string(),
            verbose,
            ..RunConfig::default()
        }
    }

    /// The run's configuration in words (`rcu on virt, 1 core`, `torture on rpi4, 4 cores,
    /// release build [torture=all duration=10]`), heading its output and naming its failures.
    pub fn label(&self, board: Board) -> String {
        let build = match self.build {
            Build::Test => String::new(),
            Build::Release => ", release build".into(),
            Build::Debug => ", debug build".into(),
            Build::Inject(bug) => format!(", release build with inject-{bug}"),
        };
        let gic = match (board, self.gic.version_for(self.smp)) {
            (Board::Virt, Ok(3)) => ", GICv3",
            _ => "",
        };
        format!(
            "{} on {board}, {} core{}{gic}{}{build}{}",
            self.bin,
            self.smp,
            if self.smp == 1 { "" } else { "s" },
            if self.el2 {
                ", entered at EL2"
            } else if self.el1 {
                ", entered at EL1"
            } else if self.precise_irq {
                ", one instruction per TB"
            } else {
                ""
            },
            if self.build == Build::Test { String::new() } else { format!(" [{}]", self.append) }
        )
    }
}
