//! Rebuild when a migration is added, so none is ever left out of the binary.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
