//! `host::boot` concurrently with different core counts, again, and from a core: one machine,
//! the others refused by name.

use quiescent_hosted::panics_with;
use quiescent_platform::host;

fn message(e: Box<dyn std::any::Any + Send>) -> String {
    quiescent_hosted::panic_message(&*e)
}

#[test]
fn one_machine_whoever_boots() {
    let inits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let boots: Vec<_> = (2..=5)
        .map(|n| {
            let inits = inits.clone();
            std::thread::spawn(move || {
                std::panic::catch_unwind(move || {
                    host::boot(n, move || {
                        inits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    })
                })
                .map_err(message)
            })
        })
        .collect();
    let results: Vec<_> = boots.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|m| m.contains("already runs")), "{results:?}");
    assert_eq!(inits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let cores = host::cores();
    assert_eq!(host::on_each_cpu(|_| quiescent_platform::cpu_id()), (0..cores).collect::<Vec<_>>());
    assert_eq!(quiescent_platform::num_online(), cores);
    // From a core: refused by name, inside the work item (re-raised here).
    panics_with("boot on a core", "host::boot called on a core", || host::on_cpu(0, move |_| host::boot(cores, || {})));
}
