//! A panic the machine cannot survive ends the process, by name, as every panic ends the run on
//! the firmware: in an interrupt handler such as a tick hook (it would leave the core in
//! interrupt context, masked, without `irq_exit`) and in an RCU callback (it would lose the rest
//! of its chain, an `rcu_barrier` marker among them). Each case runs in a child process (this
//! test binary again). A `call_function_single` closure's panic is its caller's instead (rcu.rs).

use quiescent_hosted::boot;
use quiescent_platform::host;
use quiescent_rcu as rcu;
use std::process::Command;

const CHILD: &str = "QUIESCENT_HOSTED_FATAL";

/// In the child: does what `case` names (which must abort). In the parent: runs the child and
/// checks that it died with `expected` on its stderr.
fn fatal(case: &str, test: &str, expected: &str, run: impl FnOnce()) {
    if std::env::var(CHILD).as_deref() == Ok(case) {
        run();
        std::process::exit(0); // not reached when the case is fatal
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, case)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run this test binary again");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{case}: the child exited normally ({:?}); stderr:\n{err}", out.status);
    assert!(err.contains(expected), "{case}: stderr does not name it ({expected:?}):\n{err}");
}

#[test]
fn a_panicking_interrupt_handler_is_fatal() {
    fatal(
        "handler",
        "a_panicking_interrupt_handler_is_fatal",
        "an interrupt handler panicked on core 1: fatal",
        || {
            boot();
            quiescent_platform::add_tick_hook(|_| {
                if quiescent_platform::cpu_id() == 1 {
                    panic!("the tick hook panics")
                }
            });
            // Takes ticks; a child still running after 10 s (the panic did not end it) exits
            // normally, which fails the parent, instead of spinning for ever.
            let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
            host::on_each_cpu(|_| quiescent_hosted::spin_until(|| std::time::Instant::now() >= end));
        },
    );
}

#[test]
fn a_panicking_rcu_callback_is_fatal() {
    fatal("callback", "a_panicking_rcu_callback_is_fatal", "an RCU callback panicked on core 1: fatal", || {
        boot();
        host::on_cpu(1, |ctx| {
            rcu::call_rcu(|_| panic!("the callback panics"));
            rcu::rcu_barrier(ctx); // runs it here, inside this work item
        });
    });
}
