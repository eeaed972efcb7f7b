//! The `logai` command line. Each subcommand hands off to its room.
fn main() {
    println!("logai {}", env!("CARGO_PKG_VERSION"));
}
