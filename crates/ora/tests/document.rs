//! A document saved as .ora opens as the same document.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use std::collections::BTreeMap;

use doc::{
    BlendMode, Document, DocumentParts, GenerationMode, GenerationRecord, InpaintArea,
    InpaintParams, Layer, LayerId, LayerProps, LoraRef, MaskedContent, ModelRef, TrayCandidate,
};
use ora::{
    OraError, OraStack, composite, open_document, save_document, stack_from_document,
    tray_from_ora, tray_to_ora,
};
use pentimento_ora as ora;
use raster::{Image, Rect, TiledImage};

fn layer(id: u64, name: &str, image: &Image<raster::Rgba8>) -> Layer {
    let props = LayerProps { name: name.into(), ..LayerProps::default() };
    Layer::new(LayerId::from_raw(id), props, TiledImage::from_image(image))
}

#[test]
fn document_round_trip() {
    let mut bg = layer(3, "bg", &Image::filled(80, 70, [250, 250, 240, 255]));
    bg.props.alpha_lock = true;
    let mut ink = layer(7, "ink", &Image::filled(30, 20, [10, 40, 200, 180]));
    ink.offset_x = 60;
    ink.offset_y = -5;
    ink.props.opacity = 0.7;
    ink.props.blend_mode = BlendMode::Multiply;
    ink.record = Some(GenerationRecord {
        prompt: "blue ink, <lora:x:0.8>".into(),
        seed: 42,
        steps: 20,
        ..GenerationRecord::default()
    });
    let mut hidden = layer(9, "hidden", &Image::filled(5, 5, [255, 0, 0, 255]));
    hidden.props.visible = false;
    let mut mask = TiledImage::new(80, 70);
    mask.write_image(&Image::filled(10, 10, 255u8), 5, 5);
    let document = Document::from_parts(DocumentParts {
        width: 80,
        height: 70,
        layers: vec![bg, ink, hidden],
        active: Some(LayerId::from_raw(7)),
        mask: Some(mask),
        selection: Some(TiledImage::from_image(&Image::filled(80, 70, 128u8))),
    })
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.ora");
    save_document(&document, &path).unwrap();
    let back = open_document(&path).unwrap();

    assert_eq!((back.width(), back.height()), (80, 70));
    assert_eq!(back.active_layer_id(), Some(LayerId::from_raw(7)));
    assert_eq!(back.layers().len(), 3);
    for (a, b) in document.layers().iter().zip(back.layers()) {
        assert_eq!(a.id(), b.id());
        assert_eq!(a.props, b.props);
        assert_eq!((a.offset_x, a.offset_y), (b.offset_x, b.offset_y));
        assert_eq!(a.record, b.record);
        assert_eq!(a.pixels.to_image(), b.pixels.to_image());
    }
    assert_eq!(back.mask().to_image(), document.mask().to_image());
    assert_eq!(back.selection().unwrap().to_image(), document.selection().unwrap().to_image());
    assert_eq!(back.render_composite(), document.render_composite());
    // The document's composite and this crate's agree, so mergedimage.png matches either.
    assert_eq!(composite(&OraStack::open(&path).unwrap()), document.render_composite());
}

#[test]
fn krita_file_opens_as_a_document() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/ora/krita_groups.ora");
    let document = open_document(&path).unwrap();
    assert_eq!(document.layers().len(), 6);
    let ids: std::collections::HashSet<_> = document.layers().iter().map(Layer::id).collect();
    assert_eq!(ids.len(), 6);
    assert_eq!(document.layers()[1].props.blend_mode, BlendMode::Multiply);
    assert_eq!(document.render_composite(), composite(&OraStack::open(&path).unwrap()));
}

/// A record with every field set to something other than its default.
fn full_record(seed: u64) -> GenerationRecord {
    GenerationRecord {
        prompt: "a red fox in snow, <lora:ink:0.6>".into(),
        negative_prompt: "blurry, \"text\"".into(),
        model: ModelRef { name: "sd15-tiny".into(), hash: Some("a1b2c3d4e5".into()) },
        vae: Some(ModelRef { name: "vae-ft-mse".into(), hash: Some("735e4c3a".into()) }),
        loras: vec![
            LoraRef { name: "ink".into(), weight: 0.6, hash: Some("deadbeef".into()) },
            LoraRef { name: "paper".into(), weight: -0.25, hash: None },
        ],
        sampler: "DPM++ 2M".into(),
        schedule: "karras".into(),
        steps: 27,
        cfg_scale: 6.5,
        seed,
        strength: Some(0.8),
        width: 512,
        height: 768,
        clip_skip: Some(2),
        mode: GenerationMode::Inpaint,
        inpaint: Some(InpaintParams {
            area: InpaintArea::OnlyMasked,
            padding_px: 32,
            mask_blur_px: 4,
            masked_content: MaskedContent::LatentNoise,
            inverted: true,
        }),
        context_box: Some(Rect::new(-7, -3, 131, 197)),
        source_box: Some(Rect::new(0, 0, 100, 150)),
        parent_layers: vec![LayerId::from_raw(3), LayerId::from_raw(7)],
        extra: BTreeMap::from([("Hires upscale".into(), "2".into())]),
    }
}

fn gradient(width: u32, height: u32) -> Image<raster::Rgba8> {
    let pixels = (0..width * height)
        .map(|i| [(i % 251) as u8, (i * 7 % 253) as u8, (i * 13 % 255) as u8, (i % 256) as u8])
        .collect();
    Image::from_pixels(width, height, pixels).unwrap()
}

#[test]
fn tray_survives_save_and_open() {
    let document = Document::new(40, 30, Some([255, 255, 255, 255])).unwrap();
    let tray = vec![
        TrayCandidate {
            name: "a red fox · 1234".into(),
            x: -7,
            y: -3,
            image: gradient(131, 197),
            record: full_record(1234),
        },
        TrayCandidate {
            name: "a red fox · 1235".into(),
            x: 39,
            y: 29,
            image: gradient(1, 1),
            record: full_record(1235),
        },
        TrayCandidate {
            name: "same seed".into(),
            x: -40,
            y: 11,
            image: gradient(3, 17),
            record: GenerationRecord { mode: GenerationMode::Txt2img, ..full_record(99) },
        },
    ];
    let mut stack = stack_from_document(&document).unwrap();
    stack.tray = tray_to_ora(&tray).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tray.ora");
    stack.save_with_merged(&document.render_composite(), &path).unwrap();

    let back = OraStack::open(&path).unwrap();
    assert_eq!(tray_from_ora(back.tray.clone()).unwrap(), tray);
    // The document itself is unaffected by the tray.
    assert_eq!(open_document(&path).unwrap().render_composite(), document.render_composite());
}

#[test]
fn tray_entry_without_a_usable_record_is_a_clear_error() {
    let mut entries = tray_to_ora(&[TrayCandidate {
        name: "fox".into(),
        x: 0,
        y: 0,
        image: gradient(2, 2),
        record: full_record(1),
    }])
    .unwrap();
    entries[0].record = None;
    let error = tray_from_ora(entries.clone()).unwrap_err();
    assert!(matches!(error, OraError::Tray(_)), "{error:?}");
    assert!(error.to_string().contains("`fox` has no generation record"), "{error}");
    entries[0].record = Some(serde_json::json!({"seed": "not a number"}));
    let error = tray_from_ora(entries).unwrap_err();
    assert!(error.to_string().contains("record of candidate `fox`"), "{error}");
}
