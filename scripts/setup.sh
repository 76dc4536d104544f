#!/usr/bin/env bash
# One-time, idempotent set-up for building and running quiescent on Debian 12 (bookworm).
#
#  1. Debian's Rust 1.96 (rustc-web, cargo-web, rust-web-src, rust-web-llvm + lld-22, and clippy and
#     rustfmt for the host crate's checks), selected for this repository by rust-toolchain.toml
#     (`path = "/usr"`).
#  2. core, alloc and compiler_builtins for aarch64-unknown-none, built once from rust-web-src and
#     installed into /usr/lib/rustlib/aarch64-unknown-none/lib (rustup cannot download the target
#     here), so that plain `cargo build` works afterwards with no environment variables.
#  3. qemu-system-arm 10.x from bookworm-backports (bookworm's 7.2 has no raspi4b machine).
#  4. fonts-dejavu-core: the TTF font `qrun bench` draws its charts' text with.
#  5. The Raspberry Pi 4 card image's tools and boot files: mtools and dosfstools (a FAT32 image
#     without root or loop devices), and start4.elf/fixup4.dat (raspi-firmware, bookworm's
#     non-free-firmware component) and the Pi 4/400 device trees (Debian's arm64 kernel package),
#     downloaded, not installed, into target/rpi4-boot/ by scripts/rpi4-firmware. That needs
#     arm64 as a foreign architecture and a non-free-firmware sources line.
#  6. The host runner (host/), which decodes the defmt stream with the `defmt-decoder` crate.
#
# Each step checks whether it is already done, so re-running is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

say() { printf 'setup: %s\n' "$*" >&2; }

apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        $SUDO apt-get update -qq
        apt_updated=1
    fi
}

# --- 1. Debian's Rust toolchain -------------------------------------------------------------
# rust-web-llvm's /usr/bin/rust-lld points at lld-22, which it does not pull in: install it too.
# rust-web-clippy and rustfmt-web: `cargo clippy` and `cargo fmt` for host/.
RUST_PKGS="rustc-web cargo-web rust-web-src rust-web-llvm lld-22 rust-web-clippy rustfmt-web"
if [ "$(dpkg-query -W -f='${db:Status-Status}\n' $RUST_PKGS 2>/dev/null | grep -c '^installed$')" != 7 ]; then
    say "installing $RUST_PKGS"
    apt_update
    $SUDO apt-get install -y -qq $RUST_PKGS >/dev/null
fi

# --- 2. core/alloc/compiler_builtins for aarch64-unknown-none --------------------------------
SYSROOT=$(/usr/bin/rustc --print sysroot)
TARGET_LIB="$SYSROOT/lib/rustlib/aarch64-unknown-none/lib"
RUSTC_VER=$(/usr/bin/rustc --version)
if [ -f "$TARGET_LIB/.quiescent-stamp" ] && [ "$(cat "$TARGET_LIB/.quiescent-stamp")" = "$RUSTC_VER" ]; then
    :
else
    say "building core, alloc, compiler_builtins for aarch64-unknown-none from rust-web-src"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/src"
    cat > "$tmp/Cargo.toml" <<'TOML'
[package]
name = "sysroot-seed"
version = "0.0.0"
edition = "2021"
[lib]
path = "src/lib.rs"
[profile.release]
panic = "abort"
TOML
    printf '#![no_std]\nextern crate alloc;\n' > "$tmp/src/lib.rs"
    printf '[toolchain]\npath = "/usr"\n' > "$tmp/rust-toolchain.toml"
    (cd "$tmp" && RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo build -q --release \
        --target aarch64-unknown-none \
        -Zbuild-std=core,alloc,compiler_builtins \
        -Zbuild-std-features=compiler-builtins-mem)
    $SUDO mkdir -p "$TARGET_LIB"
    $SUDO rm -f "$TARGET_LIB"/*.rlib
    for f in "$tmp"/target/aarch64-unknown-none/release/deps/*.rlib; do
        case "$(basename "$f")" in libsysroot_seed-*) continue ;; esac
        $SUDO cp "$f" "$TARGET_LIB/"
    done
    echo "$RUSTC_VER" | $SUDO tee "$TARGET_LIB/.quiescent-stamp" >/dev/null
    rm -rf "$tmp"
    trap - EXIT
fi

# --- 3. QEMU 10.x from bookworm-backports -----------------------------------------------------
qemu_ok() {
    command -v qemu-system-aarch64 >/dev/null 2>&1 || return 1
    qemu-system-aarch64 -machine help 2>/dev/null | grep -q '^raspi4b'
}
if ! qemu_ok; then
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        say "adding bookworm-backports to apt's sources"
        echo 'deb http://deb.debian.org/debian bookworm-backports main' \
            | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
        apt_updated=0
    fi
    say "installing qemu-system-arm from bookworm-backports"
    apt_update
    $SUDO apt-get install -y -qq -t bookworm-backports qemu-system-arm >/dev/null
    qemu_ok || { say "error: qemu-system-aarch64 with raspi4b is still missing"; exit 1; }
fi

# --- 4. the font the bench charts are drawn with ------------------------------------------------
# qrun bench renders text with ab_glyph from a TTF read at run time (no fontconfig/freetype).
if ! dpkg-query -W -f='${db:Status-Status}\n' fonts-dejavu-core 2>/dev/null | grep -q '^installed$'; then
    say "installing fonts-dejavu-core (for the bench charts)"
    apt_update
    $SUDO apt-get install -y -qq fonts-dejavu-core >/dev/null
fi

# --- 5. the Raspberry Pi 4 card image: mtools, dosfstools, and the boot files --------------------
if [ "$(dpkg-query -W -f='${db:Status-Status}\n' mtools dosfstools 2>/dev/null | grep -c '^installed$')" != 2 ]; then
    say "installing mtools and dosfstools (for the Raspberry Pi 4 card image)"
    apt_update
    $SUDO apt-get install -y -qq mtools dosfstools >/dev/null
fi
if ! scripts/rpi4-firmware --check; then
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        say "adding arm64 as a foreign architecture (to download the arm64 kernel's device trees)"
        $SUDO dpkg --add-architecture arm64
        apt_updated=0
    fi
    if ! grep -rqs 'non-free-firmware' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        say "adding bookworm's non-free-firmware component to apt's sources (for raspi-firmware)"
        echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm non-free-firmware' \
            | $SUDO tee /etc/apt/sources.list.d/quiescent-rpi4.list >/dev/null
        apt_updated=0
    fi
    apt_update
    scripts/rpi4-firmware
fi

# --- 6. the host runner (QEMU launcher + defmt decoder) ---------------------------------------
# scripts/qrun builds it for the host (the repository's .cargo/config.toml defaults to the
# firmware's target); cargo makes this a no-op when nothing changed.
scripts/qrun --help >/dev/null
