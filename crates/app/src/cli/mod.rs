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
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
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
