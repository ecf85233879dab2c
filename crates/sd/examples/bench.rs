//! Runs the model benchmark until `pentimento bench` exposes it:
//! `cargo run --release -p pentimento-sd --example bench -- [sd15|sdxl|attention|conv] [--repeats N]
//! [--only text|unet|vae]`. Prints one JSON object per line.

#![allow(clippy::print_stdout, reason = "a command-line tool printing its results")]

use candle_core::Device;
use pentimento_sd::bench::{BenchModel, BenchOptions, bench_attention, bench_conv, run_bench};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    pentimento_sd::memory::recycle_large_allocations();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut options = BenchOptions::default();
    let mut models = Vec::new();
    let mut attention = false;
    let mut conv = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "sd15" => models.push(BenchModel::Sd15),
            "sdxl" => models.push(BenchModel::Sdxl),
            "attention" => attention = true,
            "conv" => conv = true,
            "--repeats" => options.repeats = it.next().ok_or("--repeats N")?.parse()?,
            "--batch" => options.batch = it.next().ok_or("--batch N")?.parse()?,
            "--only" => {
                let only = it.next().ok_or("--only text|unet|vae")?;
                options.text = only == "text";
                options.unet = only == "unet";
                options.vae = only == "vae";
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if attention {
        for (tokens, channels, heads) in [(4096, 320, 8), (4096, 640, 10), (1024, 1280, 20)] {
            let (ours, tensors, diff) = bench_attention(tokens, channels, heads)?;
            println!(
                "{{\"attention\": \"2x{tokens} tokens x {channels} ch / {heads} heads\", \
                 \"in_place_s\": {ours:.3}, \"tensor_ops_s\": {tensors:.3}, \"max_abs_diff\": {diff:e}}}"
            );
        }
    }
    if conv {
        for (batch, channels, size) in [
            (2, 320, 64),
            (2, 1280, 16),
            (2, 320, 128),
            (2, 640, 32),
            (1, 512, 128),
            (1, 256, 256),
            (1, 128, 512),
        ] {
            let (shifted, im2col, candle, diff) = bench_conv(batch, channels, size)?;
            println!(
                "{{\"conv3x3\": \"{batch}x{channels}x{size}x{size}\", \"shifted_s\": {shifted:.3}, \
                 \"im2col_s\": {im2col:.3}, \"candle_s\": {candle:.3}, \"max_abs_diff\": {diff:e}}}"
            );
        }
    }
    for model in models {
        run_bench(model, &options, &Device::Cpu, &mut |entry| {
            println!("{}", serde_json::to_string(entry).unwrap_or_default());
        })?;
    }
    Ok(())
}
