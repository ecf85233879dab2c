//! Fuzzes the .ora reader: any byte string must give a stack or a typed error, never a panic,
//! and never more memory than the (tightened) limits allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ora::{Limits, OraStack};

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast and make the allocation bounds themselves the target.
    let limits = Limits {
        max_side_px: 4096,
        max_image_px: 1 << 20,
        max_total_px: 1 << 22,
        max_layers: 64,
        max_tray_entries: 64,
        max_entries: 256,
        max_xml_bytes: 1 << 20,
        max_json_bytes: 1 << 20,
        max_png_entry_bytes: 1 << 22,
    };
    if let Ok(stack) = OraStack::from_bytes(data, &limits) {
        // Whatever we read, we can composite and write back.
        let _ = ora::composite(&stack);
        let _ = stack.to_bytes();
    }
});
