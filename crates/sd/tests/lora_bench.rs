//! Apply + restore time of a full-size SD1.5 kohya LoRA on a full-size SD1.5 model with random
//! weights (about 5 GiB of memory). Run:
//! `cargo test --release -p pentimento-sd --test lora_bench -- --ignored --nocapture`
#![allow(clippy::unwrap_used, reason = "test")]

use candle_core::Device;
use pentimento_sd::lora::bench_apply_restore_sd15;

#[test]
#[ignore = "full-size model: about 5 GiB and a minute to build"]
fn sd15_apply_restore_time() {
    for (rank, with_conv) in [(32, false), (128, false), (32, true)] {
        let bench = bench_apply_restore_sd15(rank, with_conv, &Device::Cpu).unwrap();
        println!("{}", serde_json::to_string(&bench).unwrap());
        assert!(bench.restored_bit_exact);
    }
}
