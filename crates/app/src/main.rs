//! The `pentimento` binary: the editor and its headless subcommands.

mod cli;
mod editor;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before any thread starts: large activations are recycled, not re-faulted each step.
    sd::memory::recycle_large_allocations();
    let args = cli::Cli::parse();
    let result = match args.command {
        Some(command) => cli::run(command),
        None => editor::run(editor::LaunchOptions {
            open: args.open.or(args.file),
            bench_frames: args.bench_frames,
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line: the error and its causes, joined; only the first line of each (some
            // libraries append a backtrace to their message).
            let causes: Vec<String> = error
                .chain()
                .map(|cause| cause.to_string().lines().next().unwrap_or_default().trim().to_owned())
                .collect();
            eprintln!("error: {}", causes.join(": "));
            ExitCode::FAILURE
        }
    }
}
