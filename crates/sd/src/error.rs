//! Every failure a user can cause while opening or running a model, as a typed value.

use std::path::PathBuf;

/// Errors of checkpoint reading, architecture inference and model execution.
#[derive(Debug, thiserror::Error)]
pub enum SdError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is a pickled PyTorch file ({what}); Pentimento never unpickles files because \
         unpickling can run arbitrary code. Convert it to .safetensors first"
    )]
    Pickle { path: PathBuf, what: String },
    #[error("{path} is truncated: {detail}")]
    Truncated { path: PathBuf, detail: String },
    #[error("{path} is not a valid safetensors file: {detail}")]
    BadHeader { path: PathBuf, detail: String },
    #[error("{path} is not a Stable Diffusion checkpoint: it looks like {looks_like}")]
    NotACheckpoint { path: PathBuf, looks_like: String },
    #[error("{path}: unsupported architecture {arch}: {detail}")]
    Unsupported { path: PathBuf, arch: String, detail: String },
    #[error("missing tensor `{name}`")]
    MissingTensor { name: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    MisshapedTensor { name: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("tensor `{name}` has dtype {dtype}, which is not a floating-point weight type")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("inconsistent checkpoint: {0}")]
    Inconsistent(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = SdError> = std::result::Result<T, E>;
