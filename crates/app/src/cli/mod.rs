//! Headless subcommands (design §4): a stable interface that scripts and checks depend on.
//! Results go to stdout, errors to stderr as one line with a non-zero exit status.

mod bench;
mod exif;
mod flatten;
mod formats;
mod generate;
mod info;
mod model_hash;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pentimento",
    version,
    about = "A layered image editor with Stable Diffusion built in"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand the editor opens; with FILE (an .ora project or an image) it opens it.
    pub file: Option<PathBuf>,
    /// The same as FILE.
    #[arg(long, value_name = "FILE")]
    pub open: Option<PathBuf>,
    /// Print the mean frame time over N painted frames, then quit (editor benchmark).
    #[arg(long, value_name = "N")]
    pub bench_frames: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what a file holds as JSON: an .ora's layers, sizes, blend modes and records; an
    /// image's size and its A1111 `parameters`.
    Info {
        /// An .ora project, a PNG/JPEG/WebP image, or a .safetensors checkpoint.
        file: PathBuf,
    },
    /// Generate images (txt2img, img2img, inpaint) and write `<seed>.png` files carrying A1111
    /// `parameters`.
    Generate(Box<generate::GenerateArgs>),
    /// Time the model components (text encoders, UNet step, VAE decode) at full SD1.5 and SDXL
    /// sizes with random weights made in memory, with peak memory.
    Bench(bench::BenchArgs),
    /// Composite an .ora (or copy an image) to a PNG.
    Flatten {
        /// An .ora project or a PNG/JPEG/WebP image.
        input: PathBuf,
        /// The PNG to write (replaced atomically).
        output: PathBuf,
    },
}

/// Runs one subcommand.
pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Info { file } => info::run(&file),
        Command::Flatten { input, output } => flatten::run(&input, &output),
        Command::Generate(args) => generate::run(*args),
        Command::Bench(args) => bench::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_arguments_and_subcommands() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("pentimento").chain(args.iter().copied()))
        };
        let none = parse(&[]).unwrap();
        assert!(none.command.is_none() && none.file.is_none());
        assert_eq!(parse(&["a.ora"]).unwrap().file, Some(PathBuf::from("a.ora")));
        assert_eq!(parse(&["--open", "b.png"]).unwrap().open, Some(PathBuf::from("b.png")));
        assert_eq!(parse(&["--bench-frames", "30"]).unwrap().bench_frames, Some(30));
        assert!(parse(&["--bench-frames", "x"]).is_err());
        assert!(parse(&["--nope"]).is_err());
        assert!(matches!(parse(&["info", "x.ora"]).unwrap().command, Some(Command::Info { .. })));
    }
}
