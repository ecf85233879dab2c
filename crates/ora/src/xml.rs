//! `stack.xml`: parsing (with namespaces, nested stacks flattened) and writing.

use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, Writer, XmlVersion};

use crate::{DEFAULT_COMPOSITE_OP, OraError, PENTIMENTO_NS};

/// A `<layer>` element with its group context applied; pixels not yet loaded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LayerEntry {
    pub name: String,
    pub src: String,
    pub x: i32,
    pub y: i32,
    pub opacity: f32,
    pub visible: bool,
    pub composite_op: String,
    pub selected: bool,
    pub alpha_lock: bool,
    pub layer_id: Option<u64>,
    pub record_id: Option<String>,
    pub extra_attributes: Vec<(String, String)>,
}

/// What `stack.xml` says: canvas size and layers **top first**, as the file lists them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StackXml {
    pub width: u32,
    pub height: u32,
    pub layers: Vec<LayerEntry>,
    pub flattened_groups: bool,
}

/// The opacity, visibility and offset a `<stack>` passes to its children.
#[derive(Clone, Copy)]
struct GroupContext {
    x: i32,
    y: i32,
    opacity: f32,
    visible: bool,
}

/// Attributes we interpret; anything else without a namespace is kept verbatim.
const KNOWN_ATTRIBUTES: [&str; 9] =
    ["name", "src", "x", "y", "opacity", "visibility", "composite-op", "selected", "hidden"];

fn xml_error(error: impl std::fmt::Display) -> OraError {
    OraError::Xml(error.to_string())
}

fn invalid(element: &'static str, attribute: &str, value: &str) -> OraError {
    OraError::InvalidAttribute { element, attribute: attribute.to_owned(), value: value.to_owned() }
}

/// One element's attributes, split into plain ones and ours (by namespace, whatever the prefix).
#[derive(Default)]
struct Attributes {
    plain: Vec<(String, String)>,
    ours: Vec<(String, String)>,
}

impl Attributes {
    fn read(reader: &NsReader<&[u8]>, element: &BytesStart<'_>) -> Result<Self, OraError> {
        let mut out = Self::default();
        for attribute in element.attributes() {
            let attribute = attribute.map_err(xml_error)?;
            let (namespace, local) = reader.resolver().resolve_attribute(attribute.key);
            let local = local.as_ref().to_owned();
            let value = attribute.normalized_value(XmlVersion::Implicit1_0).map_err(xml_error)?;
            match namespace {
                ResolveResult::Unbound => out.plain.push((local, value.into_owned())),
                ResolveResult::Bound(ns) if ns.as_ref() == PENTIMENTO_NS => {
                    out.ours.push((local, value.into_owned()));
                }
                // Other namespaces (Krita's, xmlns declarations) are not ours to keep.
                _ => {}
            }
        }
        Ok(out)
    }

    fn plain(&self, name: &str) -> Option<&str> {
        self.plain.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn ours(&self, name: &str) -> Option<&str> {
        self.ours.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn parse_int<T: std::str::FromStr>(
    element: &'static str,
    attribute: &str,
    value: Option<&str>,
    default: T,
) -> Result<T, OraError> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| invalid(element, attribute, v)),
    }
}

/// Opacity in 0..=1; missing means 1, out of range is clamped, non-numbers are an error.
fn parse_opacity(element: &'static str, value: Option<&str>) -> Result<f32, OraError> {
    match value {
        None => Ok(1.0),
        Some(v) => match v.trim().parse::<f32>() {
            Ok(o) if o.is_finite() => Ok(o.clamp(0.0, 1.0)),
            _ => Err(invalid(element, "opacity", v)),
        },
    }
}

fn parse_visible(element: &'static str, value: Option<&str>) -> Result<bool, OraError> {
    match value.map(str::trim) {
        None | Some("visible") => Ok(true),
        Some("hidden") => Ok(false),
        Some(other) => Err(invalid(element, "visibility", other)),
    }
}

fn parse_bool(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("true" | "1"))
}

impl GroupContext {
    /// The context for the children of a `<stack>` element inside `self`.
    fn nested(self, attrs: &Attributes) -> Result<Self, OraError> {
        Ok(Self {
            x: self.x.saturating_add(parse_int("stack", "x", attrs.plain("x"), 0)?),
            y: self.y.saturating_add(parse_int("stack", "y", attrs.plain("y"), 0)?),
            opacity: self.opacity * parse_opacity("stack", attrs.plain("opacity"))?,
            visible: self.visible && parse_visible("stack", attrs.plain("visibility"))?,
        })
    }
}

fn layer_entry(attrs: &Attributes, group: GroupContext) -> Result<LayerEntry, OraError> {
    let src = attrs
        .plain("src")
        .ok_or_else(|| OraError::Xml("a <layer> has no `src` attribute".to_owned()))?
        .to_owned();
    let layer_id = match attrs.ours("layer-id") {
        None => None,
        Some(v) => Some(v.trim().parse().map_err(|_| invalid("layer", "pentimento:layer-id", v))?),
    };
    Ok(LayerEntry {
        name: attrs.plain("name").unwrap_or_default().to_owned(),
        src,
        x: group.x.saturating_add(parse_int("layer", "x", attrs.plain("x"), 0)?),
        y: group.y.saturating_add(parse_int("layer", "y", attrs.plain("y"), 0)?),
        opacity: group.opacity * parse_opacity("layer", attrs.plain("opacity"))?,
        visible: group.visible && parse_visible("layer", attrs.plain("visibility"))?,
        composite_op: attrs
            .plain("composite-op")
            .map_or_else(|| DEFAULT_COMPOSITE_OP.to_owned(), |v| v.trim().to_owned()),
        selected: parse_bool(attrs.plain("selected")),
        alpha_lock: parse_bool(attrs.ours("alpha-lock")),
        layer_id,
        record_id: attrs.ours("record").map(str::to_owned),
        extra_attributes: attrs
            .plain
            .iter()
            .filter(|(k, _)| !KNOWN_ATTRIBUTES.contains(&k.as_str()))
            .cloned()
            .collect(),
    })
}

/// Parses `stack.xml`. Nested stacks are flattened into their layers in order: offsets add up,
/// opacities multiply, a hidden group hides its layers; group blend modes and isolation are
/// dropped (noted in `flattened_groups`).
pub(crate) fn parse(xml: &[u8], max_layers: usize) -> Result<StackXml, OraError> {
    let mut reader = NsReader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut size: Option<(u32, u32)> = None;
    let mut groups: Vec<GroupContext> = Vec::new();
    let mut layers = Vec::new();
    let mut flattened_groups = false;
    loop {
        let event = reader.read_event().map_err(xml_error)?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let (_, local) = reader.resolver().resolve_element(e.name());
                match local.as_ref() {
                    "image" if size.is_none() => {
                        let attrs = Attributes::read(&reader, e)?;
                        let w = attrs.plain("w").ok_or_else(|| invalid("image", "w", ""))?;
                        let h = attrs.plain("h").ok_or_else(|| invalid("image", "h", ""))?;
                        let w = w.trim().parse::<u32>().map_err(|_| invalid("image", "w", w))?;
                        let h = h.trim().parse::<u32>().map_err(|_| invalid("image", "h", h))?;
                        size = Some((w, h));
                    }
                    "stack" if size.is_some() => {
                        let attrs = Attributes::read(&reader, e)?;
                        let context = match groups.last() {
                            None => GroupContext { x: 0, y: 0, opacity: 1.0, visible: true },
                            Some(parent) => {
                                flattened_groups = true;
                                parent.nested(&attrs)?
                            }
                        };
                        if !is_empty {
                            groups.push(context);
                        }
                    }
                    "layer" if !groups.is_empty() => {
                        if layers.len() >= max_layers {
                            return Err(OraError::TooManyLayers {
                                count: layers.len() + 1,
                                limit: max_layers,
                            });
                        }
                        let attrs = Attributes::read(&reader, e)?;
                        let group = groups.last().copied().unwrap_or(GroupContext {
                            x: 0,
                            y: 0,
                            opacity: 1.0,
                            visible: true,
                        });
                        layers.push(layer_entry(&attrs, group)?);
                    }
                    // `<text>`, `<filter>` and anything else: not raster layers; skipped.
                    _ => {}
                }
            }
            Event::End(ref e) => {
                let (_, local) = reader.resolver().resolve_element(e.name());
                if local.as_ref() == "stack" {
                    groups.pop();
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let (width, height) =
        size.ok_or_else(|| OraError::Xml("no <image> element with `w` and `h`".to_owned()))?;
    Ok(StackXml { width, height, layers, flattened_groups })
}

/// Writes `stack.xml` for layers given **top first**.
pub(crate) fn write(width: u32, height: u32, layers: &[LayerEntry]) -> Result<Vec<u8>, OraError> {
    let io = |e: std::io::Error| OraError::Io(e);
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 1);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None))).map_err(io)?;
    let width = width.to_string();
    let height = height.to_string();
    writer
        .create_element("image")
        .with_attributes([
            ("version", "0.0.5"),
            ("w", width.as_str()),
            ("h", height.as_str()),
            ("xmlns:pentimento", PENTIMENTO_NS),
        ])
        .write_inner_content(|w| {
            w.create_element("stack").write_inner_content(|w| {
                for layer in layers {
                    write_layer(w, layer)?;
                }
                Ok(())
            })?;
            Ok(())
        })
        .map_err(io)?;
    Ok(writer.into_inner())
}

fn write_layer(w: &mut Writer<Vec<u8>>, layer: &LayerEntry) -> std::io::Result<()> {
    let x = layer.x.to_string();
    let y = layer.y.to_string();
    let opacity = format_opacity(layer.opacity);
    let visibility = if layer.visible { "visible" } else { "hidden" };
    let mut element = w.create_element("layer").with_attributes([
        ("name", layer.name.as_str()),
        ("src", layer.src.as_str()),
        ("x", x.as_str()),
        ("y", y.as_str()),
        ("opacity", opacity.as_str()),
        ("visibility", visibility),
        ("composite-op", layer.composite_op.as_str()),
    ]);
    if layer.selected {
        element = element.with_attribute(("selected", "true"));
    }
    for (key, value) in &layer.extra_attributes {
        if !KNOWN_ATTRIBUTES.contains(&key.as_str()) && is_plain_name(key) {
            element = element.with_attribute((key.as_str(), value.as_str()));
        }
    }
    if layer.alpha_lock {
        element = element.with_attribute(("pentimento:alpha-lock", "true"));
    }
    let layer_id = layer.layer_id.map(|id| id.to_string());
    if let Some(id) = &layer_id {
        element = element.with_attribute(("pentimento:layer-id", id.as_str()));
    }
    if let Some(record) = &layer.record_id {
        element = element.with_attribute(("pentimento:record", record.as_str()));
    }
    element.write_empty()?;
    Ok(())
}

/// A name that is a valid unprefixed XML attribute name (so writing it back cannot break the
/// document).
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The opacity as a decimal that parses back to the same `f32`.
///
/// Krita truncates `opacity × 255` to an integer, so the shortest form of, say, 156/255
/// (`0.6117647`, ×255 = 155.99999…) would load as 155/255. For opacities on a 1/255 step we
/// therefore write a longer decimal just above the step that still parses to the same `f32`.
fn format_opacity(opacity: f32) -> String {
    let clamped = if opacity.is_finite() { opacity.clamp(0.0, 1.0) } else { 1.0 };
    let shortest = clamped.to_string();
    let steps = f64::from(clamped) * 255.0;
    let step = steps.round();
    if (steps - step).abs() < 1e-4 && step > 0.0 && step < 255.0 {
        let above = ((step / 255.0) * 1e10 + 0.5).ceil() / 1e10;
        let text = format!("{above:.10}");
        if text.parse::<f32>().ok() == Some(clamped)
            && text.parse::<f64>().is_ok_and(|v| (v * 255.0).trunc() == step)
        {
            return text;
        }
    }
    shortest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_stacks_flatten_with_offsets_opacity_and_visibility() {
        let xml = br#"<?xml version="1.0"?>
<image w="100" h="50" version="0.0.3">
 <stack>
  <layer name="top" src="data/a.png" x="1" y="2" opacity="0.5" composite-op="svg:multiply"/>
  <stack name="group" x="10" y="20" opacity="0.5" visibility="hidden">
   <layer name="inner" src="data/b.png" opacity="0.8"/>
  </stack>
  <text>ignored</text>
  <layer name="bottom" src="data/c.png" visibility="visible" selected="true"/>
 </stack>
</image>"#;
        let stack = parse(xml, 100).unwrap();
        assert_eq!((stack.width, stack.height), (100, 50));
        assert!(stack.flattened_groups);
        let names: Vec<&str> = stack.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["top", "inner", "bottom"]);
        let inner = &stack.layers[1];
        assert_eq!((inner.x, inner.y), (10, 20));
        assert!((inner.opacity - 0.4).abs() < 1e-6);
        assert!(!inner.visible);
        assert_eq!(inner.composite_op, DEFAULT_COMPOSITE_OP);
        assert!(stack.layers[2].selected);
        assert_eq!(stack.layers[0].composite_op, "svg:multiply");
    }

    #[test]
    fn our_attributes_resolve_by_namespace_not_prefix() {
        let xml = br#"<image w="4" h="4" xmlns:p="https://pentimento.app/ora/1" xmlns:k="urn:krita">
 <stack><layer src="data/a.png" p:alpha-lock="true" p:record="r7" p:layer-id="42" k:foo="x" bar="y"/></stack>
</image>"#;
        let stack = parse(xml, 100).unwrap();
        let layer = &stack.layers[0];
        assert!(layer.alpha_lock);
        assert_eq!(layer.record_id.as_deref(), Some("r7"));
        assert_eq!(layer.layer_id, Some(42));
        assert_eq!(layer.extra_attributes, vec![("bar".to_owned(), "y".to_owned())]);
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        assert!(matches!(parse(b"<image w='1' h='1'><stack><layer", 9), Err(OraError::Xml(_))));
        assert!(matches!(parse(b"<stack/>", 9), Err(OraError::Xml(_))));
        assert!(matches!(
            parse(b"<image w='x' h='1'/>", 9),
            Err(OraError::InvalidAttribute { .. })
        ));
        assert!(matches!(
            parse(b"<image w='1' h='1'><stack><layer src='a' opacity='NaN'/></stack></image>", 9),
            Err(OraError::InvalidAttribute { .. })
        ));
        assert!(matches!(
            parse(b"<image w='1' h='1'><stack><layer/></stack></image>", 9),
            Err(OraError::Xml(_))
        ));
        let many =
            format!("<image w='1' h='1'><stack>{}</stack></image>", "<layer src='a'/>".repeat(10));
        assert!(matches!(parse(many.as_bytes(), 9), Err(OraError::TooManyLayers { .. })));
    }

    #[test]
    fn opacity_on_a_step_survives_krita_truncation() {
        for k in 0..=255u32 {
            let opacity = k as f32 / 255.0;
            let text = format_opacity(opacity);
            assert_eq!(text.parse::<f32>().unwrap(), opacity, "{k}: {text}");
            let krita = (text.parse::<f64>().unwrap() * 255.0).trunc();
            assert_eq!(krita, f64::from(k), "{k}: {text}");
        }
        assert_eq!(format_opacity(0.5), "0.5");
        assert_eq!(format_opacity(f32::NAN), "1");
    }

    #[test]
    fn write_then_parse_round_trips() {
        let layer = LayerEntry {
            name: "a \"quoted\" <name> & \n newline".to_owned(),
            src: "data/layer0.png".to_owned(),
            x: -5,
            y: 7,
            opacity: 0.3,
            visible: false,
            composite_op: "svg:color-dodge".to_owned(),
            selected: true,
            alpha_lock: true,
            layer_id: Some(u64::MAX),
            record_id: Some("r0".to_owned()),
            extra_attributes: vec![("edit-locked".to_owned(), "true".to_owned())],
        };
        let xml = write(640, 480, std::slice::from_ref(&layer)).unwrap();
        let parsed = parse(&xml, 10).unwrap();
        assert_eq!((parsed.width, parsed.height), (640, 480));
        assert_eq!(parsed.layers, vec![layer]);
        assert!(!parsed.flattened_groups);
    }
}
