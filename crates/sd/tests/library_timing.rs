//! Timings of the library's two costs (run by hand, not in CI):
//! `cargo test -p pentimento-sd --release --test library_timing -- --ignored --nocapture`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a manual measurement: a panic is a failed run, printing is its output"
)]

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use pentimento_sd::library::{HashCache, Library, hash_file};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

/// Scanning 1000 LoRA files (headers only) and hashing a 1 GiB file in one streaming pass.
#[test]
#[ignore = "manual timing"]
fn scan_and_hash_timings() {
    let dir = tempfile::tempdir().unwrap();
    let loras = dir.path().join("models/loras");
    fs::create_dir_all(&loras).unwrap();
    let data = vec![1u8; 2 * 4 * 768];
    for i in 0..1000 {
        let names: Vec<String> =
            (0..50).map(|k| format!("lora_unet_block_{k}_attn2_to_k.lora_down.weight")).collect();
        let views: Vec<(String, TensorView<'_>)> = names
            .iter()
            .map(|n| (n.clone(), TensorView::new(Dtype::F16, vec![4, 768], &data).unwrap()))
            .collect();
        let meta = HashMap::from([("ss_output_name".to_string(), format!("lora{i}"))]);
        safetensors::serialize_to_file(
            views,
            Some(meta),
            &loras.join(format!("l{i:04}.safetensors")),
        )
        .unwrap();
    }
    let roots = [dir.path().join("models")];
    let start = Instant::now();
    let library = Library::scan(&roots);
    let scan_s = start.elapsed().as_secs_f64();
    assert_eq!(library.entries().len(), 1000);
    println!("scan of 1000 LoRA files (50 tensors each): {:.1} ms", scan_s * 1e3);
    let cache = HashCache::in_memory();
    let start = Instant::now();
    let library = Library::scan_with_cache(&roots, &cache);
    println!(
        "rescan with cache lookup: {:.1} ms ({} missing)",
        start.elapsed().as_secs_f64() * 1e3,
        library.missing_hashes().len()
    );

    let big = dir.path().join("big.safetensors");
    let mut file = fs::File::create(&big).unwrap();
    let block: Vec<u8> =
        (0..(1 << 20)).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    // A 16-byte "header" so the addnet pass covers almost the whole file.
    file.write_all(&16u64.to_le_bytes()).unwrap();
    file.write_all(&[b' '; 16]).unwrap();
    for _ in 0..1024 {
        file.write_all(&block).unwrap();
    }
    drop(file);
    let never = AtomicBool::new(false);
    for with_addnet in [false, true] {
        let start = Instant::now();
        hash_file(&big, with_addnet, &never, &mut |_, _| {}).unwrap();
        let s = start.elapsed().as_secs_f64();
        println!("hash 1 GiB (addnet {with_addnet}): {s:.2} s, {:.0} MiB/s", 1024.0 / s);
    }
}
