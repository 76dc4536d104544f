//! `qrun bench`: boots the bench image on QEMU `virt` with `-icount shift=0` (the figures are
//! exact instruction counts) and then on multi-threaded TCG in real time, keeps each run's
//! console text, parses its `BENCH` lines, and writes `results.md` and PNG charts.
//!
//! Files in the output folder (`bench/` by default): `icount.log`, `mttcg.log`,
//! `mttcg-update.log` (the consoles; see [`boots`]),
//! `meta.txt` (date, command, QEMU, host), `results.md`, `*.png`. `--report-only` rewrites the
//! last two from the first three without booting anything.

mod charts;
mod data;
mod report;

use crate::board::Board;
use crate::qemu::{self, RunConfig};
use crate::toolchain::raw_image;
use data::Data;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `qrun bench`'s arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchArgs {
    /// The bench image (not needed with `report_only`).
    pub elf: Option<PathBuf>,
    /// Where the logs, `results.md` and the charts go.
    pub out: PathBuf,
    /// Cores for the real-time run (scaling goes up to this many).
    pub smp: u32,
    /// Cores for the icount run.
    pub smp_icount: u32,
    /// Only these sections (`costs,scaling,update,mixed,gp`).
    pub sections: Option<String>,
    /// Core counts of the grace-period boots (one icount boot each).
    pub gp_cores: Vec<u32>,
    /// RCU leaf sizes of the grace-period boots (`rcu_leaf=N`; every one at every core count).
    pub gp_leaves: Vec<u32>,
    /// Rewrite the report and charts from the logs of the last run.
    pub report_only: bool,
    /// Seconds before a run is killed.
    pub timeout_secs: u64,
}

impl Default for BenchArgs {
    fn default() -> Self {
        BenchArgs {
            elf: None,
            out: PathBuf::from("bench"),
            smp: 8,
            smp_icount: 4,
            sections: None,
            gp_cores: vec![2, 4, 8],
            gp_leaves: vec![16],
            report_only: false,
            timeout_secs: 900,
        }
    }
}

/// What results.md says about the run besides its figures.
#[derive(Debug, Default, Clone)]
pub struct Meta {
    /// `key: value` lines, in order.
    pub items: Vec<(String, String)>,
}

impl Meta {
    fn get(&self, key: &str) -> &str {
        self.items.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    fn parse(text: &str) -> Meta {
        Meta {
            items: text
                .lines()
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn render(&self) -> String {
        self.items.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
    }
}

/// One boot of the bench image.
struct Boot {
    /// Its log's name (`<name>.log`).
    name: String,
    /// `icount` or `mttcg`.
    mode: &'static str,
    cores: u32,
    /// The sections it runs (before `--sections` narrows them).
    sections: &'static [&'static str],
    /// More kernel command line.
    extra: String,
}

/// The boots: exact instruction counts; real time on `--smp` cores for the costs, the scaling
/// and the mixed workload; and the update side on as many vCPUs as the host has cores (at
/// least 2, at most `--smp`). Latency needs its own boot: idle vCPUs beyond the host's cores
/// still wake for their tick, and one that waits for a host core while the busy ones hold them
/// all holds grace periods up (milliseconds instead of microseconds).
fn boots(args: &BenchArgs, host_cores: usize) -> Vec<Boot> {
    let update_cores = (host_cores as u32).clamp(2, args.smp.max(2));
    let mut v = vec![
        Boot {
            name: "icount".into(),
            mode: "icount",
            cores: args.smp_icount,
            sections: &["costs", "update"],
            extra: String::new(),
        },
        Boot {
            name: "mttcg".into(),
            mode: "mttcg",
            cores: args.smp,
            sections: &["costs", "scaling", "mixed"],
            extra: String::new(),
        },
        Boot {
            name: "mttcg-update".into(),
            mode: "mttcg",
            cores: update_cores,
            sections: &["update"],
            extra: String::new(),
        },
    ];
    // Grace-period cost: one icount boot per core count and leaf size (more cores than the
    // board's interrupt controller supports fail to boot: pass --gp-cores to match).
    for &leaf in &args.gp_leaves {
        for &cores in &args.gp_cores {
            v.push(Boot {
                name: format!("icount-gp-{cores}-leaf{leaf}"),
                mode: "icount",
                cores,
                sections: &["gp"],
                // maxcpus: the leaf size is raised to fit the core limit in 64 leaves.
                extra: format!(" rcu_leaf={leaf} maxcpus={cores}"),
            });
        }
    }
    v
}

/// The host's core count.
fn host_cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// Runs `qrun bench`.
pub fn run(args: &BenchArgs) -> Result<ExitCode, String> {
    let out = &args.out;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    if !args.report_only {
        let elf = args.elf.as_deref().ok_or("missing ELF file: qrun bench [options] ELF (see qrun --help)")?;
        std::fs::metadata(elf).map_err(|e| format!("cannot read ELF file '{}': {e}", elf.display()))?;
        qemu::check_installed()?;
        boot_both(args, elf)?;
    }
    let read = |name: &str| {
        let p = out.join(name);
        std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e} (run qrun bench first)", p.display()))
    };
    let meta = Meta::parse(&read("meta.txt")?);
    let mut d = Data::default();
    for b in boots(args, host_cores()).iter().filter(|b| !b.name.starts_with("icount-gp-")) {
        if let Ok(text) = read(&format!("{}.log", b.name)) {
            d.recs.extend(data::parse_all(&text));
        }
    }
    // Every grace-period boot's log in the folder (core counts and leaf sizes vary by run).
    let mut gp_logs: Vec<String> = std::fs::read_dir(out)
        .map_err(|e| format!("cannot list {}: {e}", out.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("icount-gp-") && n.ends_with(".log"))
        .collect();
    gp_logs.sort();
    for name in gp_logs {
        d.recs.extend(data::parse_all(&read(&name)?));
    }
    if d.recs.is_empty() {
        return Err(format!("no BENCH lines in {}/*.log (run qrun bench first)", out.display()));
    }
    let md = report::results_md(&d, &meta);
    let md_path = out.join("results.md");
    std::fs::write(&md_path, md).map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    let pngs = charts::draw_all(&d, out)?;
    println!("qrun bench: wrote {}", md_path.display());
    for p in pngs {
        println!("qrun bench: wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Boots the image in both modes, keeping each console in `<mode>.log`, and writes meta.txt.
fn boot_both(args: &BenchArgs, elf: &Path) -> Result<(), String> {
    let host_cores = host_cores();
    let mut meta = Meta::default();
    let mut put = |k: &str, v: String| meta.items.push((k.to_string(), v));
    put("date", utc_now());
    put("command", command_line());
    put("host cores", host_cores.to_string());
    put("qemu", qemu_version());
    put("load average before the run", load_average());
    for b in boots(args, host_cores) {
        let wanted: Vec<&str> = b
            .sections
            .iter()
            .copied()
            .filter(|s| args.sections.as_deref().is_none_or(|w| w.split(',').any(|x| x == *s)))
            .collect();
        let log = args.out.join(format!("{}.log", b.name));
        if wanted.is_empty() {
            let _ = std::fs::remove_file(&log);
            continue;
        }
        let icount = b.mode == "icount";
        let cfg = RunConfig {
            board: Board::Virt,
            smp: b.cores,
            icount,
            timeout_secs: args.timeout_secs,
            append: format!(
                "bench-mode={} host-cores={host_cores} bench-sections={}{}",
                b.mode,
                wanted.join(","),
                b.extra
            ),
            ..RunConfig::default()
        };
        let img = raw_image(elf)?;
        let cmd = qemu::qemu_command(&cfg, &img)?;
        let flags: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        put(&format!("qemu flags ({})", b.name), format!("{} {}", qemu::QEMU, flags.join(" ")));
        println!(
            "qrun bench: {} on {} cores ({}; {})",
            b.name,
            b.cores,
            if icount { "exact instruction counts" } else { "real time" },
            wanted.join(", ")
        );
        let started = std::time::Instant::now();
        let r = qemu::run(elf, &cfg, &mut std::io::stdout())?;
        put(&format!("duration ({})", b.name), format!("{:.0} s", started.elapsed().as_secs_f64()));
        std::fs::write(&log, &r.text).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
        if r.exit_code != 0 || !r.text.lines().any(|l| l.starts_with("BENCH done")) {
            return Err(format!(
                "the {} run failed (exit code {}); its console is in {}",
                b.name,
                r.exit_code,
                log.display()
            ));
        }
    }
    let path = args.out.join("meta.txt");
    std::fs::write(&path, meta.render()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The command that asked for this run: `QUIESCENT_BENCH_CMD` (the Makefile's), else qrun's own.
fn command_line() -> String {
    // qrun by its name, not the path of the build that ran it.
    let own: Vec<String> =
        std::env::args().enumerate().map(|(i, a)| if i == 0 { "qrun".to_string() } else { a }).collect();
    match std::env::var("QUIESCENT_BENCH_CMD") {
        Ok(c) if !c.is_empty() => format!("{c} (runs: {})", own.join(" ")),
        _ => own.join(" "),
    }
}

/// The host's 1, 5 and 15-minute load averages (other work on the host slows real-time rows).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `qemu-system-aarch64 --version`'s first line.
fn qemu_version() -> String {
    std::process::Command::new(qemu::QEMU)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM UTC` (the civil calendar, after H. Hinnant).
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::{format_utc, Meta};

    #[test]
    fn dates_are_civil() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400 + 3600 * 13 + 60 * 7), "2000-02-29 13:07 UTC");
        assert_eq!(format_utc(1_798_675_200), "2026-12-31 00:00 UTC");
    }

    #[test]
    fn meta_round_trips() {
        let m = Meta { items: vec![("date".into(), "x".into()), ("qemu flags (icount)".into(), "a: b".into())] };
        let back = Meta::parse(&m.render());
        assert_eq!(back.get("qemu flags (icount)"), "a: b");
        assert_eq!(back.get("missing"), "");
    }
}
