//! The boards an image is built for and booted on, and how cargo builds the firmware for each:
//! the one place that maps a board to its cargo features and target directory. The Makefile and
//! the scripts ask for it with `qrun cargo` (runs cargo so) and `qrun cargo-env` (prints it for
//! the shell); the suite builds through [`Board::cargo`].

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

/// A board: selects the firmware's cargo features and QEMU's machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Board {
    /// QEMU's `virt` machine (cortex-a72, PSCI, any core count).
    #[default]
    Virt,
    /// The Raspberry Pi 4 (QEMU's `raspi4b`: 4 cores, spin tables, entered at EL2).
    Rpi4,
}

impl Board {
    /// Every board, in the order the suite runs them.
    pub const ALL: [Board; 2] = [Board::Virt, Board::Rpi4];

    /// The name used on the command line, in `BOARD=` and in the suite's labels.
    pub fn name(self) -> &'static str {
        match self {
            Board::Virt => "virt",
            Board::Rpi4 => "rpi4",
        }
    }
}

/// Which build of the firmware for a board. Each has a target directory of its own, so one never
/// replaces another's artifacts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Variant {
    /// The build QEMU boots (`cargo run`, `cargo test`, `make run`): a run ends with its exit
    /// code through semihosting.
    #[default]
    Qemu,
    /// The build for the board itself (`make image`, `make sdcard`): rpi4 without semihosting, so
    /// a run ends by parking. virt's is the QEMU build.
    Image,
    /// The suite's fault-injection builds (`--cfg quiescent_inject=...`).
    Inject,
}

/// How cargo builds the firmware for one board and variant: the flags that go after cargo's
/// subcommand and the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CargoBuild {
    /// The board's features: none for virt (the default features), so plain `cargo build` and
    /// `cargo test` mean virt.
    pub flags: &'static [&'static str],
    /// The target directory (absolute).
    pub target_dir: PathBuf,
    /// Variables to set (`Some`) or to clear (`None`): `CARGO_TARGET_DIR`, `QUIESCENT_BOARD`
    /// (so that cargo's runner boots the board's machine), `QUIESCENT_NO_SEMIHOSTING`.
    pub vars: Vec<(&'static str, Option<String>)>,
}

impl Board {
    /// The cargo build of the firmware for this board, with target directories under `root` (the
    /// repository): `target/` for virt, `target/rpi4/` for rpi4, `target/rpi4-hw/` for rpi4's
    /// image without semihosting, `target/inject/` and `target/rpi4-inject/` for fault
    /// injection. Switching boards then rebuilds nothing, and plain `cargo` keeps meaning virt.
    pub fn cargo(self, root: &Path, variant: Variant) -> CargoBuild {
        let (flags, dir): (&'static [&'static str], &str) = match (self, variant) {
            (Board::Virt, Variant::Qemu | Variant::Image) => (&[], "target"),
            (Board::Virt, Variant::Inject) => (&[], "target/inject"),
            (Board::Rpi4, v) => (
                &["--no-default-features", "--features", "board-rpi4"],
                match v {
                    Variant::Qemu => "target/rpi4",
                    Variant::Image => "target/rpi4-hw",
                    Variant::Inject => "target/rpi4-inject",
                },
            ),
        };
        let target_dir = root.join(dir);
        let no_semihosting = (self == Board::Rpi4 && variant == Variant::Image).then(|| "1".to_string());
        let vars = vec![
            ("CARGO_TARGET_DIR", Some(target_dir.display().to_string())),
            ("QUIESCENT_BOARD", Some(self.name().to_string())),
            ("QUIESCENT_NO_SEMIHOSTING", no_semihosting),
        ];
        CargoBuild { flags, target_dir, vars }
    }
}

impl CargoBuild {
    /// `cargo SUBCOMMAND <the board's flags>` in this environment; add the rest of the arguments.
    pub fn command(&self, subcommand: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.arg(subcommand).args(self.flags);
        for (k, v) in &self.vars {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// The same for a shell to `eval`: the variables exported (or unset), and the flags as
    /// `CARGO_BOARD_FLAGS`, each value in single quotes.
    pub fn shell(&self) -> String {
        let q = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
        let mut out = String::new();
        for (k, v) in &self.vars {
            match v {
                Some(v) => out.push_str(&format!("export {k}={}\n", q(v))),
                None => out.push_str(&format!("unset {k}\n")),
            }
        }
        out.push_str(&format!("CARGO_BOARD_FLAGS={}\n", q(&self.flags.join(" "))));
        out
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Board {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Board::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| format!("unknown board '{s}' (expected virt or rpi4)"))
    }
}

#[cfg(test)]
mod tests {
    use super::{Board, Variant};
    use std::path::Path;

    #[test]
    fn boards_parse_by_name_and_print_back() {
        assert_eq!("virt".parse(), Ok(Board::Virt));
        assert_eq!("rpi4".parse(), Ok(Board::Rpi4));
        for b in Board::ALL {
            assert_eq!(b.to_string().parse(), Ok(b));
        }
    }

    #[test]
    fn unknown_boards_are_refused() {
        assert!("raspi4b".parse::<Board>().is_err());
        assert!("Virt".parse::<Board>().is_err());
        assert!("".parse::<Board>().is_err());
    }

    #[test]
    fn each_board_and_variant_builds_into_its_own_directory() {
        let root = Path::new("/r");
        let mut dirs = Vec::new();
        for b in Board::ALL {
            for v in [Variant::Qemu, Variant::Image, Variant::Inject] {
                dirs.push(b.cargo(root, v).target_dir);
            }
        }
        dirs.dedup(); // virt's image is its QEMU build
        let mut unique = dirs.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(dirs.len(), unique.len(), "{dirs:?}");
        assert_eq!(Board::Virt.cargo(root, Variant::Qemu).target_dir, root.join("target"));
        assert!(Board::Virt.cargo(root, Variant::Qemu).flags.is_empty(), "plain cargo means virt");
        assert_eq!(Board::Rpi4.cargo(root, Variant::Qemu).flags, ["--no-default-features", "--features", "board-rpi4"]);
    }

    #[test]
    fn only_the_boards_own_image_goes_without_semihosting() {
        let sh = |b: Board, v| b.cargo(Path::new("/r"), v).shell();
        assert_eq!(
            sh(Board::Rpi4, Variant::Image),
            "export CARGO_TARGET_DIR='/r/target/rpi4-hw'\nexport QUIESCENT_BOARD='rpi4'\n\
             export QUIESCENT_NO_SEMIHOSTING='1'\nCARGO_BOARD_FLAGS='--no-default-features --features board-rpi4'\n"
        );
        assert!(sh(Board::Rpi4, Variant::Qemu).contains("unset QUIESCENT_NO_SEMIHOSTING\n"));
        assert!(sh(Board::Virt, Variant::Image).contains("unset QUIESCENT_NO_SEMIHOSTING\n"));
        assert!(sh(Board::Virt, Variant::Qemu).ends_with("CARGO_BOARD_FLAGS=''\n"));
        let quoted = Board::Virt.cargo(Path::new("/it's"), Variant::Qemu).shell();
        assert!(quoted.starts_with(r"export CARGO_TARGET_DIR='/it'\''s/target'"), "{quoted}");
    }
}
