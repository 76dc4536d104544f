#![no_std]
#![no_main]
fn placeholder() {}
quiescent::tests!(placeholder);
