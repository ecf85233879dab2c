//! Diffusers folder layouts (`unet/`, `vae/`, `text_encoder/`, `text_encoder_2/`).

use std::path::Path;

use crate::checkpoint::TensorStore;
use crate::error::{Result, SdError};

/// Adds the tensors of a diffusers model folder to `store` under their LDM names.
pub(crate) fn add_folder(_store: &mut TensorStore, path: &Path) -> Result<()> {
    Err(SdError::Unsupported {
        path: path.to_path_buf(),
        arch: "diffusers folder".into(),
        detail: "diffusers folder layouts are not supported yet; use a single-file .safetensors \
                 checkpoint"
            .into(),
    })
}
