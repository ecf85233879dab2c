//! Every way a file can be wrong gives its own typed error naming the problem.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use pentimento_sd::{Checkpoint, SdError, StableDiffusion};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn tiny(kind: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../tests/fixtures/models/tiny_{kind}.safetensors"))
}

/// Writes a safetensors file holding f16 zeros of the given names and shapes.
fn write_synthetic(path: &Path, tensors: &[(&str, &[usize])]) {
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec(), vec![0u8; 2 * s.iter().product::<usize>()]))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = buffers
        .iter()
        .map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F16, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// Rewrites `source` into `path` with `edit` applied to the (name, shape) list; edited shapes get
/// zero data.
fn rewrite(source: &Path, path: &Path, edit: impl Fn(&str, &[usize]) -> Option<Vec<usize>>) {
    let bytes = std::fs::read(source).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, view) in st.tensors() {
        let Some(shape) = edit(&name, view.shape()) else { continue };
        let data = if shape == view.shape() {
            view.data().to_vec()
        } else {
            vec![0u8; view.dtype().bitsize() / 8 * shape.iter().product::<usize>()]
        };
        owned.push((name, view.dtype(), shape, data));
    }
    let views: Vec<(String, TensorView<'_>)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

fn open_err(path: &Path) -> (SdError, String) {
    let err = Checkpoint::open(path).err().expect("expected an error");
    let message = err.to_string();
    (err, message)
}

#[test]
fn truncated_file_is_named_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(tiny("sd1")).unwrap();
    let path = dir.path().join("cut.safetensors");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, SdError::Truncated { .. }), "{msg}");
    assert!(msg.contains("truncated") && msg.contains("bytes of tensor data"), "{msg}");

    std::fs::write(&path, &bytes[..100]).unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, SdError::Truncated { .. }), "{msg}");
    assert!(msg.contains("header declares"), "{msg}");

    std::fs::write(&path, [1u8, 2, 3]).unwrap();
    assert!(matches!(open_err(&path).0, SdError::Truncated { .. }));
}

#[test]
fn bad_header_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.safetensors");
    let mut bytes = 10u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"not json!!");
    std::fs::write(&path, &bytes).unwrap();
    let (err, msg) = open_err(&path);
    assert!(matches!(err, SdError::BadHeader { .. }), "{msg}");
    assert!(msg.contains("JSON"), "{msg}");
}

#[test]
fn pickles_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("model.ckpt");
    std::fs::write(&ckpt, b"anything").unwrap();
    let (err, msg) = open_err(&ckpt);
    assert!(matches!(err, SdError::Pickle { .. }), "{msg}");
    assert!(msg.contains("safetensors") && msg.contains("never unpickles"), "{msg}");

    // A renamed torch zip or raw pickle is recognised by its magic bytes.
    let zip = dir.path().join("renamed.safetensors");
    std::fs::write(&zip, b"PK\x03\x04rest of a torch zip").unwrap();
    assert!(matches!(open_err(&zip).0, SdError::Pickle { .. }));
    let pickle = dir.path().join("renamed2.safetensors");
    std::fs::write(&pickle, b"\x80\x02}q\x00").unwrap();
    assert!(matches!(open_err(&pickle).0, SdError::Pickle { .. }));
}

fn unsupported_arch(tensors: &[(&str, &[usize])]) -> (SdError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    write_synthetic(&path, tensors);
    open_err(&path)
}

const UNET_IN: (&str, &[usize]) = ("model.diffusion_model.input_blocks.0.0.weight", &[32, 4, 3, 3]);

#[test]
fn other_architectures_are_named() {
    let (err, msg) = unsupported_arch(&[(
        "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight",
        &[4, 4],
    )]);
    assert!(matches!(err, SdError::Unsupported { .. }) && msg.contains("SD3"), "{msg}");

    let (err, msg) = unsupported_arch(&[("double_blocks.0.img_attn.qkv.weight", &[4, 4])]);
    assert!(matches!(err, SdError::Unsupported { .. }) && msg.contains("Flux"), "{msg}");

    let (err, msg) =
        unsupported_arch(&[UNET_IN, ("cond_stage_model.model.token_embedding.weight", &[8, 4])]);
    assert!(matches!(err, SdError::Unsupported { .. }) && msg.contains("SD2"), "{msg}");

    let (err, msg) = unsupported_arch(&[
        UNET_IN,
        ("conditioner.embedders.0.model.token_embedding.weight", &[8, 4]),
    ]);
    assert!(matches!(err, SdError::Unsupported { .. }) && msg.contains("refiner"), "{msg}");

    let (err, msg) = unsupported_arch(&[UNET_IN, ("v_pred", &[])]);
    assert!(matches!(err, SdError::Unsupported { .. }) && msg.contains("v-prediction"), "{msg}");
}

#[test]
fn non_checkpoints_say_what_they_look_like() {
    let (err, msg) = unsupported_arch(&[
        ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", &[4, 32]),
        ("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", &[32, 4]),
    ]);
    assert!(matches!(err, SdError::NotACheckpoint { .. }) && msg.contains("LoRA"), "{msg}");

    let (err, msg) = unsupported_arch(&[
        ("encoder.conv_in.weight", &[32, 3, 3, 3]),
        ("decoder.conv_in.weight", &[32, 4, 3, 3]),
    ]);
    assert!(matches!(err, SdError::NotACheckpoint { .. }) && msg.contains("VAE"), "{msg}");

    let (err, msg) = unsupported_arch(&[("emb_params", &[2, 768])]);
    assert!(matches!(err, SdError::NotACheckpoint { .. }) && msg.contains("embedding"), "{msg}");
}

#[test]
fn missing_and_misshaped_tensors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing_name = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.ff.net.2.bias";
    let path = dir.path().join("missing.safetensors");
    rewrite(&tiny("sd1"), &path, |n, s| (n != missing_name).then(|| s.to_vec()));
    let ckpt = Checkpoint::open(&path).unwrap();
    let err = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).err().unwrap();
    assert!(matches!(err, SdError::MissingTensor { .. }), "{err}");
    assert!(err.to_string().contains(missing_name), "{err}");

    let bad_name = "first_stage_model.decoder.up.1.block.0.conv1.weight";
    let path = dir.path().join("misshaped.safetensors");
    rewrite(&tiny("sd1"), &path, |n, s| {
        Some(if n == bad_name { vec![32, 32, 1, 1] } else { s.to_vec() })
    });
    let ckpt = Checkpoint::open(&path).unwrap();
    let err = StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).err().unwrap();
    assert!(matches!(err, SdError::MisshapedTensor { .. }), "{err}");
    assert!(
        err.to_string().contains(bad_name) && err.to_string().contains("[32, 32, 1, 1]"),
        "{err}"
    );

    // A structural tensor missing is caught while inferring the architecture.
    let path = dir.path().join("no_out.safetensors");
    rewrite(&tiny("sd1"), &path, |n, s| {
        (n != "model.diffusion_model.out.2.weight").then(|| s.to_vec())
    });
    let (err, msg) = open_err(&path);
    assert!(matches!(err, SdError::MissingTensor { .. }) && msg.contains("out.2.weight"), "{msg}");
}

#[test]
fn ignored_tensors_do_not_matter() {
    // The SDXL fixture carries int64 position_ids and a 0-dim f32 logit_scale next to f16 weights.
    let ckpt = Checkpoint::open(tiny("sdxl")).unwrap();
    StableDiffusion::load(&ckpt, &Device::Cpu, DType::F32).unwrap();
}
