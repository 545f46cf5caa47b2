//! The image a Target renders and the judges and Guide look at: 8-bit RGB, row-major.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("image size {width}x{height} is not allowed: both sides must be at least 1")]
    ZeroSize { width: u32, height: u32 },
    #[error("image {width}x{height} needs {expected} RGB bytes, got {actual}")]
    WrongLength {
        width: u32,
        height: u32,
        expected: usize,
        actual: usize,
    },
}

/// An 8-bit RGB image. Constructed only through [`Image::new`], so its buffer always matches its
/// size.
#[derive(Clone, PartialEq, Eq)]
pub struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Image({}x{})", self.width, self.height)
    }
}

impl Image {
    pub fn new(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self, ImageError> {
        if width == 0 || height == 0 {
            return Err(ImageError::ZeroSize { width, height });
        }
        let expected = width as usize * height as usize * 3;
        if rgb.len() != expected {
            return Err(ImageError::WrongLength {
                width,
                height,
                expected,
                actual: rgb.len(),
            });
        }
        Ok(Self { width, height, rgb })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Row-major RGB bytes, `width * height * 3` long.
    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }

    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_and_buffer_must_agree() {
        assert!(Image::new(2, 2, vec![0; 12]).is_ok());
        assert_eq!(
            Image::new(0, 2, vec![]),
            Err(ImageError::ZeroSize {
                width: 0,
                height: 2
            })
        );
        assert!(matches!(
            Image::new(2, 2, vec![0; 11]),
            Err(ImageError::WrongLength {
                expected: 12,
                actual: 11,
                ..
            })
        ));
        let img = Image::new(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(img.pixel(1, 0), [4, 5, 6]);
    }
}
