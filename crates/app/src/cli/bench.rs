//! `pentimento bench`: model component timings at full SD1.5 / SDXL sizes with random weights
//! built in memory (nothing downloaded, nothing written), with peak memory. Compare with
//! `tests/reference/bench_torch.py` on the same machine.

use sd::bench::{BenchEntry, BenchModel, BenchOptions, run_bench};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BenchTarget {
    Sd15,
    Sdxl,
    All,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Which model sizes to time.
    #[arg(long, value_enum, default_value = "all")]
    model: BenchTarget,
    /// UNet/text batch (2 = cond + uncond of one image).
    #[arg(long, default_value_t = 2)]
    batch: usize,
    /// Timed runs per component after a warm-up (0 = one timed run, no warm-up).
    #[arg(long, default_value_t = 0)]
    repeats: usize,
    /// Only these components (default: all of text, unet, vae).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print one JSON object per component instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let device = pipeline::generate::device_from_name(&args.device)?;
    let wants = |c: &str| args.only.is_empty() || args.only.iter().any(|o| o == c);
    let options = BenchOptions {
        batch: args.batch,
        repeats: args.repeats,
        text: wants("text"),
        unet: wants("unet"),
        vae: wants("vae"),
    };
    let models: &[BenchModel] = match args.model {
        BenchTarget::Sd15 => &[BenchModel::Sd15],
        BenchTarget::Sdxl => &[BenchModel::Sdxl],
        BenchTarget::All => &[BenchModel::Sd15, BenchModel::Sdxl],
    };
    let json = args.json;
    let mut print = |e: &BenchEntry| print_entry(e, json);
    for &model in models {
        run_bench(model, &options, &device, &mut print)?;
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the timings are the command's output")]
fn print_entry(entry: &BenchEntry, json: bool) {
    if json {
        println!("{}", serde_json::to_string(entry).unwrap_or_default());
    } else {
        println!(
            "{:5?} {:12} {:28} {:9.3} s   peak {:8.0} MiB   (built in {:.1} s)",
            entry.model,
            entry.component,
            entry.input,
            entry.seconds,
            entry.peak_rss_mib,
            entry.build_seconds
        );
    }
}
