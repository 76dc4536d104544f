//! Device drivers (register blocks described with `tock-registers`).
pub mod pl011;
