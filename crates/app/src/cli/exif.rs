//! The one EXIF field we read: `UserComment`, where A1111 stores its infotext in JPEG and WebP
//! files (`piexif.helper.UserComment.dump(text, encoding="unicode")`).

const EXIF_IFD_POINTER: u16 = 0x8769;
const USER_COMMENT: u16 = 0x9286;
/// More entries than any real IFD has; bounds the scan of a hostile one.
const MAX_IFD_ENTRIES: usize = 1024;

struct Tiff<'a> {
    bytes: &'a [u8],
    big_endian: bool,
}

impl Tiff<'_> {
    fn u16_at(&self, offset: usize) -> Option<u16> {
        let b: [u8; 2] = self.bytes.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
        Some(if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) })
    }

    fn u32_at(&self, offset: usize) -> Option<u32> {
        let b: [u8; 4] = self.bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
        Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    /// The entry with `tag` in the IFD at `ifd`: (type, count, offset of the 4-byte value field).
    fn find(&self, ifd: usize, tag: u16) -> Option<(u16, u32, usize)> {
        let count = usize::from(self.u16_at(ifd)?).min(MAX_IFD_ENTRIES);
        (0..count).find_map(|i| {
            let entry = ifd + 2 + 12 * i;
            (self.u16_at(entry)? == tag)
                .then(|| Some((self.u16_at(entry + 2)?, self.u32_at(entry + 4)?, entry + 8)))
                .flatten()
        })
    }
}

/// The `UserComment` text from raw EXIF bytes (a TIFF structure, optionally after
/// `Exif\0\0`). Decoded as A1111 does: `UNICODE\0` → UTF-16 big-endian, `ASCII\0\0\0` → ASCII,
/// anything else → UTF-8 with invalid bytes dropped.
pub fn user_comment(exif: &[u8]) -> Option<String> {
    let bytes = exif.strip_prefix(b"Exif\0\0").unwrap_or(exif);
    let big_endian = match bytes.get(..4)? {
        b"MM\0\x2a" => true,
        b"II\x2a\0" => false,
        _ => return None,
    };
    let tiff = Tiff { bytes, big_endian };
    let ifd0 = usize::try_from(tiff.u32_at(4)?).ok()?;
    let (_, _, exif_pointer) = tiff.find(ifd0, EXIF_IFD_POINTER)?;
    let exif_ifd = usize::try_from(tiff.u32_at(exif_pointer)?).ok()?;
    let (_, count, value_field) = tiff.find(exif_ifd, USER_COMMENT)?;
    let count = usize::try_from(count).ok()?;
    let start =
        if count <= 4 { value_field } else { usize::try_from(tiff.u32_at(value_field)?).ok()? };
    let raw = bytes.get(start..start.checked_add(count)?)?;
    Some(decode_comment(raw))
}

fn decode_comment(raw: &[u8]) -> String {
    if let Some(utf16) = raw.strip_prefix(b"UNICODE\0") {
        let units: Vec<u16> =
            utf16.as_chunks::<2>().0.iter().map(|&pair| u16::from_be_bytes(pair)).collect();
        String::from_utf16_lossy(&units)
    } else if let Some(ascii) = raw.strip_prefix(b"ASCII\0\0\0") {
        String::from_utf8_lossy(ascii).into_owned()
    } else {
        let text = raw.strip_prefix(&[0u8; 8]).unwrap_or(raw);
        String::from_utf8_lossy(text).replace('\u{fffd}', "")
    }
    .trim_end_matches('\0')
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff_le(comment: &[u8]) -> Vec<u8> {
        let mut t = b"II\x2a\0".to_vec();
        t.extend(8u32.to_le_bytes());
        t.extend(1u16.to_le_bytes());
        t.extend(EXIF_IFD_POINTER.to_le_bytes());
        t.extend(4u16.to_le_bytes());
        t.extend(1u32.to_le_bytes());
        t.extend(26u32.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        t.extend(1u16.to_le_bytes());
        t.extend(USER_COMMENT.to_le_bytes());
        t.extend(7u16.to_le_bytes());
        t.extend((comment.len() as u32).to_le_bytes());
        t.extend(44u32.to_le_bytes());
        t.extend(0u32.to_le_bytes());
        t.extend(comment);
        t
    }

    #[test]
    fn little_endian_ascii_and_truncated_inputs() {
        let t = tiff_le(b"ASCII\0\0\0Steps: 20, Seed: 1, Sampler: Euler");
        assert_eq!(user_comment(&t).unwrap(), "Steps: 20, Seed: 1, Sampler: Euler");
        for len in 0..t.len() {
            let _ = user_comment(&t[..len]);
        }
        assert_eq!(user_comment(b"not exif"), None);
    }
}
