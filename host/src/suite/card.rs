//! The Raspberry Pi 4 SD-card image (`make sdcard BOARD=rpi4`, docs/rpi4.md): the suite builds it
//! the way a user does, reads it back (its MBR and FAT32 boot sector directly, its files with
//! mtools), and boots the card's own `kernel8.img` on QEMU `raspi4b` with the card's own
//! `bcm2711-rpi-4-b.dtb`.

use super::checks::Tally;
use crate::board::{Board, Variant};
use crate::dtb::outline;
use crate::qemu::{self, RunConfig};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Where `make sdcard` writes the card, under the repository.
pub const CARD: &str = "image/rpi4/quiescent-rpi4-sdcard.img";
/// The ELF `make image BOARD=rpi4` makes kernel8.img from: the board's own build, without
/// semihosting, under its target directory.
const IMAGE_ELF: &str = "aarch64-unknown-none/release/quiescent";
/// Where the partition starts (sector 2048, 1 MiB), as scripts/mkcard writes it.
const PART_START: u64 = 2048;
/// Every file the card holds (without a CMDLINE, the suite's build has no cmdline.txt).
const FILES: [&str; 8] = [
    "start4.elf",
    "fixup4.dat",
    "bcm2711-rpi-4-b.dtb",
    "bcm2711-rpi-400.dtb",
    "kernel8.img",
    "config.txt",
    "LICENCE.raspi-firmware",
    "firmware-sources.txt",
];
/// The `config.txt` settings the image depends on (docs/rpi4.md says why each is there).
const PINNED_SETTINGS: [(&str, &str); 6] = [
    ("arm_64bit", "1"),
    ("kernel", "kernel8.img"),
    ("kernel_address", "0x80000"),
    ("enable_uart", "1"),
    ("init_uart_clock", "48000000"),
    ("enable_gic", "1"),
];
/// Settings that break the image without a word (a different entry, stub or peripheral map).
const BREAKING_SETTINGS: [&str; 4] = ["armstub", "kernel_old", "arm_peri_high", "enable_gic=0"];
/// What the board reports from the card's DTB's `/memory` (QEMU writes its own figure there;
/// on the board the firmware writes the real split).
const RAM_LINE: &str = "ARM RAM ends at 0x3c000000 (the DTB's /memory)";
/// The demo's last line on the board build: it parks instead of exiting.
const CLOSING_LINE: &str = "quiescent: finished with exit code";

/// Prints one check's verdict as a `test card::NAME` line and counts it.
fn verdict(t: &mut Tally, name: &str, r: Result<(), String>) {
    match r {
        Ok(()) => {
            println!("test card::{name} ... ok");
            t.passed += 1;
        }
        Err(e) => {
            println!("test card::{name} ... FAILED: {e}");
            t.failures.push(format!("rpi4 SD card: {name}: {e}"));
            t.failed += 1;
        }
    }
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The MBR: the boot signature, exactly one partition, FAT32 (LBA) from sector 2048, inside the
/// file.
pub fn check_mbr(card: &[u8]) -> Result<(), String> {
    if card.len() < 512 || card[510..512] != [0x55, 0xaa] {
        return Err("no MBR boot signature 0x55 0xaa".into());
    }
    let entries: Vec<&[u8]> = (0..4).map(|i| &card[446 + 16 * i..462 + 16 * i]).collect();
    let used: Vec<&&[u8]> = entries.iter().filter(|e| e[4] != 0).collect();
    let [p] = used.as_slice() else {
        return Err(format!("{} partitions, not one", used.len()));
    };
    if p[4] != 0x0c {
        return Err(format!("partition type {:#04x}, not 0x0c (FAT32, LBA)", p[4]));
    }
    let (start, count) = (le32(p, 8) as u64, le32(p, 12) as u64);
    if start != PART_START {
        return Err(format!("the partition starts at sector {start}, not {PART_START}"));
    }
    if (start + count) * 512 > card.len() as u64 {
        return Err(format!("the partition (sectors {start}+{count}) runs past the file's end"));
    }
    Ok(())
}

/// The partition's boot sector: FAT32, 512-byte sectors, hidden sectors = where it starts.
pub fn check_fat32(card: &[u8]) -> Result<(), String> {
    let bs = card
        .get(PART_START as usize * 512..PART_START as usize * 512 + 512)
        .ok_or("the file ends before the partition")?;
    if &bs[82..90] != b"FAT32   " {
        return Err(format!("file-system type {:?}, not FAT32", String::from_utf8_lossy(&bs[82..90])));
    }
    let bytes_per_sector = u16::from_le_bytes([bs[11], bs[12]]);
    if bytes_per_sector != 512 || bs[510..512] != [0x55, 0xaa] {
        return Err(format!("not a FAT boot sector ({bytes_per_sector} bytes per sector)"));
    }
    if le32(bs, 28) as u64 != PART_START {
        return Err(format!("hidden sectors {}, not the partition's start {PART_START}", le32(bs, 28)));
    }
    Ok(())
}

/// Reads every file in the card's FAT partition with mtools into `dir`.
fn extract(card: &Path, dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let out = Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@{}", card.display(), PART_START * 512))
        .arg("::*")
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mcopy: {e} (scripts/setup.sh installs mtools)"))?;
    if !out.status.success() {
        return Err(format!("mcopy failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// Exactly the expected files, none empty.
fn check_files(dir: &Path) -> Result<(), String> {
    let mut found = BTreeSet::new();
    for e in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let e = e.map_err(|e| e.to_string())?;
        let len = e.metadata().map_err(|e| e.to_string())?.len();
        let name = e.file_name().to_string_lossy().into_owned();
        if len == 0 {
            return Err(format!("{name} is empty"));
        }
        found.insert(name);
    }
    let want: BTreeSet<String> = FILES.iter().map(|s| s.to_string()).collect();
    let missing: Vec<&String> = want.difference(&found).collect();
    let extra: Vec<&String> = found.difference(&want).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(format!("missing {missing:?}, unexpected {extra:?}"));
    }
    Ok(())
}

/// The lines of src/board/rpi4/firmware.pin whose first word is `key`, split into words.
fn pin_lines(pin: &str, key: &str) -> Vec<Vec<String>> {
    pin.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|w| w.first().map(String::as_str) == Some(key))
        .collect()
}

fn sha256(path: &Path) -> Result<String, String> {
    let out = Command::new("sha256sum").arg(path).output().map_err(|e| format!("cannot run sha256sum: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .map(str::to_string)
        .ok_or_else(|| format!("sha256sum gave nothing for {}", path.display()))
}

/// start4.elf and fixup4.dat are the pinned, matched pair, from the pinned package.
fn check_firmware(dir: &Path, pin: &str) -> Result<(), String> {
    let sums = pin_lines(pin, "sha256");
    if sums.len() < 2 {
        return Err("src/board/rpi4/firmware.pin lists fewer than two SHA-256 sums".into());
    }
    for w in &sums {
        let [_, file, want] = w.as_slice() else { return Err(format!("bad pin line {w:?}")) };
        let got = sha256(&dir.join(file))?;
        if &got != want {
            return Err(format!("{file} has SHA-256 {got}, the pin says {want}"));
        }
    }
    let version = pin_lines(pin, "raspi-firmware").first().and_then(|w| w.get(1).cloned()).unwrap_or_default();
    let sources = std::fs::read_to_string(dir.join("firmware-sources.txt")).map_err(|e| e.to_string())?;
    if sources.lines().next() != Some(&format!("raspi-firmware {version}")) {
        return Err(format!("firmware-sources.txt does not name raspi-firmware {version}: {sources:?}"));
    }
    Ok(())
}

/// Each DTB is a real device tree for its board (root `compatible`, a BCM2711, a `/memory` node
/// for the firmware to fill in).
fn check_dtbs(dir: &Path, pin: &str) -> Result<(), String> {
    let dtbs = pin_lines(pin, "dtb");
    if dtbs.is_empty() {
        return Err("src/board/rpi4/firmware.pin lists no device trees".into());
    }
    for w in &dtbs {
        let [_, file, compat] = w.as_slice() else { return Err(format!("bad pin line {w:?}")) };
        let bytes = std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
        let o = outline(&bytes).map_err(|e| format!("{file}: {e}"))?;
        if o.compatible.first() != Some(compat) || !o.compatible.iter().any(|c| c == "brcm,bcm2711") {
            return Err(format!("{file}: root compatible {:?}, not {compat:?} on a brcm,bcm2711", o.compatible));
        }
        if !o.children.iter().any(|c| c == "memory" || c.starts_with("memory@")) {
            return Err(format!("{file}: no /memory node"));
        }
    }
    Ok(())
}

/// config.txt is the repository's, with every pinned setting and none of the breaking ones.
pub fn check_config(card_config: &str, repo_config: &str) -> Result<(), String> {
    if card_config != repo_config {
        return Err("config.txt differs from src/board/rpi4/config.txt".into());
    }
    let settings: Vec<(&str, &str)> = card_config
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    for (key, want) in PINNED_SETTINGS {
        match settings.iter().rev().find(|(k, _)| *k == key) {
            Some((_, v)) if *v == want => {}
            Some((_, v)) => return Err(format!("{key}={v}, not {key}={want}")),
            None => return Err(format!("{key}={want} is missing")),
        }
    }
    for bad in BREAKING_SETTINGS {
        let hit = match bad.split_once('=') {
            Some((k, v)) => settings.iter().any(|(sk, sv)| *sk == k && *sv == v),
            None => settings.iter().any(|(sk, _)| *sk == bad),
        };
        if hit {
            return Err(format!("config.txt sets {bad}, which breaks the image (docs/rpi4.md)"));
        }
    }
    Ok(())
}

/// kernel8.img is the board build's image (the same bytes `make image` wrote), with an arm64
/// Image header whose text_offset is the load address config.txt names.
fn check_kernel(dir: &Path, root: &Path) -> Result<(), String> {
    let card = std::fs::read(dir.join("kernel8.img")).map_err(|e| e.to_string())?;
    let made =
        std::fs::read(root.join("image/rpi4/kernel8.img")).map_err(|e| format!("image/rpi4/kernel8.img: {e}"))?;
    if card != made {
        return Err("kernel8.img differs from image/rpi4/kernel8.img (make image BOARD=rpi4)".into());
    }
    if card.len() < 64 || &card[56..60] != b"ARM\x64" {
        return Err("no arm64 Image header (magic ARM\\x64 at 0x38)".into());
    }
    let text_offset = u64::from_le_bytes(card[8..16].try_into().unwrap_or_default());
    if text_offset != 0x80000 {
        return Err(format!("text_offset {text_offset:#x}, not kernel_address 0x80000"));
    }
    Ok(())
}

/// Boots the card's kernel8.img with the card's Pi 4 DTB on QEMU raspi4b until it parks.
fn check_boot(dir: &Path, root: &Path, verbose: bool) -> Result<(), String> {
    let cfg = RunConfig {
        board: Board::Rpi4,
        kernel: Some(dir.join("kernel8.img")),
        dtb: Some(dir.join("bcm2711-rpi-4-b.dtb")),
        until: Some(CLOSING_LINE.into()),
        timeout_secs: 120,
        verbose,
        ..RunConfig::default()
    };
    let mut shown = Vec::new();
    let elf = Board::Rpi4.cargo(root, Variant::Image).target_dir.join(IMAGE_ELF);
    let res = qemu::run(&elf, &cfg, &mut shown)?;
    let text = &res.text;
    let why = if res.exit_code != 0 || res.failed != 0 {
        Some(format!("exit {} with {} failure(s): {:?}", res.exit_code, res.failed, res.failures))
    } else if !text.contains("cores online: 4/4") {
        Some("no \"cores online: 4/4\"".into())
    } else if !text.contains("entered at EL2") {
        Some("no core reports \"entered at EL2\"".into())
    } else if !text.contains(RAM_LINE) {
        Some(format!("no \"{RAM_LINE}\": the end of RAM did not come from the card's DTB"))
    } else if !text.contains(&format!("{CLOSING_LINE} 0; parking")) {
        Some("the run did not finish with exit code 0 and park (is it the build without semihosting?)".into())
    } else {
        None
    };
    if verbose || why.is_some() {
        print!("{}", String::from_utf8_lossy(&shown));
    }
    why.map_or(Ok(()), Err)
}

/// Builds the card with `make sdcard BOARD=rpi4` and checks it; prints a `test card::...` line
/// for each check.
pub fn run(root: &Path, verbose: bool) -> Tally {
    let mut t = Tally::default();
    println!("== rpi4 SD card (make sdcard BOARD=rpi4)");
    let started = Instant::now();
    let built = Command::new("make")
        .args(["--no-print-directory", "sdcard", "BOARD=rpi4", "CMDLINE="])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run make: {e}"))
        .and_then(|out| {
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "make sdcard BOARD=rpi4 failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        });
    let ok = built.is_ok();
    verdict(&mut t, "make_sdcard", built);
    if !ok {
        return t;
    }
    let card_path = root.join(CARD);
    let card = match std::fs::read(&card_path) {
        Ok(c) => c,
        Err(e) => {
            verdict(&mut t, "read", Err(format!("{}: {e}", card_path.display())));
            return t;
        }
    };
    verdict(&mut t, "mbr_has_one_fat32_partition", check_mbr(&card));
    verdict(&mut t, "partition_is_fat32", check_fat32(&card));
    let dir: PathBuf = root.join("target/rpi4-card-check");
    if let Err(e) = extract(&card_path, &dir) {
        verdict(&mut t, "files", Err(e));
        return t;
    }
    verdict(&mut t, "every_file_present_and_non_empty", check_files(&dir));
    let pin = std::fs::read_to_string(root.join("src/board/rpi4/firmware.pin")).unwrap_or_default();
    verdict(&mut t, "firmware_is_the_pinned_matched_pair", check_firmware(&dir, &pin));
    verdict(&mut t, "dtbs_are_the_pi4_and_pi400_ones", check_dtbs(&dir, &pin));
    let card_config = std::fs::read_to_string(dir.join("config.txt")).unwrap_or_default();
    let repo_config = std::fs::read_to_string(root.join("src/board/rpi4/config.txt")).unwrap_or_default();
    verdict(&mut t, "config_txt_carries_the_pinned_settings", check_config(&card_config, &repo_config));
    verdict(&mut t, "kernel8_img_is_the_board_build", check_kernel(&dir, root));
    verdict(&mut t, "boots_on_raspi4b_with_the_cards_dtb", check_boot(&dir, root, verbose));
    println!("(card build and checks: {:.0} s)", started.elapsed().as_secs_f64());
    t
}

#[cfg(test)]
mod tests {
    use super::{check_config, check_fat32, check_mbr};

    fn card_with(entry: [u8; 16]) -> Vec<u8> {
        let mut c = vec![0u8; 4096 * 512];
        c[446..462].copy_from_slice(&entry);
        c[510] = 0x55;
        c[511] = 0xaa;
        c
    }

    fn entry(kind: u8, start: u32, count: u32) -> [u8; 16] {
        let mut e = [0u8; 16];
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&count.to_le_bytes());
        e
    }

    #[test]
    fn the_mbr_check_names_what_is_wrong() {
        assert_eq!(check_mbr(&card_with(entry(0x0c, 2048, 2048))), Ok(()));
        assert!(check_mbr(&card_with(entry(0x83, 2048, 2048))).unwrap_err().contains("0x83"));
        assert!(check_mbr(&card_with(entry(0x0c, 63, 2048))).unwrap_err().contains("sector 63"));
        assert!(check_mbr(&card_with(entry(0x0c, 2048, 4096))).unwrap_err().contains("past the file"));
        assert!(check_mbr(&card_with([0; 16])).unwrap_err().contains("0 partitions"));
        assert!(check_mbr(&[0u8; 512]).unwrap_err().contains("signature"));
        // A partition but no FAT32 boot sector in it.
        assert!(check_fat32(&card_with(entry(0x0c, 2048, 2048))).unwrap_err().contains("not FAT32"));
    }

    #[test]
    fn the_config_check_wants_every_pinned_setting_and_no_breaking_one() {
        let good = "arm_64bit=1\nkernel=kernel8.img\nkernel_address=0x80000\nenable_uart=1\n\
                    init_uart_clock=48000000 # pinned\nenable_gic=1\n";
        assert_eq!(check_config(good, good), Ok(()));
        assert!(check_config(good, "other").unwrap_err().contains("differs"));
        let no_clock = good.replace("init_uart_clock=48000000 # pinned\n", "");
        assert!(check_config(&no_clock, &no_clock).unwrap_err().contains("init_uart_clock=48000000 is missing"));
        let gic_off = format!("{good}enable_gic=0\n");
        assert!(check_config(&gic_off, &gic_off).unwrap_err().contains("enable_gic=0"));
        let stub = format!("{good}armstub=stub.bin\n");
        assert!(check_config(&stub, &stub).unwrap_err().contains("armstub"));
    }
}
