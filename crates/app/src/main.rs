//! The `pentimento` binary: the editor and its headless subcommands.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let Some(command) = args.command else {
        eprintln!(
            "error: the editor window is not built yet; use a subcommand (see `pentimento --help`)"
        );
        return ExitCode::from(2);
    };
    match cli::run(command) {
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
