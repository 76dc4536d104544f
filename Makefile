# quiescent: the two commands a new user needs, plus a few helpers.
#
#   make run    set up if needed, build the demo, boot it on QEMU (4 cores), exit 0
#   make test   set up if needed, run every on-target test image and host test;
#               the last line is "N passed, M failed"
#
# Variables: BOARD=virt (QEMU virt, default), SMP=4 (cores for `make run`), EL2=1 (enter at EL2).

BOARD ?= virt
SMP   ?= 4
EL2   ?=

RUN_FLAGS := --board $(BOARD) --smp $(SMP) $(if $(EL2),--el2,)

.PHONY: setup run test demo-debug gdb clean

setup:
	@bash scripts/setup.sh

run: setup
	QRUN_ARGS="$(RUN_FLAGS)" cargo run --release

test: setup
	scripts/qrun suite --board $(BOARD)

# Boot the demo and wait for GDB on localhost:1234 (see README, "Debugging with GDB").
gdb: setup
	QRUN_ARGS="$(RUN_FLAGS) --gdb" cargo run

clean:
	cargo clean
	cargo clean --manifest-path host/Cargo.toml
