//! Images across the wire: decoding what servers send (PNG, JPEG, WebP, base64, data URLs)
//! into `art_core::Image`, and encoding images for servers that look at them.

use art_core::Image;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Largest image side accepted from a server; larger ones are refused before decoding, so a
/// hostile or broken server cannot make us allocate without bound.
const MAX_SIDE: u32 = 16_384;
const MAX_ALLOC: u64 = 1 << 30;

/// Decodes base64 text, accepting a `data:...;base64,` prefix and whitespace.
pub fn b64_decode(text: &str) -> Result<Vec<u8>, String> {
    let payload = match text.find(";base64,") {
        Some(i) if text.starts_with("data:") => &text[i + 8..],
        _ => text,
    };
    let clean: String = payload.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| format!("invalid base64 image data: {e}"))
}

/// Decodes an encoded image (PNG, JPEG or WebP) to 8-bit RGB; transparency is dropped.
pub fn decode_image(bytes: &[u8]) -> Result<Image, String> {
    if bytes.is_empty() {
        return Err("the server sent an empty image".into());
    }
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read image: {e}"))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| format!("cannot decode image: {e}"))?;
    let rgb = decoded.to_rgb8();
    let (w, h) = rgb.dimensions();
    Image::new(w, h, rgb.into_raw()).map_err(|e| e.to_string())
}

/// PNG bytes of an image.
pub fn encode_png(image: &Image) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(
            image.rgb(),
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("cannot encode image as PNG: {e}"))?;
    Ok(out)
}

/// A `data:image/png;base64,...` URL of an image, for `image_url` message parts.
pub fn png_data_url(image: &Image) -> Result<String, String> {
    Ok(format!(
        "data:image/png;base64,{}",
        STANDARD.encode(encode_png(image)?)
    ))
}

use image::ImageEncoder as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn img() -> Image {
        Image::new(3, 2, (0..18).collect()).unwrap()
    }

    #[test]
    fn png_round_trips_through_base64_and_data_urls() {
        let url = png_data_url(&img()).unwrap();
        assert!(url.starts_with("data:image/png;base64,"));
        let bytes = b64_decode(&url).unwrap();
        assert_eq!(decode_image(&bytes).unwrap(), img());
        let plain = url.trim_start_matches("data:image/png;base64,");
        let wrapped: String = plain
            .as_bytes()
            .chunks(10)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(decode_image(&b64_decode(&wrapped).unwrap()).unwrap(), img());
    }

    #[test]
    fn jpeg_decodes_to_rgb() {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut out)
            .write_image(&[200u8; 8 * 8 * 3], 8, 8, image::ExtendedColorType::Rgb8)
            .unwrap();
        let i = decode_image(&out).unwrap();
        assert_eq!((i.width(), i.height()), (8, 8));
        assert!(i.rgb().iter().all(|&v| v.abs_diff(200) <= 3));
    }

    #[test]
    fn garbage_and_bombs_are_errors() {
        assert!(decode_image(b"").is_err());
        assert!(decode_image(b"not an image").is_err());
        assert!(b64_decode("@@@").is_err());
        // A PNG header claiming 100000 x 100000 pixels is refused before allocation.
        let mut png = encode_png(&img()).unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(decode_image(&png).is_err());
    }
}
