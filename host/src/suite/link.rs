//! Link-time checks of the Image header (unit tests): the header from `src/arch/boot/entry.S`
//! linked with the real `linker.ld` and each board's `board.ld`, or a drifted one, by the
//! toolchain's `rust-lld`. The header's `text_offset` is derived from the link address, so the two
//! cannot drift apart; a link address a loader cannot reach fails the link, naming `board.ld`.

use super::cargo::repo_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The header's source: `src/arch/boot/entry.S` from `_start:` to the next `.section`.
fn header_asm(root: &Path) -> String {
    let s = std::fs::read_to_string(root.join("src/arch/boot/entry.S")).expect("src/arch/boot/entry.S");
    let from = s.find(".section .text.head").expect("the header's section");
    let to = s[from + 1..].find(".section").map_or(s.len(), |i| from + 1 + i);
    s[from..to].to_string()
}

/// Links the header with linker.ld and `board_ld`; returns the header's (text_offset,
/// image_size) or the linker's error.
fn link(board_ld: &str, tag: &str) -> Result<(u64, u64), String> {
    let root = repo_root();
    let dir: PathBuf = root.join("target/link-check").join(tag);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let src =
        format!("#![no_std]\ncore::arch::global_asm!({:?});\n", header_asm(&root).replace("primary_entry", "_start"));
    std::fs::write(dir.join("h.rs"), src).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("board.ld"), board_ld).map_err(|e| e.to_string())?;
    let st = Command::new("rustc")
        .args(["--edition", "2021", "--target", "aarch64-unknown-none", "--crate-type", "lib", "--emit", "obj"])
        .args(["-C", "panic=abort", "-o"])
        .arg(dir.join("h.o"))
        .arg(dir.join("h.rs"))
        .current_dir(&root)
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    assert!(st.status.success(), "rustc: {}", String::from_utf8_lossy(&st.stderr));
    let out = Command::new("rust-lld")
        .args(["-flavor", "gnu", "-L"])
        .arg(&dir)
        .arg("-T")
        .arg(root.join("linker.ld"))
        .arg(dir.join("h.o"))
        .arg("-o")
        .arg(dir.join("h.elf"))
        .output()
        .map_err(|e| format!("cannot run rust-lld: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let img = crate::toolchain::raw_image(&dir.join("h.elf"))?;
    let b = std::fs::read(img).map_err(|e| e.to_string())?;
    let word = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    Ok((word(8), word(16)))
}

/// `name = 0x...;` from a board.ld.
fn symbol(board_ld: &str, name: &str) -> u64 {
    let line = board_ld.lines().find(|l| l.trim_start().starts_with(name)).expect(name);
    let v = line.split('=').nth(1).expect("a value").split(';').next().unwrap().trim();
    u64::from_str_radix(v.trim_start_matches("0x"), 16).expect("hex")
}

#[test]
fn each_boards_header_follows_its_link_address() {
    for board in ["rpi4", "virt"] {
        let ld = std::fs::read_to_string(repo_root().join("src/board").join(board).join("board.ld")).unwrap();
        let (text_offset, image_size) = link(&ld, board).unwrap();
        let (ram, base, limit) =
            (symbol(&ld, "__ram_base"), symbol(&ld, "__kernel_base"), symbol(&ld, "__board_image_limit"));
        assert_eq!(text_offset, base - ram, "{board}: text_offset");
        assert_eq!(text_offset, 0x80000, "{board}: config.txt's kernel_address and QEMU's placement");
        assert_eq!(image_size, limit - base, "{board}: image_size reaches the image limit");
    }
}

#[test]
fn a_drifted_link_address_fails_the_link() {
    let e =
        link("__ram_base = 0x0;\n__kernel_base = 0x280000;\n__board_image_limit = 0x8000000;\n", "far").unwrap_err();
    assert!(e.contains("board.ld: __kernel_base is not within 2 MiB of __ram_base"), "{e}");
    let e = link("__ram_base = 0x100000;\n__kernel_base = 0x180000;\n__board_image_limit = 0x8000000;\n", "odd")
        .unwrap_err();
    assert!(e.contains("__ram_base is not 2 MiB aligned"), "{e}");
    let e = link("__ram_base = 0x40000000;\n__kernel_base = 0x80000;\n__board_image_limit = 0x8000000;\n", "below")
        .unwrap_err();
    assert!(e.contains("__kernel_base lies below __ram_base"), "{e}");
}
