//! `pentimento generate`: one request from the command line, PNGs with A1111 `parameters` out.

use std::io::Write as _;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::DType;
use doc::infotext::LoraHash;
use pipeline::conditioning::{PromptTokenizers, chunk_lists};
use pipeline::generate::{EncodedPrompts, device_from_name, generate_with_chunks};
use pipeline::infotext::{ModelIdentity, infotext_for, ti_hashes_for_prompts};
use pipeline::request::{GenerationRequest, InitImage, InpaintArea, InpaintOptions, MaskedContent};
use raster::{DecodeLimits, PngCompression, Rect, decode_image, encode_png};
use sampling::{SamplerKind, Schedule};
use sd::embedding::EmbeddingSet;
use sd::library::{Library, ModelKind};
use sd::lora::{LoraSpec, LoraWeights, apply_loras, load_standalone_vae, replace_vae};
use sd::prompt::{is_lora_kind, lora_from_tag, split_extra_networks};
use sd::{Checkpoint, StableDiffusion};

/// The flags and defaults of product.md §4.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Checkpoint: a single-file .safetensors (SD1.x, SDXL, inpainting).
    #[arg(long)]
    model: PathBuf,
    /// A standalone VAE replacing the checkpoint's.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// A LoRA file with an optional weight, e.g. `style.safetensors:0.8` (repeatable).
    #[arg(long = "lora", value_name = "PATH[:WEIGHT]")]
    loras: Vec<String>,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value = "")]
    negative: String,
    /// Width in pixels (multiple of 8); default: the model's native size, or the init image's.
    #[arg(long)]
    width: Option<u32>,
    #[arg(long)]
    height: Option<u32>,
    #[arg(long, default_value_t = 20)]
    steps: u32,
    #[arg(long, default_value_t = 7.0)]
    cfg: f32,
    /// Seed of the first image (image i uses seed + i); random when absent (printed).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = 1)]
    batch: u32,
    #[arg(long, default_value = "euler_a")]
    sampler: SamplerKind,
    #[arg(long, default_value = "normal")]
    scheduler: Schedule,
    #[arg(long, default_value_t = 1)]
    clip_skip: u32,
    /// Start from this image (img2img / inpaint).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Denoising strength with --init: floor(strength·steps) steps run.
    #[arg(long)]
    strength: Option<f32>,
    /// Inpaint mask (white = regenerate; alpha if the PNG has real alpha, else luminance).
    #[arg(long)]
    mask: Option<PathBuf>,
    #[arg(long)]
    invert_mask: bool,
    #[arg(long, default_value = "whole")]
    inpaint_area: InpaintArea,
    #[arg(long, default_value_t = 32)]
    padding: u32,
    #[arg(long, default_value_t = 4)]
    mask_blur: u32,
    #[arg(long, default_value = "original")]
    masked_content: MaskedContent,
    /// Context box X,Y,W,H that the only-masked crop always contains.
    #[arg(long, value_name = "X,Y,W,H")]
    context: Option<String>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Compute precision: f32 (default; what the parity tests check), or f16/bf16 where the
    /// device supports them (GPUs; on CPU they are slower and less exact).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    dtype: DType,
    /// Output folder: `<seed+i>.png` per image.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if args.vae.is_some() && args.dtype != DType::F32 {
        bail!("--vae with --dtype other than f32 is not supported yet");
    }
    let loras = lora_specs(&args)?;
    let device = device_from_name(&args.device)?;
    if device.is_cpu() && args.dtype == DType::BF16 {
        bail!(
            "--dtype bf16 is not supported on the CPU (candle has no bf16 convolution there); use f32 or f16"
        );
    }
    let checkpoint = Checkpoint::open(&args.model)?;
    let native = u32::try_from(checkpoint.config().arch.native_size_px()).unwrap_or(512);

    let limits = DecodeLimits::default();
    let read_image = |path: &Path| -> anyhow::Result<raster::Image<raster::Rgba8>> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        Ok(decode_image(&bytes, &limits).with_context(|| path.display().to_string())?.image)
    };
    let init_image = args.init.as_deref().map(read_image).transpose()?;
    if args.strength.is_some() && init_image.is_none() {
        bail!("--strength needs --init");
    }
    let inpainting = args.mask.is_some();
    if inpainting && init_image.is_none() {
        bail!("--mask needs --init (the image to inpaint)");
    }
    if !inpainting && (args.invert_mask || args.context.is_some()) {
        bail!("--invert-mask and --context need --mask");
    }
    let only_masked = args.inpaint_area == InpaintArea::OnlyMasked;
    if args.context.is_some() && !only_masked {
        bail!("--context needs --inpaint-area masked (whole-picture inpainting sees everything)");
    }
    // Only masked: the crop is scaled to the working size, the model's native size unless
    // given (as A1111). Otherwise an init image sets the size, rounded down to multiples of 8.
    let (default_w, default_h) = match &init_image {
        Some(_) if inpainting && only_masked => (native, native),
        Some(img) => ((img.width() / 8 * 8).max(8), (img.height() / 8 * 8).max(8)),
        None => (native, native),
    };
    let seed = args.seed.unwrap_or_else(crate::editor::generation::random_seed);
    let mut request = GenerationRequest::txt2img(
        args.prompt.clone(),
        args.width.unwrap_or(default_w),
        args.height.unwrap_or(default_h),
        seed,
    );
    request.negative_prompt = args.negative.clone();
    request.steps = args.steps;
    request.cfg_scale = args.cfg;
    request.batch_size = args.batch;
    request.sampler = args.sampler;
    request.schedule = args.scheduler;
    request.clip_skip = args.clip_skip;
    if let Some(image) = init_image {
        if let Some(mask_path) = &args.mask {
            let bytes = std::fs::read(mask_path)
                .with_context(|| format!("cannot read {}", mask_path.display()))?;
            // Alpha if the PNG has real alpha, else luminance; the size and emptiness checks
            // are the request's (`validate` below), before the model is loaded.
            let mask = raster::decode_mask(&bytes, &limits)
                .with_context(|| mask_path.display().to_string())?;
            request.inpaint = Some(InpaintOptions {
                mask,
                invert_mask: args.invert_mask,
                area: args.inpaint_area,
                padding_px: args.padding,
                mask_blur_px: args.mask_blur,
                masked_content: args.masked_content,
                context: args.context.as_deref().map(parse_box).transpose()?,
            });
        }
        request.init = Some(InitImage { image, strength: args.strength.unwrap_or(0.75) });
    }
    request.validate()?;

    eprintln!("loading {}", args.model.display());
    let started = Instant::now();
    let mut model = StableDiffusion::load(&checkpoint, &device, args.dtype)?;
    if let Some(vae_path) = &args.vae {
        let vae = load_standalone_vae(vae_path, model.vae.scaling_factor(), &device)?;
        replace_vae(&mut model, vae);
    }
    if !loras.is_empty() {
        let specs: Vec<LoraSpec> = loras.iter().map(|(_, spec)| spec.clone()).collect();
        let applied = apply_loras(&mut model, &specs)?;
        for key in applied.report().unmatched_keys() {
            eprintln!("warning: LoRA key matches no layer of this model: {key}");
        }
    }
    eprintln!("loaded in {:.1} s; seed {seed}", started.elapsed().as_secs_f64());
    let started = Instant::now();
    // Textual-inversion embeddings in models/embeddings are usable by file name in prompts.
    let embeddings_dir = Path::new("models/embeddings");
    let embeddings = if embeddings_dir.is_dir() {
        let (set, failures) = EmbeddingSet::load_folder(embeddings_dir)?;
        for (path, error) in failures {
            eprintln!("warning: embedding {} skipped: {error}", path.display());
        }
        set
    } else {
        EmbeddingSet::default()
    };
    let tokenizers = PromptTokenizers::for_model(&model)?;
    let prompt_chunks = tokenizers.tokenize(&request.prompt, &embeddings)?;
    let negative_chunks = tokenizers.tokenize(&request.negative_prompt, &embeddings)?;
    let (cond, uncond) = (chunk_lists(&prompt_chunks), chunk_lists(&negative_chunks));
    let prompts = EncodedPrompts { cond: &cond, uncond: &uncond, embeddings: &embeddings };
    let generated = generate_with_chunks(&model, &request, &prompts, &mut |report| {
        eprint!("\rstep {}/{}", report.step, report.total);
        let _ = std::io::stderr().flush();
        ControlFlow::Continue(())
    })?;
    eprintln!(
        "\rgenerated {} image(s) in {:.1} s",
        generated.images.len(),
        started.elapsed().as_secs_f64()
    );

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let identity = ModelIdentity {
        name: args.model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        // Diffusers folders have no file hash (as in A1111).
        hash: if args.model.is_file() {
            Some(super::model_hash::model_hash(&args.model)?)
        } else {
            None
        },
        vae_name: args.vae.as_deref().map(file_name),
        vae_hash: args.vae.as_deref().map(super::model_hash::model_hash).transpose()?,
        lora_hashes: loras
            .iter()
            .map(|(name, spec)| {
                Ok(LoraHash { name: name.clone(), hash: super::model_hash::lora_hash(&spec.path)? })
            })
            .collect::<anyhow::Result<_>>()?,
        ti_hashes: ti_hashes_for_prompts(&prompt_chunks, &negative_chunks, &embeddings)?,
        inpainting_model: model.unet.config().in_channels == 9,
    };
    for (index, (image, image_seed)) in generated.images.iter().zip(&generated.seeds).enumerate() {
        let info = infotext_for(&request, u32::try_from(index).unwrap_or(u32::MAX), &identity);
        let png = encode_png(
            image,
            &[("parameters".to_owned(), info.to_text())],
            PngCompression::Balanced,
        )?;
        let path = args.out.join(format!("{image_seed}.png"));
        ora::write_atomically(&path, |file| Ok(file.write_all(&png)?))
            .with_context(|| format!("cannot write {}", path.display()))?;
        println_path(&path);
    }
    Ok(())
}

#[allow(clippy::print_stdout, reason = "the written paths are the command's output")]
fn println_path(path: &Path) {
    println!("{}", path.display());
}

fn parse_dtype(text: &str) -> Result<DType, String> {
    match text {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        other => Err(format!("unknown dtype '{other}' (expected f32, f16 or bf16)")),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// LoRAs from `--lora PATH[:WEIGHT]` flags and from `<lora:name:w>` tags in the prompt (looked
/// up by file name in `models/`), each with the name the infotext gives it.
fn lora_specs(args: &GenerateArgs) -> anyhow::Result<Vec<(String, LoraSpec)>> {
    let mut specs = Vec::new();
    for flag in &args.loras {
        // `PATH:W` — split at the last colon only when what follows parses as a number, so
        // Windows drive letters and colons in folder names survive.
        let (path, weight) = match flag.rsplit_once(':') {
            Some((p, w)) if w.parse::<f32>().is_ok() => (p, w.parse::<f32>()?),
            _ => (flag.as_str(), 1.0),
        };
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("--lora {flag}: no such file");
        }
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        specs.push((name, LoraSpec::new(path, weight)));
    }
    let (_, tags) = split_extra_networks(&args.prompt)?;
    let tags: Vec<_> = tags.into_iter().filter(|t| is_lora_kind(&t.kind)).collect();
    if !tags.is_empty() {
        let library = Library::scan(&[PathBuf::from("models")]);
        for tag in tags {
            let lora = lora_from_tag(&tag)?;
            let Some(entry) = library.find_by_name(&lora.name, ModelKind::Lora) else {
                bail!(
                    "the prompt uses <lora:{}>, but no LoRA of that name is in models/loras",
                    lora.name
                );
            };
            specs.push((
                lora.name.clone(),
                LoraSpec {
                    path: entry.path.clone(),
                    weights: LoraWeights { text_encoder: lora.te_weight, unet: lora.unet_weight },
                },
            ));
        }
    }
    Ok(specs)
}

/// `X,Y,W,H` → a rect.
fn parse_box(text: &str) -> anyhow::Result<Rect> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [x, y, w, h] = parts.as_slice() else {
        bail!("--context wants X,Y,W,H, got '{text}'");
    };
    let rect = Rect::new(x.parse()?, y.parse()?, w.parse()?, h.parse()?);
    if rect.is_empty() {
        bail!("--context {text}: width and height must be positive");
    }
    Ok(rect)
}
