//! Review: `PercpuBox::new` before `host::boot` (no per-cpu area yet) succeeds silently. Its
//! copies are never initialised (the areas made later are zero), and a later `boot` of more
//! than one core panics on core 0 with "area for core 1 added after a dynamic per-cpu
//! allocation". No undefined behaviour (only `Word` types are read safely, and 0 is valid for
//! every one of them), but the per-cpu paths off the cores are named panics and this one is not.

use quiescent_platform::{host, PercpuBox};

#[test]
#[ignore = "review finding: fails until PercpuBox::new before boot is refused by name"]
fn percpu_box_before_boot_is_refused() {
    let early = std::panic::catch_unwind(|| PercpuBox::new(7u32));
    let refused = match &early {
        Err(_) => true,
        Ok(r) => r.is_err(),
    };
    // What happens instead: the machine cannot boot with more than one core.
    let booted = std::panic::catch_unwind(|| host::boot(2, || {}));
    assert!(
        refused,
        "PercpuBox::new before boot returned a box (boot afterwards: {})",
        if booted.is_ok() { "ok" } else { "panicked" }
    );
}

#[test]
#[ignore = "review finding: fails until PercpuBox::new before boot is refused by name"]
fn percpu_box_made_before_a_one_core_boot_holds_its_initial_value() {
    // (Run alone: `cargo test --test review_box_before_boot -- --ignored --exact <name>`.)
    let b = PercpuBox::new(7u32).expect("per-cpu space");
    host::boot(1, || {});
    assert_eq!(host::on_cpu(0, |_| b.get()), 7, "core 0's copy was never initialised");
}
