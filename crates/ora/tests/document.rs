//! A document saved as .ora opens as the same document.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns: a panic is a failed test"
)]

use doc::{BlendMode, Document, DocumentParts, GenerationRecord, Layer, LayerId, LayerProps};
use ora::{OraStack, composite, open_document, save_document};
use pentimento_ora as ora;
use raster::{Image, TiledImage};

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
