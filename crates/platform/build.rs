//! Empty: present because `links` (Cargo.toml) requires a build script. It keeps one copy of
//! this crate per image.
fn main() {}
