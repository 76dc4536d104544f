# quiescent: the two commands a new user needs, plus a few helpers.
#
#   make run    set up if needed, build the demo, boot it on QEMU (4 cores), exit 0
#   make test   set up if needed, run every on-target test image (on both boards) and host test;
#               the last line is "N passed, M failed"
#   make image BOARD=rpi4   image/rpi4/ with kernel8.img and config.txt for the SD card
#   make sdcard BOARD=rpi4  image/rpi4/quiescent-rpi4-sdcard.img: a whole card (MBR, FAT32 with the
#               firmware, DTBs, kernel8.img, config.txt) to write with dd (docs/rpi4.md);
#               CMDLINE="..." adds a cmdline.txt
#   make lint   layering check, paths, rustfmt, clippy (warnings are errors) and the docs, for the
#               firmware, the library crates (also on the loom machine) and the host tool
#   make doc    cargo doc of the firmware and the library crates; warnings and broken links are
#               errors (make lint runs it too)
#   make bench  the benchmark image on QEMU virt, in -icount and multi-threaded modes; writes
#               bench/results.md and the charts bench/*.png
#   make torture   rcutorture/locktorture/percpu_ref torture, release and debug builds, 60 s each
#                  (DURATION=, SMP=, SEED=, BOARD=, TORTURE=rcu|lock|ref|all)
#
# Variables: BOARD=virt (QEMU virt, default) or rpi4 (QEMU raspi4b / a Raspberry Pi 4),
# SMP=4 (cores for `make run` on virt, 1..512), GIC=2|3 (virt's interrupt controller; by
# default GICv2 up to 8 cores and GICv3 beyond), EL2=1 (enter at EL2 on virt; the Pi always does).
# `make test` runs both boards unless BOARD is given (make test BOARD=rpi4).

BOARD ?= virt
SMP   ?= 4
EL2   ?=
GIC   ?=

# The board's cargo features and target directory are the host tool's (host/src/board.rs):
# `scripts/qrun cargo --board B ...` runs cargo with them, `scripts/qrun cargo-env --board B`
# prints them, and an unknown board is an error there. `--image` is the build for the board
# itself (rpi4: without semihosting, so a run ends by parking).
BOARD_CARGO := scripts/qrun cargo --board $(BOARD)

SUITE_BOARD := $(if $(filter command line environment,$(origin BOARD)),$(BOARD),all)

RUN_FLAGS := --board $(BOARD) --smp $(SMP) $(if $(GIC),--gic $(GIC),) $(if $(EL2),--el2,)

.PHONY: setup run test lint doc bench torture image sdcard gdb clean

setup:
	@bash scripts/setup.sh

run: setup
	QRUN_ARGS="$(RUN_FLAGS)" $(BOARD_CARGO) run --release

test: setup
	scripts/qrun suite --board $(SUITE_BOARD)

lint: setup
	scripts/lint

doc: setup
	scripts/doc

# make bench SMP=N: the real-time run on N cores (default 8, so scaling reaches 8).
BENCH_FLAGS := $(if $(filter command line environment,$(origin SMP)),--smp $(SMP),)
bench: setup
	QUIESCENT_BENCH_CMD="make bench$(if $(BENCH_FLAGS), SMP=$(SMP),)" scripts/bench $(BENCH_FLAGS)

DURATION ?= 60
TORTURE  ?= all
SEED     ?=
torture: setup
	DURATION=$(DURATION) SMP=$(SMP) BOARD=$(BOARD) TORTURE=$(TORTURE) SEED=$(SEED) scripts/torture

# image/$(BOARD)/: rpi4: kernel8.img + config.txt for the SD card (docs/rpi4.md); virt: Image.
image: setup
	$(BOARD_CARGO) --image build --release --bin quiescent
	@env=$$(scripts/qrun cargo-env --board $(BOARD) --image) && eval "$$env" && \
	  elf=$$CARGO_TARGET_DIR/aarch64-unknown-none/release/quiescent && \
	  echo "scripts/mkimage $(BOARD) $$elf image/$(BOARD)" && scripts/mkimage $(BOARD) $$elf image/$(BOARD) && \
	  echo "console decoding ELF: $$elf"

# The whole SD card for a Raspberry Pi 4 (docs/rpi4.md): `make image`'s two files plus the GPU
# firmware and device trees scripts/setup.sh fetched from Debian (target/rpi4-boot/).
CARD    := image/rpi4/quiescent-rpi4-sdcard.img
CMDLINE ?=
ifeq ($(BOARD),rpi4)
sdcard: image
	scripts/mkcard image/rpi4 target/rpi4-boot $(CARD) "$(CMDLINE)"
	@echo "card image: $(CARD), $$(stat -c %s $(CARD)) bytes (64 MiB); firmware: $$(head -1 target/rpi4-boot/SOURCES)"
	@echo "write it to the whole card (not a partition; check the device with lsblk first, everything on it is lost):"
	@echo "  sudo dd if=$(CARD) of=/dev/sdX bs=4M conv=fsync status=progress"
else
sdcard:
	$(error make sdcard is for the Raspberry Pi 4: make sdcard BOARD=rpi4)
endif

# Boot the demo and wait for GDB on localhost:1234 (docs/boot.md, "Debugging with GDB").
gdb: setup
	QRUN_ARGS="$(RUN_FLAGS) --gdb" $(BOARD_CARGO) run

clean:
	cargo clean
	cargo clean --manifest-path host/Cargo.toml
