//! A1111-compatible file hashes, their persistent cache, and the background worker that computes
//! them.
//!
//! What stable-diffusion-webui writes (read in AUTOMATIC1111/stable-diffusion-webui, v1.6–1.10):
//! - `Model hash` (and `VAE hash`): `modules/sd_models.py` `CheckpointInfo.calculate_shorthash`
//!   takes `modules/hashes.py` `sha256(filename, …)` — `calculate_sha256`, the sha256 of the whole
//!   file — and keeps its first 10 hex digits.
//! - `Lora hashes`: `extensions-builtin/Lora/network.py` `NetworkOnDisk.set_hash` keeps the first
//!   12 hex digits of `metadata["sshs_model_hash"]` when the file's safetensors metadata has it,
//!   otherwise of `hashes.sha256(…, use_addnet_hash=True)`, which for `.safetensors` is
//!   `addnet_hash_safetensors` (from kohya-ss sd-scripts): the sha256 of the bytes after the 8-byte
//!   length and the JSON header, so editing metadata does not change it. `extra_networks_lora.py`
//!   writes `alias: shorthash` pairs joined by `, `, with `:` and `,` removed from the alias.
//! - `TI hashes`: `modules/textual_inversion/textual_inversion.py` `Embedding.set_hash` keeps the
//!   first 12 hex digits of the whole-file sha256 (`hashes.sha256(path, "textual_inversion/…")`,
//!   no addnet); `sd_hijack_clip.py` writes `name: shorthash` pairs the same way.
//! - Older infotexts carry the legacy 8-digit `Model hash` of `sd_models.model_hash`: the sha256 of
//!   the 64 KiB at offset 1 MiB. A1111 still resolves it (it is one of a checkpoint's aliases).
//!
//! `tests/reference/library_hashes.py` re-implements these with hashlib for the known answers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::LibraryError;

/// Length of A1111's `Model hash` / `VAE hash`.
pub const MODEL_HASH_LEN: usize = 10;
/// Length of A1111's `Lora hashes` and `TI hashes` entries.
pub const NETWORK_HASH_LEN: usize = 12;

/// Read size of the streaming hash: large enough that syscalls do not show, small enough to check
/// for cancellation several times a second.
const HASH_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// The byte range of A1111's legacy model hash.
const LEGACY_START: u64 = 0x10_0000;
const LEGACY_LEN: u64 = 0x1_0000;

/// The hashes of one file, as full lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHashes {
    /// sha256 of the whole file (`Model hash`, `VAE hash`, `TI hashes`).
    pub sha256: String,
    /// sha256 of the tensor data after the safetensors header (`Lora hashes`); computed for LoRAs
    /// only, because it costs a second sha256 pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addnet_sha256: Option<String>,
    /// A1111's legacy 8-hex model hash (sha256 of 64 KiB at offset 1 MiB).
    pub legacy_model_hash: String,
}

/// What identifies one version of a file: its absolute, symlink-resolved path, size and mtime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileKey {
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Modification time in nanoseconds since the Unix epoch (0 when the platform has none).
    pub mtime_ns: u64,
}

impl FileKey {
    /// Stats `path` (following symlinks) and resolves it to an absolute path.
    pub fn of(path: &Path) -> Result<Self, LibraryError> {
        let io = |source| LibraryError::Io { path: path.to_path_buf(), source };
        let canonical = std::fs::canonicalize(path).map_err(io)?;
        let meta = std::fs::metadata(&canonical).map_err(io)?;
        Ok(Self { path: canonical, size_bytes: meta.len(), mtime_ns: mtime_ns(&meta) })
    }
}

pub(crate) fn mtime_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds the part of `chunk` (which starts at file offset `chunk_start`) that lies in
/// `[start, end)` to `hasher`.
fn feed_range(hasher: &mut Sha256, chunk: &[u8], chunk_start: u64, start: u64, end: u64) {
    let chunk_end = chunk_start + chunk.len() as u64;
    let from = start.max(chunk_start);
    let to = end.min(chunk_end);
    if from < to {
        let a = usize::try_from(from - chunk_start).unwrap_or(usize::MAX);
        let b = usize::try_from(to - chunk_start).unwrap_or(usize::MAX);
        if let Some(part) = chunk.get(a..b) {
            hasher.update(part);
        }
    }
}

/// The hashes of `path` from `cache` when its size and mtime are unchanged, else computed now
/// (streaming, uncancellable: for one file on a worker or CLI) and stored in the cache.
pub fn cached_file_hashes(
    path: &Path,
    cache: &mut HashCache,
    with_addnet: bool,
) -> Result<FileHashes, LibraryError> {
    let key = FileKey::of(path)?;
    if let Some(hashes) = cache.get(&key)
        && (!with_addnet || hashes.addnet_sha256.is_some())
    {
        return Ok(hashes.clone());
    }
    let hashes = hash_file(path, with_addnet, &AtomicBool::new(false), &mut |_, _| {})?;
    cache.insert(&key, hashes.clone());
    Ok(hashes)
}

/// Hashes `path` in one streaming pass (never the whole file in memory): the whole-file sha256,
/// the legacy hash, and with `with_addnet` the addnet hash. `progress(done, total)` is called after
/// every block; `cancel` is checked before every block.
pub fn hash_file(
    path: &Path,
    with_addnet: bool,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<FileHashes, LibraryError> {
    let io = |source| LibraryError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let total = file.metadata().map_err(io)?.len();
    let mut full = Sha256::new();
    let mut legacy = Sha256::new();
    let mut addnet = Sha256::new();
    // Python's `int.from_bytes(b.read(8), "little")`: fewer than 8 bytes read as a shorter number.
    let mut addnet_start: Option<u64> = None;
    let mut head = [0u8; 8];
    let mut head_len = 0usize;
    let mut buffer = vec![0u8; HASH_BUFFER_BYTES];
    let mut offset = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(LibraryError::Cancelled);
        }
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        let chunk = buffer.get(..read).unwrap_or_default();
        full.update(chunk);
        feed_range(&mut legacy, chunk, offset, LEGACY_START, LEGACY_START + LEGACY_LEN);
        if with_addnet {
            for &byte in chunk.iter().take(8 - head_len) {
                if let Some(slot) = head.get_mut(head_len) {
                    *slot = byte;
                    head_len += 1;
                }
            }
            if addnet_start.is_none() && head_len == 8 {
                addnet_start = Some(u64::from_le_bytes(head).saturating_add(8));
            }
            if let Some(start) = addnet_start {
                feed_range(&mut addnet, chunk, offset, start, u64::MAX);
            }
        }
        offset += read as u64;
        progress(offset, total.max(offset));
    }
    let addnet_sha256 = with_addnet.then(|| hex(&addnet.finalize()));
    Ok(FileHashes {
        sha256: hex(&full.finalize()),
        addnet_sha256,
        legacy_model_hash: hex(&legacy.finalize()).chars().take(8).collect(),
    })
}

/// One cache record: the key's size and mtime with the hashes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheRecord {
    size_bytes: u64,
    mtime_ns: u64,
    #[serde(flatten)]
    hashes: FileHashes,
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    files: BTreeMap<String, CacheRecord>,
}

const CACHE_VERSION: u32 = 1;

/// Hashes keyed by (absolute path, size, mtime), persisted as JSON so a rescan hashes nothing that
/// did not change. A record whose size or mtime differs from the file's is ignored.
#[derive(Debug, Clone, Default)]
pub struct HashCache {
    file: Option<PathBuf>,
    records: BTreeMap<String, CacheRecord>,
}

impl HashCache {
    /// A cache that is never written to disk.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Loads the cache stored at `file` (the app passes a path in its config directory); a missing
    /// file is an empty cache. [`HashCache::save`] writes back to the same path.
    pub fn load(file: impl Into<PathBuf>) -> Result<Self, LibraryError> {
        let file = file.into();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Self { file: Some(file), records: BTreeMap::new() });
            }
            Err(source) => return Err(LibraryError::Io { path: file, source }),
        };
        let parsed: CacheFile = serde_json::from_str(&text).map_err(|e| {
            LibraryError::CacheCorrupt { path: file.clone(), detail: e.to_string() }
        })?;
        if parsed.version != CACHE_VERSION {
            return Err(LibraryError::CacheCorrupt {
                path: file,
                detail: format!("version {} (expected {CACHE_VERSION})", parsed.version),
            });
        }
        Ok(Self { file: Some(file), records: parsed.files })
    }

    /// [`HashCache::load`], falling back to an empty cache at the same path when the file is
    /// unreadable or corrupt (it is only a cache); the error says why.
    pub fn load_or_empty(file: impl Into<PathBuf>) -> (Self, Option<LibraryError>) {
        let file = file.into();
        match Self::load(file.clone()) {
            Ok(cache) => (cache, None),
            Err(e) => (Self { file: Some(file), records: BTreeMap::new() }, Some(e)),
        }
    }

    /// Where [`HashCache::save`] writes, if anywhere.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The hashes recorded for exactly this version of the file.
    pub fn get(&self, key: &FileKey) -> Option<&FileHashes> {
        let record = self.records.get(key.path.to_str()?)?;
        (record.size_bytes == key.size_bytes && record.mtime_ns == key.mtime_ns)
            .then_some(&record.hashes)
    }

    /// Records `hashes` for `key` (replacing an older version). Paths that are not UTF-8 are not
    /// cached (JSON keys are strings); they are simply hashed again next time.
    pub fn insert(&mut self, key: &FileKey, hashes: FileHashes) {
        if let Some(path) = key.path.to_str() {
            let record = CacheRecord { size_bytes: key.size_bytes, mtime_ns: key.mtime_ns, hashes };
            self.records.insert(path.to_string(), record);
        }
    }

    /// Drops records of files that no longer exist.
    pub fn prune_missing(&mut self) {
        self.records.retain(|path, _| Path::new(path).exists());
    }

    /// Writes the cache atomically (temporary file, then rename); a no-op for in-memory caches.
    pub fn save(&self) -> Result<(), LibraryError> {
        let Some(file) = &self.file else { return Ok(()) };
        let io = |source| LibraryError::Io { path: file.clone(), source };
        if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let body = CacheFile { version: CACHE_VERSION, files: self.records.clone() };
        let text = serde_json::to_string_pretty(&body).map_err(|e| LibraryError::CacheCorrupt {
            path: file.clone(),
            detail: e.to_string(),
        })?;
        let mut temporary = file.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::rename(&temporary, file).map_err(io)
    }
}

/// One file for the [`HashWorker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashJob {
    /// The file's path as listed in the library.
    pub path: PathBuf,
    /// The version that was scanned (the worker re-stats before hashing).
    pub key: FileKey,
    /// Also compute the addnet hash (LoRAs).
    pub with_addnet: bool,
}

/// What the worker reports, in order: `Started`, then per file `Progress`… and `Hashed` or
/// `Failed`, then `Finished` exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashEvent {
    Started {
        files_total: usize,
        bytes_total: u64,
    },
    Progress {
        path: PathBuf,
        file_bytes_done: u64,
        file_bytes_total: u64,
        /// Over all jobs.
        bytes_done: u64,
        bytes_total: u64,
        files_done: usize,
        files_total: usize,
    },
    Hashed {
        /// The job's path (as listed in the library).
        path: PathBuf,
        /// The version that was hashed.
        key: FileKey,
        hashes: FileHashes,
    },
    Failed {
        path: PathBuf,
        message: String,
    },
    Finished(HashReport),
}

/// The worker's summary; `files_hashed` counts files actually read, so a rescan served from the
/// cache reports 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashReport {
    pub files_hashed: usize,
    pub bytes_hashed: u64,
    pub failed: usize,
    pub cancelled: bool,
    /// Why the cache could not be saved, if it could not.
    pub cache_error: Option<String>,
}

/// Computes missing hashes on a named background thread (`pentimento-hash`), one file at a time,
/// saving the cache every few seconds and at the end, so cancelling or quitting loses little.
pub struct HashWorker {
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<(HashCache, HashReport)>>,
}

impl std::fmt::Debug for HashWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashWorker").field("finished", &self.is_finished()).finish()
    }
}

/// How often the worker writes the cache while it runs.
const CACHE_SAVE_INTERVAL: Duration = Duration::from_secs(2);
/// Progress events at most this often per file (besides the file's end).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

impl HashWorker {
    /// Starts hashing `jobs`, recording results in `cache`; every event goes to `on_event` on the
    /// worker thread (forward it to a channel and wake the UI there).
    pub fn spawn(
        jobs: Vec<HashJob>,
        cache: HashCache,
        on_event: impl FnMut(HashEvent) + Send + 'static,
    ) -> Result<Self, LibraryError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let handle = std::thread::Builder::new()
            .name("pentimento-hash".into())
            .spawn(move || run(jobs, cache, &flag, on_event))
            .map_err(|source| LibraryError::Io { path: PathBuf::from("<hash thread>"), source })?;
        Ok(Self { cancel, handle: Some(handle) })
    }

    /// [`HashWorker::spawn`] with the events sent to a channel.
    pub fn spawn_with_channel(
        jobs: Vec<HashJob>,
        cache: HashCache,
    ) -> Result<(Self, std::sync::mpsc::Receiver<HashEvent>), LibraryError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let worker = Self::spawn(jobs, cache, move |event| {
            // A dropped receiver only means nobody is listening any more.
            let _ = sender.send(event);
        })?;
        Ok((worker, receiver))
    }

    /// Asks the worker to stop; it stops within one 4 MiB block and still saves the cache.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits for the worker and returns the updated cache with the report.
    pub fn join(mut self) -> Result<(HashCache, HashReport), LibraryError> {
        let handle = self.handle.take().ok_or(LibraryError::WorkerFailed)?;
        handle.join().map_err(|_| LibraryError::WorkerFailed)
    }
}

impl Drop for HashWorker {
    /// Dropping the worker cancels it and waits (at most one block) so it never outlives its owner.
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.cancel.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

fn run(
    jobs: Vec<HashJob>,
    mut cache: HashCache,
    cancel: &AtomicBool,
    mut on_event: impl FnMut(HashEvent),
) -> (HashCache, HashReport) {
    let files_total = jobs.len();
    let bytes_total: u64 = jobs.iter().map(|j| j.key.size_bytes).sum();
    on_event(HashEvent::Started { files_total, bytes_total });
    let mut report = HashReport::default();
    let mut bytes_before = 0u64;
    let mut last_save = Instant::now();
    let mut dirty = false;
    for (files_done, job) in jobs.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            break;
        }
        let outcome = FileKey::of(&job.path).and_then(|key| {
            let mut last_progress: Option<Instant> = None;
            let mut progress = |done: u64, total: u64| {
                let now = Instant::now();
                if done < total && last_progress.is_some_and(|t| now - t < PROGRESS_INTERVAL) {
                    return;
                }
                last_progress = Some(now);
                on_event(HashEvent::Progress {
                    path: job.path.clone(),
                    file_bytes_done: done,
                    file_bytes_total: total,
                    bytes_done: bytes_before + done,
                    bytes_total,
                    files_done,
                    files_total,
                });
            };
            hash_file(&key.path, job.with_addnet, cancel, &mut progress).map(|h| (key, h))
        });
        match outcome {
            Ok((key, hashes)) => {
                report.files_hashed += 1;
                report.bytes_hashed += key.size_bytes;
                cache.insert(&key, hashes.clone());
                dirty = true;
                on_event(HashEvent::Hashed { path: job.path.clone(), key, hashes });
            }
            Err(LibraryError::Cancelled) => {
                report.cancelled = true;
                break;
            }
            Err(e) => {
                report.failed += 1;
                on_event(HashEvent::Failed { path: job.path.clone(), message: e.to_string() });
            }
        }
        bytes_before += job.key.size_bytes;
        if dirty && last_save.elapsed() >= CACHE_SAVE_INTERVAL {
            if let Err(e) = cache.save() {
                report.cache_error = Some(e.to_string());
            }
            last_save = Instant::now();
            dirty = false;
        }
    }
    if dirty && let Err(e) = cache.save() {
        report.cache_error = Some(e.to_string());
    }
    on_event(HashEvent::Finished(report.clone()));
    (cache, report)
}
