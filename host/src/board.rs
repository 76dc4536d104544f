//! The boards an image is built for and booted on.

use std::fmt;
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
    use super::Board;

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
}
