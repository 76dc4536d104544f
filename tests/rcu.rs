//! RCU: grace-period semantics, callbacks, rcu_barrier, lists under concurrent readers, and the
//! stall detector.
#![no_std]
#![no_main]

extern crate alloc;

// The cases, by area; `tests!` below lists them in the order they run.
#[path = "rcu/callbacks.rs"]
mod callbacks;
#[path = "rcu/grace_period.rs"]
mod grace_period;
#[path = "rcu/lists.rs"]
mod lists;
#[path = "rcu/polling.rs"]
mod polling;
#[path = "rcu/stall.rs"]
mod stall;
#[path = "rcu/tree.rs"]
mod tree;
use callbacks::*;
use grace_period::*;
use lists::*;
use polling::*;
use stall::*;
use tree::*;

const LIVE: u64 = 0x4c49_5645; // "LIVE"
const POISON: u64 = 0x6b6b_6b6b_6b6b_6b6b;

quiescent::tests!(
    // First, before any grace period has run: the very first one must wait too.
    grace_period_waits_for_a_preexisting_reader,
    grace_period_on_this_core_alone_completes,
    grace_period_does_not_wait_for_later_readers,
    polling_cookies_complete_only_after_their_readers,
    polling_cookies_across_many_grace_periods,
    rcu_cell_readers_never_see_a_retired_object_freed,
    grace_period_completes_while_others_sleep_and_wakes_none,
    concurrent_callers_share_grace_periods,
    callers_during_one_grace_period_share_the_next,
    call_rcu_runs_after_a_grace_period_once_in_order,
    rcu_barrier_waits_for_every_queued_callback,
    rcu_barrier_works_from_every_core,
    intrusive_and_closure_callbacks_free_once_in_order_after_a_grace_period,
    rcu_barrier_waits_for_intrusive_callbacks,
    retiring_allocates_nothing,
    interrupt_handler_on_a_quiescent_waiting_core_is_a_reader,
    dropping_a_removed_node_frees_it_after_a_grace_period,
    list_add_delete_replace_while_readers_iterate,
    tree_has_the_leaf_size_asked_for,
    grace_period_waits_for_a_reader_on_every_core,
    no_stall_reported_so_far,
    stall_detector_names_a_core_that_holds_up_a_grace_period,
    stall_on_the_only_ticking_core_is_named,
);
