//! The `pentimento` binary: the editor and its headless subcommands.

mod editor;

fn main() -> anyhow::Result<()> {
    editor::run(editor::LaunchOptions::from_args(std::env::args_os().skip(1))?)
}
