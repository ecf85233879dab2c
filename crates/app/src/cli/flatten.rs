//! `pentimento flatten IN OUT.png`.

use std::path::Path;

use anyhow::{Context, bail};

use super::formats::{self, FileKind};

pub fn run(input: &Path, output: &Path) -> anyhow::Result<()> {
    let is_png =
        output.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if !is_png {
        bail!("{}: the output must be a .png file", output.display());
    }
    let pixels = match formats::detect(input)? {
        FileKind::OpenRaster => {
            let stack = ora::OraStack::open(input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            ora::composite(&stack)
        }
        FileKind::Png | FileKind::Jpeg | FileKind::WebP => formats::decode_image(input)?,
        other => bail!("{}: cannot flatten a {} file", input.display(), other.name()),
    };
    formats::save_png(output, &pixels)
}
