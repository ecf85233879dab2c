//! A safetensors file whose header length happens to start with pickle's magic bytes
//! (0x80, 2..=5) must be read as safetensors, not refused as a pickle.
#![allow(clippy::unwrap_used, reason = "test")]

use pentimento_sd::{Checkpoint, SdError};

#[test]
fn header_length_0x280_is_not_a_pickle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lora_like.safetensors");
    let mut json = String::from(
        r#"{"lora_unet_x.lora_down.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
    );
    while json.len() < 0x280 {
        json.push(' ');
    }
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    assert_eq!(bytes[..2], [0x80, 0x02]);
    bytes.extend_from_slice(json.as_bytes());
    bytes.extend_from_slice(&1.0f32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
    match Checkpoint::open(&path) {
        Err(SdError::Pickle { .. }) => panic!("a valid safetensors file was refused as a pickle"),
        Err(SdError::NotACheckpoint { looks_like, .. }) => assert!(looks_like.contains("LoRA")),
        other => panic!("unexpected: {:?}", other.map(|c| c.tensor_count())),
    }
}
