//! The model library: every checkpoint, LoRA, VAE, embedding and upscaler in the folders the user
//! has, with kind, architecture, size and A1111 hashes — what the model picker lists and what
//! "Reuse parameters" resolves `Model hash` / `Lora hashes` / `TI hashes` against.
//!
//! # Roots
//! [`Library::scan`] takes root folders and recognises what each one is, in this order:
//! 1. **An installation root** (A1111 or ComfyUI): the root has a `models/` folder holding at least
//!    one known kind folder. Its kind folders are scanned, plus A1111's top-level `embeddings/`.
//!    It is [`RootLayout::A1111`] when `models/Stable-diffusion` exists or the root has `webui.py`,
//!    else [`RootLayout::ComfyUi`].
//! 2. **A models folder** ([`RootLayout::ModelsFolder`]): the root itself holds known kind folders —
//!    Pentimento's own `models/`, or the `models/` folder of an A1111 or ComfyUI install.
//! 3. **A kind folder** ([`RootLayout::KindFolder`]): the root's own name is a kind folder name
//!    (for example a shared `.../Lora` folder added in settings).
//! 4. **A plain folder** ([`RootLayout::Plain`]): anything else. Each file's kind is read from its
//!    header (checkpoint, LoRA, VAE, embedding, ESRGAN-type upscaler); a file that is none of them
//!    (and every pickle) is listed as a checkpoint, so the reason it cannot be used is shown where
//!    the user looks for it.
//!
//! Kind folders, case-insensitive: `checkpoints`, `Stable-diffusion` → checkpoints; `loras`,
//! `Lora`, `LyCORIS` → LoRAs; `vae` → VAEs; `embeddings` → embeddings; `upscalers`,
//! `upscale_models`, `ESRGAN`, `RealESRGAN`, `SwinIR`, `ScuNET`, `DAT` → upscalers. Other folders
//! of an installation (`controlnet`, `clip`, `unet`…) are not scanned.
//!
//! # Files
//! Folders are walked recursively (users organise by subfolder); hidden files and folders (`.`)
//! are skipped; symlinks are followed, with every folder visited once by its resolved path, so
//! loops end and a file reachable twice is listed once. A folder holding diffusers `unet/` and
//! `vae/` component folders is one checkpoint. `.safetensors` files are inspected by their header
//! only (8 bytes + JSON; never the tensor data); pickles (`.ckpt`, `.pt`, `.pth`, `.bin`, `.pkl`)
//! are listed as refused and never opened. In a kind folder the folder decides the kind; the header
//! still gives the architecture, and a file that is clearly another kind (a checkpoint among
//! LoRAs) is listed as unsupported with the reason. As in A1111, `name.vae.safetensors` beside the
//! checkpoints is a VAE. A root that is itself a diffusers folder is one checkpoint. Nothing in a scan panics or stops the scan: an
//! unreadable file is an entry with [`EntryStatus::Unreadable`].
//!
//! # Hashes
//! Scanning never hashes. [`Library::apply_cache`] fills hashes from a [`HashCache`];
//! [`Library::missing_hashes`] lists what is left for a [`HashWorker`], whose events
//! [`Library::apply_event`] folds back in. See [`hash`] for the exact A1111 rules.

mod a1111;
pub mod hash;
mod inspect;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint::Checkpoint;
use crate::config::ModelArch;
use crate::error::SdError;

pub use a1111::{format_hash_list, infotext_name, parse_hash_list};
pub use hash::{
    FileHashes, FileKey, HashCache, HashEvent, HashJob, HashReport, HashWorker, MODEL_HASH_LEN,
    NETWORK_HASH_LEN, cached_file_hashes, hash_file,
};
use inspect::{Content, Family};

/// Errors of the library's own file and cache handling (per-file problems during a scan become
/// [`EntryStatus`] values instead).
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
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
    #[error("{path} is not a valid safetensors file: {detail}")]
    BadHeader { path: PathBuf, detail: String },
    #[error("the hash cache {path} is unusable ({detail}); it will be rebuilt")]
    CacheCorrupt { path: PathBuf, detail: String },
    #[error("hashing was cancelled")]
    Cancelled,
    #[error("the hashing thread stopped unexpectedly")]
    WorkerFailed,
}

/// What a model file is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    Checkpoint,
    Lora,
    Vae,
    Embedding,
    Upscaler,
}

impl ModelKind {
    /// The kind a folder of this name holds (case-insensitive), A1111, ComfyUI and Pentimento
    /// spellings.
    pub fn of_folder_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "checkpoints" | "stable-diffusion" => Self::Checkpoint,
            "loras" | "lora" | "lycoris" => Self::Lora,
            "vae" => Self::Vae,
            "embeddings" => Self::Embedding,
            "upscalers" | "upscale_models" | "esrgan" | "realesrgan" | "swinir" | "scunet"
            | "dat" => Self::Upscaler,
            _ => return None,
        })
    }

    /// Pentimento's folder name for the kind in `models/`.
    pub fn folder_name(self) -> &'static str {
        match self {
            Self::Checkpoint => "checkpoints",
            Self::Lora => "loras",
            Self::Vae => "vae",
            Self::Embedding => "embeddings",
            Self::Upscaler => "upscalers",
        }
    }
}

/// How a file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Safetensors,
    /// `.ckpt`/`.pt`/`.pth`/`.bin`/`.pkl`: refused, never opened.
    Pickle,
    /// A diffusers model folder (`unet/`, `vae/`, `text_encoder/`…).
    DiffusersFolder,
}

/// Whether an entry can be used, and if not, why (the message is for the user).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum EntryStatus {
    Usable,
    /// A pickle: never opened.
    Refused(String),
    /// Readable, but not something Pentimento runs (SD2/SD3/Flux checkpoint, SD2 LoRA, wrong
    /// kind for its folder…).
    Unsupported(String),
    /// Could not be read or is not a valid file.
    Unreadable(String),
}

/// How a root folder was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RootLayout {
    A1111,
    ComfyUi,
    ModelsFolder,
    KindFolder(ModelKind),
    Plain,
    /// The root is itself a diffusers model folder (`unet/`, `vae/`…): one checkpoint.
    DiffusersModel,
    /// The root does not exist or cannot be read.
    Missing,
}

/// One scanned root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RootInfo {
    pub path: PathBuf,
    pub layout: RootLayout,
    /// The folders actually scanned with the kind they hold (`None`: plain, by content).
    pub sources: Vec<(PathBuf, Option<ModelKind>)>,
}

/// A folder that could not be listed during the scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanProblem {
    pub path: PathBuf,
    pub message: String,
}

/// One model file (or diffusers folder) of the library.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LibraryEntry {
    /// Where the file was found (under its root, symlinks not resolved).
    pub path: PathBuf,
    pub kind: ModelKind,
    pub format: FileFormat,
    /// Display name: the path below its kind folder (or plain root) without extension, with `/`
    /// separators, e.g. `anime/fooMix_v2`.
    pub name: String,
    /// The file stem, e.g. `fooMix_v2`: A1111's name for `<lora:…>`, embeddings in prompts and the
    /// infotext `Model` field.
    pub stem: String,
    /// Checkpoints: the exact architecture. LoRAs and embeddings: the family they were trained for
    /// (`Sd1` or `Sdxl`). `None` when unknown or not applicable (VAEs, upscalers).
    pub arch: Option<ModelArch>,
    pub status: EntryStatus,
    pub size_bytes: u64,
    pub modified_unix_ns: u64,
    /// The hashable identity of the file; `None` for folders and files that could not be statted.
    pub key: Option<FileKey>,
    /// Number of tensors in the header (safetensors files that could be read).
    pub tensor_count: Option<usize>,
    /// Embeddings: the number of token vectors the embedding occupies in a prompt.
    pub vectors: Option<usize>,
    /// LoRAs: kohya's `sshs_model_hash` metadata, which A1111 prefers over the computed hash.
    pub metadata_hash: Option<String>,
    /// Filled from the cache or the worker; `None` until then.
    pub hashes: Option<FileHashes>,
}

impl LibraryEntry {
    pub fn is_usable(&self) -> bool {
        self.status == EntryStatus::Usable
    }

    /// A1111's `Model hash` (and `VAE hash`): the first 10 hex digits of the file's sha256.
    pub fn model_hash(&self) -> Option<String> {
        self.hashes.as_ref().map(|h| h.sha256.chars().take(MODEL_HASH_LEN).collect())
    }

    /// A1111's `Lora hashes` value for this file: the first 12 hex digits of `sshs_model_hash`
    /// metadata if present, else of the addnet hash (sha256 after the header).
    pub fn lora_hash(&self) -> Option<String> {
        let full = self
            .metadata_hash
            .clone()
            .or_else(|| self.hashes.as_ref().and_then(|h| h.addnet_sha256.clone()))?;
        Some(full.chars().take(NETWORK_HASH_LEN).collect())
    }

    /// A1111's `TI hashes` value: the first 12 hex digits of the file's sha256.
    pub fn ti_hash(&self) -> Option<String> {
        self.hashes.as_ref().map(|h| h.sha256.chars().take(NETWORK_HASH_LEN).collect())
    }

    /// The short hash A1111 writes for an entry of this kind (`Model hash`, `VAE hash`,
    /// `Lora hashes`, `TI hashes`); upscalers have none.
    pub fn infotext_hash(&self) -> Option<String> {
        match self.kind {
            ModelKind::Checkpoint | ModelKind::Vae => self.model_hash(),
            ModelKind::Lora => self.lora_hash(),
            ModelKind::Embedding => self.ti_hash(),
            ModelKind::Upscaler => None,
        }
    }

    /// Whether this LoRA or embedding fits a checkpoint of `model` architecture (same family);
    /// `None` when the entry's family is unknown.
    pub fn is_compatible_with(&self, model: ModelArch) -> Option<bool> {
        self.arch.map(|arch| arch.is_sdxl() == model.is_sdxl())
    }

    /// Whether `hash` (hex, case-insensitive, at least 8 digits) names this file: a prefix of its
    /// sha256, addnet hash or `sshs_model_hash`, or its legacy 8-digit hash.
    pub fn matches_hash(&self, hash: &str) -> bool {
        let query = hash.trim().to_ascii_lowercase();
        if query.len() < 8 || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let metadata = self.metadata_hash.as_deref().map(str::to_ascii_lowercase);
        let computed = self.hashes.as_ref();
        let mut full_hashes = computed
            .map(|h| h.sha256.as_str())
            .into_iter()
            .chain(computed.and_then(|h| h.addnet_sha256.as_deref()))
            .chain(metadata.as_deref());
        full_hashes.any(|full| full.starts_with(&query))
            || computed.is_some_and(|h| h.legacy_model_hash == query)
    }

    /// What the worker needs to hash this entry, if it is a file worth hashing.
    fn hash_job(&self) -> Option<HashJob> {
        let key = self.key.clone()?;
        let hashable = self.format == FileFormat::Safetensors
            && !matches!(self.status, EntryStatus::Unreadable(_));
        hashable.then(|| HashJob {
            path: self.path.clone(),
            key,
            with_addnet: self.kind == ModelKind::Lora,
        })
    }

    /// Whether `hashes` covers everything this entry's kind needs.
    fn hashes_complete(&self, hashes: &FileHashes) -> bool {
        self.kind != ModelKind::Lora || hashes.addnet_sha256.is_some()
    }
}

/// The scanned library.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Library {
    roots: Vec<RootInfo>,
    entries: Vec<LibraryEntry>,
    problems: Vec<ScanProblem>,
}

/// A file found by the walk, before inspection.
struct Found {
    path: PathBuf,
    /// Kind from the folder; `None` in plain roots.
    folder_kind: Option<ModelKind>,
    name: String,
    is_diffusers_folder: bool,
}

const PICKLE_EXTENSIONS: [&str; 5] = ["ckpt", "pt", "pth", "bin", "pkl"];

impl Library {
    /// Scans `roots` (see the module docs for how each is understood). Fast: headers only, in
    /// parallel; no hashing. Entries are sorted by kind, then name (case-insensitive).
    pub fn scan(roots: &[PathBuf]) -> Self {
        let mut library = Self::default();
        let mut visited_dirs = HashSet::new();
        let mut seen_files = HashSet::new();
        let mut found = Vec::new();
        for root in roots {
            let info = describe_root(root);
            if info.layout == RootLayout::DiffusersModel {
                let resolved = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
                if seen_files.insert(resolved) {
                    let name = root
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    found.push(Found {
                        path: root.clone(),
                        folder_kind: Some(ModelKind::Checkpoint),
                        name,
                        is_diffusers_folder: true,
                    });
                }
            }
            for (dir, kind) in &info.sources {
                walk(
                    dir,
                    dir,
                    *kind,
                    &mut visited_dirs,
                    &mut seen_files,
                    &mut found,
                    &mut library.problems,
                );
            }
            library.roots.push(info);
        }
        library.entries = found.par_iter().map(inspect_found).collect();
        library.entries.sort_by(|a, b| {
            (a.kind, a.name.to_lowercase(), &a.path).cmp(&(b.kind, b.name.to_lowercase(), &b.path))
        });
        library
    }

    /// [`Library::scan`] followed by [`Library::apply_cache`].
    pub fn scan_with_cache(roots: &[PathBuf], cache: &HashCache) -> Self {
        let mut library = Self::scan(roots);
        library.apply_cache(cache);
        library
    }

    pub fn roots(&self) -> &[RootInfo] {
        &self.roots
    }

    pub fn entries(&self) -> &[LibraryEntry] {
        &self.entries
    }

    /// Folders that could not be listed.
    pub fn problems(&self) -> &[ScanProblem] {
        &self.problems
    }

    /// The entry found at `path` (as listed, or by resolved path).
    pub fn get(&self, path: &Path) -> Option<&LibraryEntry> {
        let resolved = std::fs::canonicalize(path).ok();
        self.entries.iter().find(|e| {
            e.path == path
                || resolved.as_ref().is_some_and(|r| e.key.as_ref().is_some_and(|k| &k.path == r))
        })
    }

    /// Fills hashes from `cache` for every entry whose path, size and mtime match a record;
    /// returns how many were filled.
    pub fn apply_cache(&mut self, cache: &HashCache) -> usize {
        let mut filled = 0;
        for entry in &mut self.entries {
            let Some(key) = &entry.key else { continue };
            if let Some(hashes) = cache.get(key)
                && entry.hashes_complete(hashes)
            {
                entry.hashes = Some(hashes.clone());
                filled += 1;
            }
        }
        filled
    }

    /// The files whose hashes are still unknown, smallest first (so the many small LoRAs and
    /// embeddings are ready before the multi-GB checkpoints).
    pub fn missing_hashes(&self) -> Vec<HashJob> {
        let mut jobs: Vec<HashJob> = self
            .entries
            .iter()
            .filter(|e| e.hashes.as_ref().is_none_or(|h| !e.hashes_complete(h)))
            .filter_map(LibraryEntry::hash_job)
            .collect();
        jobs.sort_by_key(|j| (j.key.size_bytes, j.path.clone()));
        jobs
    }

    /// Records hashes computed for the file at `path` (whose current version is `key`); returns
    /// whether an entry took them.
    pub fn set_hashes(&mut self, path: &Path, key: &FileKey, hashes: &FileHashes) -> bool {
        let mut taken = false;
        for entry in &mut self.entries {
            let same_file =
                entry.path == path || entry.key.as_ref().is_some_and(|k| k.path == key.path);
            if same_file {
                entry.size_bytes = key.size_bytes;
                entry.modified_unix_ns = key.mtime_ns;
                entry.key = Some(key.clone());
                entry.hashes = Some(hashes.clone());
                taken = true;
            }
        }
        taken
    }

    /// Folds a worker event into the library (only `Hashed` changes anything).
    pub fn apply_event(&mut self, event: &HashEvent) -> bool {
        match event {
            HashEvent::Hashed { path, key, hashes } => self.set_hashes(path, key, hashes),
            _ => false,
        }
    }

    /// Entries of `kind` whose name contains every whitespace-separated word of `filter`
    /// (case-insensitive; an empty filter lists all), in library order.
    pub fn list(&self, kind: ModelKind, filter: &str) -> Vec<&LibraryEntry> {
        let words: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
        self.entries
            .iter()
            .filter(|e| e.kind == kind)
            .filter(|e| {
                let name = e.name.to_lowercase();
                words.iter().all(|w| name.contains(w.as_str()))
            })
            .collect()
    }

    /// The entry a hash from an infotext names (`Model hash: abcdef1234`, a `Lora hashes` or `TI
    /// hashes` value, a full sha256 or a legacy 8-digit hash), optionally of one kind. Only entries
    /// whose hashes are known can match: run the [`HashWorker`] first.
    pub fn find_by_hash(&self, hash: &str, kind: Option<ModelKind>) -> Option<&LibraryEntry> {
        self.entries
            .iter()
            .filter(|e| kind.is_none_or(|k| e.kind == k))
            .find(|e| e.matches_hash(hash))
    }

    /// The entry of `kind` a prompt or infotext names (`<lora:name:0.8>`, an embedding word,
    /// `Model: name`): the file stem, or the name with its subfolders (`anime/name`), with or
    /// without extension, case-insensitive. When several files share a stem, the one in the
    /// shallowest folder wins, then the first by name; usable entries before unusable ones.
    pub fn find_by_name(&self, name: &str, kind: ModelKind) -> Option<&LibraryEntry> {
        let wanted = name.trim().replace('\\', "/").to_lowercase();
        let wanted_no_ext = strip_model_extension(&wanted);
        self.entries
            .iter()
            .filter(|e| e.kind == kind)
            .filter(|e| {
                let stem = e.stem.to_lowercase();
                let full = e.name.to_lowercase();
                [wanted.as_str(), wanted_no_ext].iter().any(|w| *w == stem || *w == full)
            })
            .min_by_key(|e| (!e.is_usable(), e.name.matches('/').count(), e.name.to_lowercase()))
    }

    /// The entry of `kind` an infotext or record names: by `hash` first (names change, as
    /// A1111 resolves them), then by `name`.
    pub fn find_by_hash_or_name(
        &self,
        hash: Option<&str>,
        name: &str,
        kind: ModelKind,
    ) -> Option<&LibraryEntry> {
        hash.and_then(|h| self.find_by_hash(h, Some(kind)))
            .or_else(|| self.find_by_name(name, kind))
    }

    /// Parses an infotext `Lora hashes` or `TI hashes` value and resolves each pair against the
    /// entries of `kind`, by hash first (as A1111 does), then by name:
    /// `(name in the infotext, hash, entry found)`.
    pub fn resolve_hash_list<'a>(
        &'a self,
        value: &str,
        kind: ModelKind,
    ) -> Vec<(String, String, Option<&'a LibraryEntry>)> {
        parse_hash_list(value)
            .into_iter()
            .map(|(name, hash)| {
                let entry = self.find_by_hash_or_name(Some(&hash), &name, kind);
                (name, hash, entry)
            })
            .collect()
    }

    /// Rewrites `<lora:alias:` in a pasted prompt to the file that `lora_hashes` (the infotext's
    /// `Lora hashes` value) names by hash, as A1111's Lora `infotext_pasted` does, so a LoRA the
    /// user renamed is still found. Aliases without a hash, or whose hash is not in the library,
    /// are left as written.
    pub fn rewrite_prompt_loras(&self, prompt: &str, lora_hashes: &str) -> String {
        self.rewrite_prompt_loras_by(prompt, &parse_hash_list(lora_hashes))
    }

    /// [`Library::rewrite_prompt_loras`] with the `(alias, hash)` pairs already parsed (a
    /// generation record's LoRAs).
    pub fn rewrite_prompt_loras_by<N: AsRef<str>, H: AsRef<str>>(
        &self,
        prompt: &str,
        hashes: &[(N, H)],
    ) -> String {
        let mut out = String::with_capacity(prompt.len());
        let mut rest = prompt;
        while let Some(start) = rest.find("<lora:") {
            let (before, tag) = rest.split_at(start);
            out.push_str(before);
            let after_prefix = tag.get("<lora:".len()..).unwrap_or_default();
            // A1111's `<lora:([^:]+):`: the alias runs to the next `:`.
            let Some(alias_len) = after_prefix.find(':').filter(|&n| n > 0) else {
                out.push_str("<lora:");
                rest = after_prefix;
                continue;
            };
            let alias = after_prefix.get(..alias_len).unwrap_or_default();
            let found = hashes
                .iter()
                .find(|(name, _)| name.as_ref() == alias)
                .and_then(|(_, hash)| self.find_by_hash(hash.as_ref(), Some(ModelKind::Lora)));
            out.push_str("<lora:");
            out.push_str(found.map_or(alias, |e| e.stem.as_str()));
            out.push(':');
            rest = after_prefix.get(alias_len + 1..).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }

    /// Describes one file on its own, its kind read from its header (as in a plain folder), for
    /// `pentimento info` and for files given on the command line.
    pub fn inspect_file(path: &Path) -> LibraryEntry {
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let found = Found {
            path: path.to_path_buf(),
            folder_kind: None,
            name,
            is_diffusers_folder: path.is_dir(),
        };
        inspect_found(&found)
    }
}

fn strip_model_extension(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    for ext in std::iter::once("safetensors").chain(PICKLE_EXTENSIONS) {
        if lower.ends_with(&format!(".{ext}")) {
            return name.get(..name.len() - ext.len() - 1).unwrap_or(name);
        }
    }
    name
}

/// Kind folders among `dir`'s children.
fn kind_children(dir: &Path) -> Vec<(PathBuf, Option<ModelKind>)> {
    let Ok(read) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Option<ModelKind>)> = read
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let kind = ModelKind::of_folder_name(&e.file_name().to_string_lossy())?;
            Some((e.path(), Some(kind)))
        })
        .collect();
    out.sort();
    out
}

/// Recognises a root's layout and the folders to scan in it.
fn describe_root(root: &Path) -> RootInfo {
    let info = |layout, sources| RootInfo { path: root.to_path_buf(), layout, sources };
    if !root.is_dir() {
        return info(RootLayout::Missing, Vec::new());
    }
    if is_diffusers_folder(root) {
        return info(RootLayout::DiffusersModel, Vec::new());
    }
    let models = root.join("models");
    let mut installed = kind_children(&models);
    if !installed.is_empty() {
        let a1111 = models.join("Stable-diffusion").is_dir() || root.join("webui.py").is_file();
        if a1111 && root.join("embeddings").is_dir() {
            installed.push((root.join("embeddings"), Some(ModelKind::Embedding)));
        }
        let layout = if a1111 { RootLayout::A1111 } else { RootLayout::ComfyUi };
        return info(layout, installed);
    }
    let children = kind_children(root);
    if !children.is_empty() {
        return info(RootLayout::ModelsFolder, children);
    }
    let own_kind = root.file_name().and_then(|n| ModelKind::of_folder_name(&n.to_string_lossy()));
    match own_kind {
        Some(kind) => info(RootLayout::KindFolder(kind), vec![(root.to_path_buf(), Some(kind))]),
        None => info(RootLayout::Plain, vec![(root.to_path_buf(), None)]),
    }
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

fn is_diffusers_folder(dir: &Path) -> bool {
    dir.join("unet").is_dir() && dir.join("vae").is_dir()
}

fn display_name(base: &Path, path: &Path, strip_extension: bool) -> String {
    let relative = path.strip_prefix(base).unwrap_or(path);
    let relative =
        if strip_extension { relative.with_extension("") } else { relative.to_path_buf() };
    let parts: Vec<String> =
        relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

/// Collects model files under `dir` (recursively) into `found`.
#[allow(clippy::too_many_arguments, reason = "the walk's shared state, passed down the recursion")]
fn walk(
    base: &Path,
    dir: &Path,
    kind: Option<ModelKind>,
    visited_dirs: &mut HashSet<PathBuf>,
    seen_files: &mut HashSet<PathBuf>,
    found: &mut Vec<Found>,
    problems: &mut Vec<ScanProblem>,
) {
    let problem = |message: String| ScanProblem { path: dir.to_path_buf(), message };
    let resolved = match std::fs::canonicalize(dir) {
        Ok(resolved) => resolved,
        Err(e) => return problems.push(problem(e.to_string())),
    };
    if !visited_dirs.insert(resolved) {
        return;
    }
    let read = match std::fs::read_dir(dir) {
        Ok(read) => read,
        Err(e) => return problems.push(problem(e.to_string())),
    };
    let mut children: Vec<PathBuf> = read.filter_map(Result::ok).map(|e| e.path()).collect();
    children.sort();
    for path in children {
        if is_hidden(&path) {
            continue;
        }
        if path.is_dir() {
            let diffusers =
                is_diffusers_folder(&path) && kind.is_none_or(|k| k == ModelKind::Checkpoint);
            if diffusers {
                let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if seen_files.insert(resolved) {
                    let name = display_name(base, &path, false);
                    found.push(Found { path, folder_kind: kind, name, is_diffusers_folder: true });
                }
            } else {
                walk(base, &path, kind, visited_dirs, seen_files, found, problems);
            }
            continue;
        }
        let extension =
            path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        let is_model =
            extension == "safetensors" || PICKLE_EXTENSIONS.contains(&extension.as_str());
        if !is_model {
            continue;
        }
        // A dangling symlink has no resolved path: list it (it will read as unreadable).
        let resolved = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if seen_files.insert(resolved) {
            let name = display_name(base, &path, true);
            found.push(Found { path, folder_kind: kind, name, is_diffusers_folder: false });
        }
    }
}

/// Message for a Checkpoint::open failure, split into unreadable vs unsupported.
fn checkpoint_status(error: &SdError) -> EntryStatus {
    match error {
        SdError::Io { .. } | SdError::Truncated { .. } | SdError::BadHeader { .. } => {
            EntryStatus::Unreadable(error.to_string())
        }
        SdError::Pickle { .. } => EntryStatus::Refused(error.to_string()),
        _ => EntryStatus::Unsupported(error.to_string()),
    }
}

fn family_arch(family: Option<Family>, what: &str) -> (Option<ModelArch>, EntryStatus) {
    match family {
        Some(Family::Sd2) => (
            None,
            EntryStatus::Unsupported(format!(
                "this {what} was made for Stable Diffusion 2.x, which Pentimento does not run"
            )),
        ),
        other => (other.and_then(Family::arch), EntryStatus::Usable),
    }
}

/// Reads one found file's header and decides its entry.
fn inspect_found(found: &Found) -> LibraryEntry {
    let path = &found.path;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut entry = LibraryEntry {
        path: path.clone(),
        kind: found.folder_kind.unwrap_or(ModelKind::Checkpoint),
        format: FileFormat::Safetensors,
        name: found.name.clone(),
        stem,
        arch: None,
        status: EntryStatus::Usable,
        size_bytes: 0,
        modified_unix_ns: 0,
        key: None,
        tensor_count: None,
        vectors: None,
        metadata_hash: None,
        hashes: None,
    };
    if found.is_diffusers_folder {
        entry.format = FileFormat::DiffusersFolder;
        entry.stem = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if let Ok(meta) = std::fs::metadata(path) {
            entry.modified_unix_ns = hash::mtime_ns(&meta);
        }
        match Checkpoint::open(path) {
            Ok(checkpoint) => {
                entry.arch = Some(checkpoint.config().arch);
                entry.tensor_count = Some(checkpoint.tensor_count());
            }
            Err(e) => entry.status = checkpoint_status(&e),
        }
        return entry;
    }
    let extension =
        path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let key = match FileKey::of(path) {
        Ok(key) => key,
        Err(e) => {
            entry.status = EntryStatus::Unreadable(e.to_string());
            return entry;
        }
    };
    entry.size_bytes = key.size_bytes;
    entry.modified_unix_ns = key.mtime_ns;
    entry.key = Some(key.clone());
    if PICKLE_EXTENSIONS.contains(&extension.as_str()) {
        if found.folder_kind == Some(ModelKind::Checkpoint)
            && entry.stem.to_ascii_lowercase().ends_with(".vae")
        {
            entry.kind = ModelKind::Vae;
        }
        entry.format = FileFormat::Pickle;
        let error = LibraryError::Pickle { path: path.clone(), what: format!(".{extension} file") };
        entry.status = EntryStatus::Refused(error.to_string());
        return entry;
    }
    let header = match inspect::read_header(&key.path, key.size_bytes) {
        Ok(header) => header,
        Err(e @ LibraryError::Pickle { .. }) => {
            entry.format = FileFormat::Pickle;
            entry.status = EntryStatus::Refused(e.to_string());
            return entry;
        }
        Err(e) => {
            entry.status = EntryStatus::Unreadable(e.to_string());
            return entry;
        }
    };
    entry.tensor_count = Some(header.tensors.len());
    let content = inspect::classify(&header);
    // A1111 keeps `name.vae.safetensors` next to its checkpoint and lists it as a VAE.
    let vae_beside_checkpoint = found.folder_kind == Some(ModelKind::Checkpoint)
        && entry.stem.to_ascii_lowercase().ends_with(".vae");
    let folder_kind = if vae_beside_checkpoint { Some(ModelKind::Vae) } else { found.folder_kind };
    let kind = folder_kind.unwrap_or(match content {
        Content::Lora { .. } => ModelKind::Lora,
        Content::Vae => ModelKind::Vae,
        Content::Embedding { .. } => ModelKind::Embedding,
        Content::Upscaler => ModelKind::Upscaler,
        Content::Checkpoint | Content::Unknown => ModelKind::Checkpoint,
    });
    entry.kind = kind;
    let misplaced = |content: &Content| {
        EntryStatus::Unsupported(format!(
            "this file looks like {} rather than {}; move it to models/{}/",
            content.describe(),
            match kind {
                ModelKind::Checkpoint => "a checkpoint",
                ModelKind::Lora => "a LoRA",
                ModelKind::Vae => "a VAE",
                ModelKind::Embedding => "an embedding",
                ModelKind::Upscaler => "an upscaler",
            },
            match content {
                Content::Checkpoint | Content::Unknown => ModelKind::Checkpoint.folder_name(),
                Content::Lora { .. } => ModelKind::Lora.folder_name(),
                Content::Vae => ModelKind::Vae.folder_name(),
                Content::Embedding { .. } => ModelKind::Embedding.folder_name(),
                Content::Upscaler => ModelKind::Upscaler.folder_name(),
            }
        ))
    };
    match (kind, &content) {
        (ModelKind::Checkpoint, _) => match Checkpoint::open(&key.path) {
            Ok(checkpoint) => entry.arch = Some(checkpoint.config().arch),
            Err(e) => entry.status = checkpoint_status(&e),
        },
        (ModelKind::Lora, Content::Lora { family }) => {
            (entry.arch, entry.status) = family_arch(*family, "LoRA");
            entry.metadata_hash =
                header.metadata.get("sshs_model_hash").filter(|h| !h.is_empty()).cloned();
        }
        (ModelKind::Embedding, Content::Embedding { family, vectors }) => {
            (entry.arch, entry.status) = family_arch(*family, "embedding");
            entry.vectors = Some(*vectors);
        }
        (ModelKind::Vae, Content::Vae) | (ModelKind::Upscaler, _) => {}
        // An unrecognised key style in a kind folder is left to the loader to judge.
        (_, Content::Unknown) => {}
        (_, other) => entry.status = misplaced(other),
    }
    entry
}
