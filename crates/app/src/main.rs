//! The `pentimento` binary: the editor and its headless subcommands.

fn main() {}
