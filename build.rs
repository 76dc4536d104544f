//! Selects the board's linker fragment and the common linker script.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let board = if std::env::var_os("CARGO_FEATURE_BOARD_RPI4").is_some() { "rpi4" } else { "virt" };
    println!("cargo:rustc-link-search={}", dir.join("src/board").join(board).display());
    println!("cargo:rustc-link-arg=-T{}", dir.join("linker.ld").display());
    println!("cargo:rustc-link-arg=-Tdefmt.x");
    println!("cargo:rerun-if-changed=linker.ld");
    println!("cargo:rerun-if-changed=src/board/{board}/board.ld");
    println!("cargo:rerun-if-changed=src/arch/boot/entry.S");
}
