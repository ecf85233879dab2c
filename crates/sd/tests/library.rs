//! The model library on temporary A1111-, ComfyUI- and plain-folder trees: kinds, architectures,
//! names, A1111 hashes checked against `sha256sum` and hashlib known answers, the hash cache, the
//! worker's progress and cancel, and files that cannot be used.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use pentimento_sd::ModelArch;
use pentimento_sd::library::{
    EntryStatus, FileFormat, HashCache, HashEvent, HashWorker, Library, LibraryEntry, LibraryError,
    ModelKind, RootLayout, format_hash_list, hash_file, parse_hash_list,
};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// Known answers from `tests/reference/library_hashes.py` (hashlib) for the committed fixture.
const TINY_SD1_SHA256: &str = "d6f16c30477ebc149ead6da10b478c5e01a95d4ffb3b1ca8260b59fd016b7b35";
const TINY_SD1_ADDNET: &str = "c5b86b78be83135c74fd7042c9fde432457a6f38ebe0f37951b7803526de6186";
const TINY_SD1_LEGACY: &str = "87cd2089";
const TINY_SDXL_SHA256: &str = "28391edaa60794e7aeff7e4f5ca89dd83906c195f966db739c051cc37a72a541";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models").join(name)
}

/// Writes a safetensors file of F16 tensors with deterministic, `seed`-dependent bytes.
fn write_st(path: &Path, tensors: &[(&str, &[usize])], metadata: &[(&str, &str)], seed: u8) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .enumerate()
        .map(|(t, (n, s))| {
            let len = 2 * s.iter().product::<usize>();
            let bytes = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ t as u8);
            (n.to_string(), s.to_vec(), bytes.collect())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F16, s.clone(), b).unwrap()))
        .collect();
    let metadata = (!metadata.is_empty()).then(|| {
        metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>()
    });
    safetensors::serialize_to_file(views, metadata, path).unwrap();
}

/// A kohya LoRA for SD1: UNet cross-attention (context 768), a conv layer, the text encoder.
fn write_sd1_lora(path: &Path, seed: u8) {
    let p = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k";
    let c = "lora_unet_down_blocks_0_resnets_0_conv1";
    let t = "lora_te_text_model_encoder_layers_0_self_attn_q_proj";
    let names = [
        format!("{p}.lora_down.weight"),
        format!("{p}.lora_up.weight"),
        format!("{p}.alpha"),
        format!("{c}.lora_down.weight"),
        format!("{c}.lora_up.weight"),
        format!("{t}.lora_down.weight"),
        format!("{t}.lora_up.weight"),
    ];
    let shapes: [&[usize]; 7] =
        [&[4, 768], &[320, 4], &[], &[4, 320, 3, 3], &[320, 4, 1, 1], &[4, 768], &[768, 4]];
    let tensors: Vec<(&str, &[usize])> =
        names.iter().map(String::as_str).zip(shapes.iter().copied()).collect();
    write_st(path, &tensors, &[("ss_network_module", "networks.lora")], seed);
}

/// An SDXL LoRA with both text encoders and kohya's `sshs_model_hash` metadata.
fn write_sdxl_lora(path: &Path, sshs_hash: &str) {
    write_st(
        path,
        &[
            ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", &[4, 768]),
            ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", &[768, 4]),
            ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", &[4, 1280]),
            ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", &[1280, 4]),
        ],
        &[("sshs_model_hash", sshs_hash), ("ss_base_model_version", "sdxl_base_v1-0")],
        7,
    );
}

/// A LyCORIS LoHa for SDXL (cross-attention context 2048), UNet only.
fn write_sdxl_loha(path: &Path) {
    let p = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_v";
    let names = [
        format!("{p}.hada_w1_a"),
        format!("{p}.hada_w1_b"),
        format!("{p}.hada_w2_a"),
        format!("{p}.hada_w2_b"),
        format!("{p}.alpha"),
    ];
    let shapes: [&[usize]; 5] = [&[640, 4], &[4, 2048], &[640, 4], &[4, 2048], &[]];
    let tensors: Vec<(&str, &[usize])> =
        names.iter().map(String::as_str).zip(shapes.iter().copied()).collect();
    write_st(path, &tensors, &[], 11);
}

fn write_vae(path: &Path) {
    write_st(
        path,
        &[
            ("encoder.conv_in.weight", &[8, 3, 3, 3]),
            ("encoder.down.0.block.0.conv1.weight", &[8, 8, 3, 3]),
            ("decoder.conv_out.weight", &[3, 8, 3, 3]),
            ("quant_conv.weight", &[8, 8, 1, 1]),
            ("post_quant_conv.weight", &[4, 4, 1, 1]),
        ],
        &[],
        3,
    );
}

fn write_sd1_embedding(path: &Path) {
    write_st(path, &[("emb_params", &[2, 768])], &[], 5);
}

fn write_sdxl_embedding(path: &Path) {
    write_st(path, &[("clip_l", &[3, 768]), ("clip_g", &[3, 1280])], &[], 9);
}

fn write_esrgan(path: &Path) {
    write_st(
        path,
        &[
            ("conv_first.weight", &[4, 3, 3, 3]),
            ("body.0.rdb1.conv1.weight", &[4, 4, 3, 3]),
            ("conv_last.weight", &[3, 4, 3, 3]),
        ],
        &[],
        13,
    );
}

/// A pickle: protocol-2 magic bytes (never opened by the library anyway).
fn write_pickle(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, [0x80, 0x02, b'}', b'q', 0x00, b'.']).unwrap();
}

fn symlink(target: &Path, link: &Path) {
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, link).unwrap();
}

/// An A1111 installation: `webui.py`, `models/{Stable-diffusion,Lora,LyCORIS,VAE,ESRGAN}`, and
/// top-level `embeddings/`, with the problem files a real one has.
fn a1111_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("webui.py"), "").unwrap();
    let m = root.join("models");
    let sd = m.join("Stable-diffusion");
    fs::create_dir_all(sd.join("xl")).unwrap();
    fs::copy(fixture("tiny_sd1.safetensors"), sd.join("tiny_sd1.safetensors")).unwrap();
    fs::copy(fixture("tiny_sd1_inpaint.safetensors"), sd.join("Inpaint.safetensors")).unwrap();
    symlink(&fixture("tiny_sdxl.safetensors"), &sd.join("xl/tiny_sdxl.safetensors"));
    write_pickle(&sd.join("old.ckpt"));
    // A LoRA dropped among checkpoints: listed as a checkpoint that says what it is.
    write_sd1_lora(&sd.join("misplaced_lora.safetensors"), 99);
    fs::write(sd.join("notes.txt"), "not a model").unwrap();
    write_vae(&sd.join("tiny_sd1.vae.safetensors"));
    write_sd1_lora(&m.join("Lora/style/Detail.safetensors"), 1);
    write_sdxl_lora(&m.join("Lora/xl_lora.safetensors"), &"ab".repeat(32));
    write_sdxl_loha(&m.join("LyCORIS/loha.safetensors"));
    write_sd1_lora(&m.join("Lora/.trash/hidden.safetensors"), 2);
    // Truncated: the header length says more than the file holds.
    fs::write(m.join("Lora/broken.safetensors"), [200, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
    symlink(&m.join("Lora/nowhere.safetensors"), &m.join("Lora/dangling.safetensors"));
    // A symlink loop back to the Lora folder itself.
    symlink(&m.join("Lora"), &m.join("Lora/style/loop"));
    write_vae(&m.join("VAE/vae-ft-mse.safetensors"));
    write_pickle(&m.join("ESRGAN/4x_foolhardy.pth"));
    write_sd1_embedding(&root.join("embeddings/EasyNegative.safetensors"));
    write_sdxl_embedding(&root.join("embeddings/xl/negXL.safetensors"));
    write_pickle(&root.join("embeddings/old.pt"));
    // Not a kind folder: never scanned.
    write_sd1_lora(&m.join("ControlNet/cn.safetensors"), 4);
}

/// A ComfyUI installation: `models/{checkpoints,loras,vae,embeddings,upscale_models}`.
fn comfy_tree(root: &Path) {
    let m = root.join("models");
    symlink(&fixture("tiny_sd1.safetensors"), &m.join("checkpoints/sd1/tiny_sd1.safetensors"));
    symlink(&fixture("tiny_sd1_diffusers"), &m.join("checkpoints/tiny_sd1_diffusers"));
    write_sd1_lora(&m.join("loras/Detail.safetensors"), 1);
    write_vae(&m.join("vae/vae.safetensors"));
    write_sdxl_embedding(&m.join("embeddings/negXL.safetensors"));
    write_esrgan(&m.join("upscale_models/4x-UltraSharp.safetensors"));
    fs::create_dir_all(root.join("custom_nodes")).unwrap();
}

fn entry<'a>(library: &'a Library, kind: ModelKind, name: &str) -> &'a LibraryEntry {
    library
        .entries()
        .iter()
        .find(|e| e.kind == kind && e.name == name)
        .unwrap_or_else(|| unreachable!("no {kind:?} named {name}: {:#?}", names(library)))
}

fn names(library: &Library) -> Vec<(ModelKind, String)> {
    library.entries().iter().map(|e| (e.kind, e.name.clone())).collect()
}

/// `sha256sum` of `path`, or `None` where the tool is missing.
fn sha256sum(path: &Path) -> Option<String> {
    let out = Command::new("sha256sum").arg(path).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.split_whitespace().next()?.to_string())
}

/// The addnet hash computed independently: the bytes after the header, written to a file and
/// hashed by `sha256sum`.
fn addnet_by_sha256sum(path: &Path, scratch: &Path) -> Option<String> {
    let bytes = fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    fs::write(scratch, &bytes[8 + header_len..]).unwrap();
    sha256sum(scratch)
}

/// Runs the worker to the end and returns the cache, report and events.
fn run_worker(
    library: &Library,
    cache: HashCache,
) -> (HashCache, pentimento_sd::library::HashReport, Vec<HashEvent>) {
    let (worker, events) = HashWorker::spawn_with_channel(library.missing_hashes(), cache).unwrap();
    let (cache, report) = worker.join().unwrap();
    (cache, report, events.try_iter().collect())
}

#[test]
fn a1111_tree_kinds_architectures_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("stable-diffusion-webui");
    fs::create_dir_all(&root).unwrap();
    a1111_tree(&root);
    let library = Library::scan(std::slice::from_ref(&root));
    assert_eq!(library.roots()[0].layout, RootLayout::A1111);

    let sd1 = entry(&library, ModelKind::Checkpoint, "tiny_sd1");
    assert_eq!(sd1.arch, Some(ModelArch::Sd1));
    assert_eq!(sd1.status, EntryStatus::Usable);
    assert_eq!(sd1.size_bytes, fs::metadata(fixture("tiny_sd1.safetensors")).unwrap().len());
    assert!(sd1.modified_unix_ns > 0);
    assert_eq!(sd1.stem, "tiny_sd1");
    assert_eq!(entry(&library, ModelKind::Checkpoint, "Inpaint").arch, Some(ModelArch::Sd1Inpaint));
    let xl = entry(&library, ModelKind::Checkpoint, "xl/tiny_sdxl");
    assert_eq!((xl.arch, xl.stem.as_str()), (Some(ModelArch::Sdxl), "tiny_sdxl"));

    let old = entry(&library, ModelKind::Checkpoint, "old");
    assert_eq!(old.format, FileFormat::Pickle);
    assert!(matches!(&old.status, EntryStatus::Refused(m) if m.contains("safetensors")));
    let misplaced = entry(&library, ModelKind::Checkpoint, "misplaced_lora");
    assert!(
        matches!(&misplaced.status, EntryStatus::Unsupported(m) if m.contains("LoRA")),
        "{:?}",
        misplaced.status
    );

    let detail = entry(&library, ModelKind::Lora, "style/Detail");
    assert_eq!((detail.arch, &detail.status), (Some(ModelArch::Sd1), &EntryStatus::Usable));
    assert_eq!(detail.tensor_count, Some(7));
    let xl_lora = entry(&library, ModelKind::Lora, "xl_lora");
    assert_eq!(xl_lora.arch, Some(ModelArch::Sdxl));
    assert_eq!(xl_lora.is_compatible_with(ModelArch::Sd1), Some(false));
    assert_eq!(xl_lora.is_compatible_with(ModelArch::SdxlInpaint), Some(true));
    let loha = entry(&library, ModelKind::Lora, "loha");
    // Its 640-byte header length begins with 80 02, a pickle's magic: the `{` after it decides.
    assert_eq!(fs::read(&loha.path).unwrap()[..2], [0x80, 0x02]);
    assert_eq!(loha.arch, Some(ModelArch::Sdxl), "{loha:?}");
    for name in ["broken", "dangling"] {
        let e = entry(&library, ModelKind::Lora, name);
        assert!(matches!(e.status, EntryStatus::Unreadable(_)), "{name}: {:?}", e.status);
    }

    let beside = entry(&library, ModelKind::Vae, "tiny_sd1.vae");
    assert_eq!(beside.status, EntryStatus::Usable);
    let vae = entry(&library, ModelKind::Vae, "vae-ft-mse");
    assert_eq!((vae.arch, &vae.status), (None, &EntryStatus::Usable));
    let easy = entry(&library, ModelKind::Embedding, "EasyNegative");
    assert_eq!((easy.arch, easy.vectors), (Some(ModelArch::Sd1), Some(2)));
    let neg_xl = entry(&library, ModelKind::Embedding, "xl/negXL");
    assert_eq!((neg_xl.arch, neg_xl.vectors), (Some(ModelArch::Sdxl), Some(3)));
    assert!(matches!(entry(&library, ModelKind::Embedding, "old").status, EntryStatus::Refused(_)));
    let upscaler = entry(&library, ModelKind::Upscaler, "4x_foolhardy");
    assert_eq!(upscaler.format, FileFormat::Pickle);

    // Hidden folders, non-model files, folders that are not kind folders, and the symlink loop.
    let all = names(&library);
    assert!(!all.iter().any(|(_, n)| n.contains("hidden") || n.contains("cn") || n == "notes"));
    assert_eq!(all.iter().filter(|(_, n)| n.ends_with("Detail")).count(), 1, "{all:?}");
    assert_eq!(library.entries().len(), 16, "{all:#?}");

    // Lookup by name: stem, subfolder path, case-insensitive, with extension.
    let by_name = |name: &str, kind| library.find_by_name(name, kind).map(|e| e.name.as_str());
    assert_eq!(by_name("detail", ModelKind::Lora), Some("style/Detail"));
    assert_eq!(by_name("Style/DETAIL", ModelKind::Lora), Some("style/Detail"));
    assert_eq!(by_name("detail.safetensors", ModelKind::Lora), Some("style/Detail"));
    assert_eq!(by_name("easynegative", ModelKind::Embedding), Some("EasyNegative"));
    assert_eq!(by_name("detail", ModelKind::Checkpoint), None);

    // Listing with a search filter.
    let listed: Vec<&str> =
        library.list(ModelKind::Checkpoint, "TINY").iter().map(|e| e.name.as_str()).collect();
    assert_eq!(listed, ["tiny_sd1", "xl/tiny_sdxl"]);
    assert_eq!(library.list(ModelKind::Checkpoint, "xl tiny").len(), 1);
    assert_eq!(library.list(ModelKind::Lora, "").len(), 5);
}

#[test]
fn comfyui_and_plain_folders() {
    let dir = tempfile::tempdir().unwrap();
    let comfy = dir.path().join("ComfyUI");
    comfy_tree(&comfy);
    let plain = dir.path().join("Downloads");
    write_sd1_lora(&plain.join("some_lora.safetensors"), 21);
    write_vae(&plain.join("a/vae.safetensors"));
    write_sd1_embedding(&plain.join("emb.safetensors"));
    write_esrgan(&plain.join("up.safetensors"));
    fs::copy(fixture("tiny_sdxl.safetensors"), plain.join("model.safetensors")).unwrap();
    write_st(&plain.join("mystery.safetensors"), &[("foo.weight", &[2, 2])], &[], 0);
    // A root that is itself a kind folder (a shared LoRA folder added in settings).
    let shared = dir.path().join("shared").join("Lora");
    write_sdxl_loha(&shared.join("shared_loha.safetensors"));
    let missing = dir.path().join("does-not-exist");
    let diffusers_root = fixture("tiny_sd1_diffusers");

    let library =
        Library::scan(&[comfy.clone(), plain.clone(), shared.clone(), missing, diffusers_root]);
    let layouts: Vec<RootLayout> = library.roots().iter().map(|r| r.layout).collect();
    assert_eq!(
        layouts,
        [
            RootLayout::ComfyUi,
            RootLayout::Plain,
            RootLayout::KindFolder(ModelKind::Lora),
            RootLayout::Missing,
            RootLayout::DiffusersModel,
        ]
    );

    let sd1 = entry(&library, ModelKind::Checkpoint, "sd1/tiny_sd1");
    assert_eq!(sd1.arch, Some(ModelArch::Sd1));
    let diffusers = entry(&library, ModelKind::Checkpoint, "tiny_sd1_diffusers");
    assert_eq!(diffusers.format, FileFormat::DiffusersFolder);
    assert_eq!(diffusers.arch, Some(ModelArch::Sd1));
    assert_eq!(diffusers.status, EntryStatus::Usable);
    // Reached through the ComfyUI symlink and as a root of its own: listed once.
    assert_eq!(library.list(ModelKind::Checkpoint, "diffusers").len(), 1);
    assert_eq!(entry(&library, ModelKind::Lora, "Detail").arch, Some(ModelArch::Sd1));
    assert_eq!(entry(&library, ModelKind::Vae, "vae").status, EntryStatus::Usable);
    assert_eq!(entry(&library, ModelKind::Embedding, "negXL").arch, Some(ModelArch::Sdxl));
    assert_eq!(entry(&library, ModelKind::Upscaler, "4x-UltraSharp").status, EntryStatus::Usable);

    // Plain folder: kinds by content.
    assert_eq!(entry(&library, ModelKind::Lora, "some_lora").arch, Some(ModelArch::Sd1));
    assert_eq!(entry(&library, ModelKind::Vae, "a/vae").kind, ModelKind::Vae);
    assert_eq!(entry(&library, ModelKind::Embedding, "emb").vectors, Some(2));
    assert_eq!(entry(&library, ModelKind::Upscaler, "up").kind, ModelKind::Upscaler);
    assert_eq!(entry(&library, ModelKind::Checkpoint, "model").arch, Some(ModelArch::Sdxl));
    let mystery = entry(&library, ModelKind::Checkpoint, "mystery");
    assert!(
        matches!(&mystery.status, EntryStatus::Unsupported(m) if m.contains("not a Stable Diffusion checkpoint")),
        "{:?}",
        mystery.status
    );
    assert_eq!(entry(&library, ModelKind::Lora, "shared_loha").arch, Some(ModelArch::Sdxl));

    // One file on its own (`pentimento info`): kind from its header.
    let single = Library::inspect_file(&plain.join("some_lora.safetensors"));
    assert_eq!((single.kind, single.arch), (ModelKind::Lora, Some(ModelArch::Sd1)));
    assert_eq!(single.name, "some_lora");
    let folder = Library::inspect_file(&fixture("tiny_sd1_diffusers"));
    assert_eq!((folder.format, folder.arch), (FileFormat::DiffusersFolder, Some(ModelArch::Sd1)));
}

#[test]
fn hashes_match_sha256sum_and_a1111_rules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("webui");
    fs::create_dir_all(&root).unwrap();
    a1111_tree(&root);
    let cache_file = dir.path().join("config/model-hashes.json");
    let mut library = Library::scan(std::slice::from_ref(&root));
    let jobs = library.missing_hashes();
    // Every safetensors file that could be read; pickles and unreadable files are never hashed.
    assert_eq!(jobs.len(), 11, "{jobs:#?}");
    assert!(jobs.windows(2).all(|w| w[0].key.size_bytes <= w[1].key.size_bytes));

    let (cache, report, events) = run_worker(&library, HashCache::load(&cache_file).unwrap());
    assert_eq!((report.files_hashed, report.failed, report.cancelled), (11, 0, false));
    assert_eq!(report.cache_error, None);
    assert!(matches!(events.first(), Some(HashEvent::Started { files_total: 11, .. })));
    assert!(matches!(events.last(), Some(HashEvent::Finished(r)) if r == &report));
    let last_progress = events.iter().rev().find_map(|e| match e {
        HashEvent::Progress { bytes_done, bytes_total, .. } => Some((*bytes_done, *bytes_total)),
        _ => None,
    });
    assert!(matches!(last_progress, Some((done, total)) if done == total && total > 0));
    for event in &events {
        library.apply_event(event);
    }
    assert!(library.missing_hashes().is_empty());
    assert_eq!(cache.len(), 11);
    assert!(cache_file.is_file());

    // Checkpoints: `Model hash` = first 10 hex of the whole-file sha256.
    let sd1 = entry(&library, ModelKind::Checkpoint, "tiny_sd1");
    let hashes = sd1.hashes.as_ref().unwrap();
    assert_eq!(hashes.sha256, TINY_SD1_SHA256);
    assert_eq!(hashes.legacy_model_hash, TINY_SD1_LEGACY);
    assert_eq!(sd1.model_hash().as_deref(), Some("d6f16c3047"));
    assert_eq!(sd1.infotext_hash(), sd1.model_hash());
    let xl = entry(&library, ModelKind::Checkpoint, "xl/tiny_sdxl");
    assert_eq!(xl.hashes.as_ref().unwrap().sha256, TINY_SDXL_SHA256);
    for e in library.entries().iter().filter(|e| e.hashes.is_some()) {
        if let Some(independent) = sha256sum(&e.path) {
            assert_eq!(e.hashes.as_ref().unwrap().sha256, independent, "{}", e.name);
        }
    }

    // LoRAs: `Lora hashes` = first 12 hex of the sha256 after the header …
    let detail = entry(&library, ModelKind::Lora, "style/Detail");
    let addnet = detail.hashes.as_ref().unwrap().addnet_sha256.clone().unwrap();
    if let Some(independent) = addnet_by_sha256sum(&detail.path, &dir.path().join("tail")) {
        assert_eq!(addnet, independent);
    }
    assert_eq!(detail.lora_hash().unwrap(), addnet[..12]);
    assert_eq!(detail.infotext_hash(), detail.lora_hash());
    assert_ne!(addnet, detail.hashes.as_ref().unwrap().sha256);
    // … unless kohya's `sshs_model_hash` metadata says otherwise.
    let xl_lora = entry(&library, ModelKind::Lora, "xl_lora");
    assert_eq!(xl_lora.lora_hash().as_deref(), Some("abababababab"));
    // Embeddings: `TI hashes` = first 12 hex of the whole-file sha256.
    let easy = entry(&library, ModelKind::Embedding, "EasyNegative");
    assert_eq!(easy.ti_hash().unwrap(), easy.hashes.as_ref().unwrap().sha256[..12]);
    assert_eq!(easy.infotext_hash(), easy.ti_hash());
    assert_eq!(entry(&library, ModelKind::Vae, "vae-ft-mse").infotext_hash().unwrap().len(), 10);

    // Reuse parameters: resolve by hash.
    let by_hash =
        |h: &str, kind| library.find_by_hash(h, kind).map(|e| e.name.clone()).unwrap_or_default();
    assert_eq!(by_hash("d6f16c3047", Some(ModelKind::Checkpoint)), "tiny_sd1");
    assert_eq!(by_hash("D6F16C3047", None), "tiny_sd1");
    assert_eq!(by_hash(TINY_SD1_LEGACY, Some(ModelKind::Checkpoint)), "tiny_sd1");
    assert_eq!(by_hash(TINY_SD1_SHA256, None), "tiny_sd1");
    assert_eq!(by_hash(&detail.lora_hash().unwrap(), Some(ModelKind::Lora)), "style/Detail");
    assert_eq!(by_hash("abababababab", Some(ModelKind::Lora)), "xl_lora");
    assert_eq!(by_hash(&easy.ti_hash().unwrap(), Some(ModelKind::Embedding)), "EasyNegative");
    assert_eq!(by_hash("d6f16c3047", Some(ModelKind::Lora)), "");
    assert_eq!(by_hash("d6f1", None), "", "too short to identify a file");

    // `Lora hashes` written and read back as A1111 does.
    let value = format_hash_list(&[
        ("Detail", detail.lora_hash().unwrap()),
        ("xl:lora,", "abababababab".to_string()),
    ]);
    assert_eq!(value, format!("Detail: {}, xllora: abababababab", detail.lora_hash().unwrap()));
    let parsed = parse_hash_list(&value);
    assert_eq!(parsed[1], ("xllora".to_string(), "abababababab".to_string()));
    let resolved = library.resolve_hash_list(&value, ModelKind::Lora);
    let found: Vec<Option<&str>> =
        resolved.iter().map(|(_, _, e)| e.map(|e| e.name.as_str())).collect();
    assert_eq!(found, [Some("style/Detail"), Some("xl_lora")]);
    let ti = format_hash_list(&[("EasyNegative", easy.ti_hash().unwrap())]);
    let resolved = library.resolve_hash_list(&ti, ModelKind::Embedding);
    assert_eq!(resolved[0].2.map(|e| e.name.as_str()), Some("EasyNegative"));

    // A pasted prompt names LoRAs by the alias it was written with; the hash finds the file.
    let pasted = format!("Renamed: {}, gone: 0123456789ab", detail.lora_hash().unwrap());
    assert_eq!(
        library.rewrite_prompt_loras("a cat <lora:Renamed:0.8> <lora:gone:1> <lora:x", &pasted),
        "a cat <lora:Detail:0.8> <lora:gone:1> <lora:x"
    );
}

#[test]
fn hash_file_known_answers_and_cancel() {
    let never = AtomicBool::new(false);
    let mut calls = 0;
    let hashes =
        hash_file(&fixture("tiny_sd1.safetensors"), true, &never, &mut |_, _| calls += 1).unwrap();
    assert_eq!(hashes.sha256, TINY_SD1_SHA256);
    assert_eq!(hashes.addnet_sha256.as_deref(), Some(TINY_SD1_ADDNET));
    assert_eq!(hashes.legacy_model_hash, TINY_SD1_LEGACY);
    assert_eq!(calls, 2, "6 MB in 4 MiB blocks");

    // Cancelled after the first block.
    let cancel = AtomicBool::new(false);
    let result = hash_file(&fixture("tiny_sd1.safetensors"), false, &cancel, &mut |_, _| {
        cancel.store(true, Ordering::Relaxed);
    });
    assert!(matches!(result, Err(LibraryError::Cancelled)));

    // A file shorter than the legacy hash's offset hashes an empty range, as Python reads nothing.
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.safetensors");
    write_sd1_embedding(&small);
    let small_hashes = hash_file(&small, false, &never, &mut |_, _| {}).unwrap();
    // sha256 of b"" = e3b0c442…
    assert_eq!(small_hashes.legacy_model_hash, "e3b0c442");
    assert_eq!(small_hashes.addnet_sha256, None);
}

#[test]
fn cache_makes_rescans_instant_and_invalidates_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("models");
    fs::create_dir_all(root.join("checkpoints")).unwrap();
    fs::copy(fixture("tiny_sd1.safetensors"), root.join("checkpoints/a.safetensors")).unwrap();
    write_sd1_lora(&root.join("loras/l.safetensors"), 1);
    write_sd1_embedding(&root.join("embeddings/e.safetensors"));
    let cache_file = dir.path().join("cache.json");
    let roots = [root.clone()];

    let library = Library::scan(&roots);
    assert_eq!(library.roots()[0].layout, RootLayout::ModelsFolder);
    let (_, first, _) = run_worker(&library, HashCache::load(&cache_file).unwrap());
    assert_eq!(first.files_hashed, 3);

    // Rescan: everything from the cache file, nothing hashed (the worker's counter stays 0).
    let cache = HashCache::load(&cache_file).unwrap();
    let library = Library::scan_with_cache(&roots, &cache);
    assert!(library.entries().iter().all(|e| e.hashes.is_some()));
    assert!(library.missing_hashes().is_empty());
    let (_, second, _) = run_worker(&library, cache);
    assert_eq!((second.files_hashed, second.bytes_hashed), (0, 0));

    // A new mtime invalidates exactly that file.
    let touched = root.join("checkpoints/a.safetensors");
    let file = fs::File::options().write(true).open(&touched).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(60)).unwrap();
    drop(file);
    let cache = HashCache::load(&cache_file).unwrap();
    let library = Library::scan_with_cache(&roots, &cache);
    let missing: Vec<PathBuf> = library.missing_hashes().into_iter().map(|j| j.path).collect();
    assert_eq!(missing, [touched]);
    let (_, third, _) = run_worker(&library, cache);
    assert_eq!(third.files_hashed, 1);

    // A new size (same mtime) invalidates too, and the new content gets a new hash.
    let lora = root.join("loras/l.safetensors");
    let before = HashCache::load(&cache_file).unwrap();
    let old_library = Library::scan_with_cache(&roots, &before);
    let old_hash = entry(&old_library, ModelKind::Lora, "l").lora_hash().unwrap();
    let mtime = fs::metadata(&lora).unwrap().modified().unwrap();
    write_sd1_lora(&lora, 77);
    let mut bytes = fs::read(&lora).unwrap();
    bytes.extend_from_slice(&[0; 16]);
    fs::write(&lora, bytes).unwrap();
    fs::File::options().write(true).open(&lora).unwrap().set_modified(mtime).unwrap();
    let mut library = Library::scan_with_cache(&roots, &before);
    let missing: Vec<PathBuf> = library.missing_hashes().into_iter().map(|j| j.path).collect();
    assert_eq!(missing, [lora]);
    let (_, _, events) = run_worker(&library, before);
    events.iter().for_each(|e| {
        library.apply_event(e);
    });
    assert_ne!(entry(&library, ModelKind::Lora, "l").lora_hash().unwrap(), old_hash);

    // A corrupt cache file is an error from `load` and an empty cache from `load_or_empty`.
    fs::write(&cache_file, "{ not json").unwrap();
    assert!(matches!(HashCache::load(&cache_file), Err(LibraryError::CacheCorrupt { .. })));
    let (empty, error) = HashCache::load_or_empty(&cache_file);
    assert!(empty.is_empty() && error.is_some());
}

#[test]
fn worker_cancel_stops_before_the_next_file_and_keeps_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("checkpoints");
    for name in ["a", "b", "c"] {
        symlink(&fixture("tiny_sd1.safetensors"), &root.join(format!("{name}.safetensors")));
    }
    // Symlinks to one file are listed once.
    let library = Library::scan(std::slice::from_ref(&root));
    assert_eq!(library.entries().len(), 1);
    for name in ["b", "c"] {
        fs::remove_file(root.join(format!("{name}.safetensors"))).unwrap();
        fs::copy(fixture("tiny_sd1.safetensors"), root.join(format!("{name}.safetensors")))
            .unwrap();
    }
    let library = Library::scan(std::slice::from_ref(&root));
    assert_eq!(library.missing_hashes().len(), 3);

    // The event callback holds the worker after the first file until the test has cancelled.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (event_tx, event_rx) = mpsc::channel();
    let worker = HashWorker::spawn(
        library.missing_hashes(),
        HashCache::load(dir.path().join("c.json")).unwrap(),
        move |event| {
            let first_done = matches!(event, HashEvent::Hashed { .. });
            event_tx.send(event).unwrap();
            if first_done {
                go_rx.recv().unwrap();
            }
        },
    )
    .unwrap();
    while !matches!(event_rx.recv().unwrap(), HashEvent::Hashed { .. }) {}
    worker.cancel();
    go_tx.send(()).unwrap();
    let (cache, report) = worker.join().unwrap();
    assert!(report.cancelled);
    assert_eq!(report.files_hashed, 1);
    assert_eq!(cache.len(), 1);
    assert_eq!(HashCache::load(dir.path().join("c.json")).unwrap().len(), 1, "saved on cancel");
}
