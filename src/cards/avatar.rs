//! Avatar images: checking that they decode within limits, thumbnails,
//! content-type sniffing, and PNG encoding with text chunks.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, RgbaImage};

use super::error::CardError;
use super::{MAX_AVATAR_SIDE, THUMBNAIL_SIDE};

/// Memory a decode may allocate: a maximal RGBA image (64 MiB) plus room for
/// the decoder's own buffers.
const MAX_DECODE_ALLOC: u64 = 128 * 1024 * 1024;

/// The content type of an avatar: `image/png`, `image/jpeg` or `image/webp`,
/// judged by its first bytes; `None` for anything else.
pub fn avatar_content_type(bytes: &[u8]) -> Option<&'static str> {
    match image::guess_format(bytes).ok()? {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, CardError> {
    let format = image::guess_format(bytes)
        .ok()
        .filter(|f| matches!(f, ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP));
    let Some(format) = format else {
        return Err(CardError::InvalidImage("it is not a PNG, JPEG or WebP image".into()));
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_AVATAR_SIDE);
    limits.max_image_height = Some(MAX_AVATAR_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    Ok(reader)
}

/// Decodes an avatar, refusing images over [`MAX_AVATAR_SIDE`] on a side
/// before any pixel memory is allocated.
pub(crate) fn decode(bytes: &[u8]) -> Result<DynamicImage, CardError> {
    // The header alone gives the size, so an oversized image is refused with
    // its real dimensions in the message instead of a generic limit error.
    let mut header = reader(bytes)?;
    header.no_limits();
    let (width, height) = header.into_dimensions().map_err(|e| CardError::InvalidImage(e.to_string()))?;
    if width > MAX_AVATAR_SIDE || height > MAX_AVATAR_SIDE {
        return Err(CardError::ImageTooLarge { width, height, limit: MAX_AVATAR_SIDE });
    }
    reader(bytes)?.decode().map_err(|e| CardError::InvalidImage(e.to_string()))
}

/// Checks an avatar and makes a PNG thumbnail of at most
/// [`THUMBNAIL_SIDE`] pixels a side, keeping the aspect ratio. Returns the
/// PNG with its width and height.
pub fn avatar_thumbnail(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), CardError> {
    let image = decode(bytes)?;
    let small = if image.width() > THUMBNAIL_SIDE || image.height() > THUMBNAIL_SIDE {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        image
    };
    let rgba = small.to_rgba8();
    let png = encode_png(&rgba, &[])?;
    Ok((png, rgba.width(), rgba.height()))
}

/// Encodes RGBA pixels as a PNG with the given `tEXt` chunks.
pub(crate) fn encode_png(image: &RgbaImage, text: &[(&str, String)]) -> Result<Vec<u8>, CardError> {
    let fail = |e: png::EncodingError| CardError::EncodePng(e.to_string());
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    for (keyword, value) in text {
        encoder.add_text_chunk((*keyword).to_owned(), value.clone()).map_err(fail)?;
    }
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(image.as_raw()).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn png_of(width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_pixel(width, height, Rgba([10, 20, 30, 255]));
        encode_png(&image, &[]).expect("encodes")
    }

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([200, 100, 0])));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    #[test]
    fn content_types_are_sniffed_from_bytes() {
        assert_eq!(avatar_content_type(&png_of(2, 2)), Some("image/png"));
        assert_eq!(avatar_content_type(&encoded(2, 2, ImageFormat::Jpeg)), Some("image/jpeg"));
        assert_eq!(avatar_content_type(&encoded(2, 2, ImageFormat::WebP)), Some("image/webp"));
        assert_eq!(avatar_content_type(b"GIF89a......"), None);
        assert_eq!(avatar_content_type(b"{}"), None);
    }

    #[test]
    fn thumbnails_fit_in_256_and_keep_the_aspect_ratio() {
        let (png, w, h) = avatar_thumbnail(&encoded(400, 600, ImageFormat::Jpeg)).expect("thumbnail");
        assert_eq!((w, h), (171, 256));
        assert_eq!(decode(&png).map(|i| (i.width(), i.height())), Ok((171, 256)));
        // Small images are not enlarged.
        let (_, w, h) = avatar_thumbnail(&png_of(40, 30)).expect("thumbnail");
        assert_eq!((w, h), (40, 30));
    }

    #[test]
    fn oversized_and_broken_images_are_refused() {
        let err = decode(&png_of(4097, 1)).expect_err("too wide");
        assert_eq!(err, CardError::ImageTooLarge { width: 4097, height: 1, limit: MAX_AVATAR_SIDE });
        let mut truncated = png_of(64, 64);
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(decode(&truncated), Err(CardError::InvalidImage(_))));
        assert!(matches!(avatar_thumbnail(b"not an image"), Err(CardError::InvalidImage(_))));
    }
}
