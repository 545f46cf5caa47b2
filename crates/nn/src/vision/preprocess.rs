//! The two image pipelines in front of CLIP image encoders, each repeating its reference's
//! arithmetic so that pixel values match to the last bit:
//!
//! * [`ClipImageProcessor`]: transformers' `CLIPImageProcessor` (PIL backend, the one the
//!   Stable Diffusion safety checker's `feature_extractor` is): resize the shorter side to
//!   `size` keeping the aspect ratio (`get_resize_output_image_size(default_to_square=False)`:
//!   the longer side is `int(size * long / short)`), PIL resampling with the configured filter,
//!   centre crop with transformers' arithmetic (`top = (h - crop_h) // 2`; an image smaller
//!   than the crop is first padded with black, `ceil(d / 2)` before it), rescale in f64
//!   (`x * rescale_factor`, then f32), normalize in f32.
//! * [`TorchvisionTransform`]: the `clip` package's `_transform(n_px)` and open_clip's
//!   `image_transform(n_px, is_train=False)` for the OpenAI ViTs (`resize_mode` "shortest"):
//!   torchvision's `Resize(n_px, BICUBIC)` on a PIL image (PIL's resize to torchvision's size,
//!   the same `int(size * long / short)`; no resampling when the size does not change),
//!   `CenterCrop(n_px)`, `ToTensor` (x / 255 in f32), `Normalize` (f32).
//!
//! Where they differ (checked against both references by `crates/models/tests/clip_judges.rs`,
//! golden files from `tools/golden/clip_judges.py`):
//! * the crop offset: torchvision rounds `(h - crop_h) / 2` half to even
//!   (`int(round(d / 2.0))`), transformers floors it, so with `d % 4 == 3` torchvision starts
//!   one row (column) later;
//! * padding of an image smaller than the crop: torchvision pads `d // 2` before it,
//!   transformers `ceil(d / 2)`;
//! * the rescale: x / 255 in f32 against x * (1 / 255) in f64 rounded to f32. For 8-bit values
//!   the two are equal (all 256 were checked), so this difference never shows.

use crate::ModelError;
use crate::invalid;
use crate::vision::resample::{Filter, resize_rgb8};
use art_core::Image;
use std::path::Path;

/// OpenAI CLIP's normalization (`OPENAI_CLIP_MEAN` / `OPENAI_DATASET_MEAN`), as the Python
/// floats both references start from (they are rounded to f32 when applied).
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// Normalized channels-first pixels of one image: `data` is `[3, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// The (height, width) an image of (height, width) `hw` gets when its shorter side is resized
/// to `size`: the longer side becomes `int(size * long / short)` (transformers'
/// `get_resize_output_image_size(default_to_square=False)` and torchvision's
/// `_compute_resized_output_size`, which agree).
pub fn shortest_edge_size(hw: (usize, usize), size: usize) -> (usize, usize) {
    let (h, w) = hw;
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = ((size * long) as f64 / short as f64) as usize;
    if w <= h {
        (new_long, size)
    } else {
        (size, new_long)
    }
}

/// An RGB8 buffer with its size.
struct Rgb {
    h: usize,
    w: usize,
    px: Vec<u8>,
}

impl Rgb {
    fn of(image: &Image) -> Self {
        Self {
            h: image.height() as usize,
            w: image.width() as usize,
            px: image.rgb().to_vec(),
        }
    }

    fn resize(self, hw: (usize, usize), filter: Filter) -> Result<Self, String> {
        let (nh, nw) = hw;
        let px = resize_rgb8(
            &self.px,
            self.w as u32,
            self.h as u32,
            nw as u32,
            nh as u32,
            filter,
        )?;
        Ok(Self { h: nh, w: nw, px })
    }

    /// The `ch x cw` window whose top-left pixel is (`top`, `left`) of this image, where
    /// positions outside the image are black (the window may start before the image).
    fn window(&self, top: isize, left: isize, ch: usize, cw: usize) -> Self {
        let mut px = vec![0u8; ch * cw * 3];
        for y in 0..ch {
            let sy = top + y as isize;
            if sy < 0 || sy >= self.h as isize {
                continue;
            }
            for x in 0..cw {
                let sx = left + x as isize;
                if sx < 0 || sx >= self.w as isize {
                    continue;
                }
                let s = (sy as usize * self.w + sx as usize) * 3;
                let d = (y * cw + x) * 3;
                px[d..d + 3].copy_from_slice(&self.px[s..s + 3]);
            }
        }
        Self { h: ch, w: cw, px }
    }
}

/// transformers' `center_crop` (image_transforms.py): the window starts at
/// `(h - crop_h) // 2`; a side smaller than the crop is padded with zeros, `ceil(d / 2)`
/// before the image.
fn crop_transformers(img: &Rgb, ch: usize, cw: usize) -> Rgb {
    let offset = |size: usize, crop: usize| -> isize {
        if size >= crop {
            ((size - crop) / 2) as isize
        } else {
            // top = (size - crop) // 2 + ceil((crop - size) / 2) = 0 in the padded canvas,
            // whose image starts at ceil(d / 2).
            -((crop - size).div_ceil(2) as isize)
        }
    };
    img.window(offset(img.h, ch), offset(img.w, cw), ch, cw)
}

/// torchvision's `center_crop`: a side smaller than the crop is padded with zeros first
/// (`d // 2` before, the rest after); the window then starts at `int(round(d / 2.0))`,
/// Python's round half to even.
fn crop_torchvision(img: &Rgb, ch: usize, cw: usize) -> Rgb {
    let offset = |size: usize, crop: usize| -> isize {
        if size >= crop {
            let d = size - crop;
            let half = d / 2;
            (if d % 2 == 1 && half % 2 == 1 {
                half + 1
            } else {
                half
            }) as isize
        } else {
            -(((crop - size) / 2) as isize)
        }
    };
    img.window(offset(img.h, ch), offset(img.w, cw), ch, cw)
}

/// How transformers' processor resizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeTo {
    /// `{"shortest_edge": n}` (or a bare integer `size`, as CLIP's old feature extractor
    /// configs write it): the shorter side to `n`, keeping the aspect ratio.
    ShortestEdge(usize),
    /// `{"height": h, "width": w}`: exactly this size.
    Exact { height: usize, width: usize },
}

/// transformers' `CLIPImageProcessor` (PIL backend) settings, with its defaults for absent
/// keys (those of `openai/clip-vit-large-patch14`: 224, bicubic, crop 224, 1/255, OpenAI
/// mean/std).
#[derive(Debug, Clone, PartialEq)]
pub struct ClipImageProcessor {
    pub do_resize: bool,
    pub size: ResizeTo,
    pub resample: Filter,
    pub do_center_crop: bool,
    /// (height, width).
    pub crop_size: (usize, usize),
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub image_mean: [f64; 3],
    pub image_std: [f64; 3],
}

impl Default for ClipImageProcessor {
    fn default() -> Self {
        Self::clip(224)
    }
}

impl ClipImageProcessor {
    /// CLIP's defaults at `size` (shortest edge and crop).
    pub fn clip(size: usize) -> Self {
        Self {
            do_resize: true,
            size: ResizeTo::ShortestEdge(size),
            resample: Filter::Bicubic,
            do_center_crop: true,
            crop_size: (size, size),
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: OPENAI_CLIP_MEAN,
            image_std: OPENAI_CLIP_STD,
        }
    }

    /// Reads a `preprocessor_config.json` (`CLIPImageProcessor` or the older
    /// `CLIPFeatureExtractor`); `path` names the file in errors. Keys it does not know are
    /// ignored; values it cannot honour (a `longest_edge`, an unknown resampling code) are
    /// refused.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self, ModelError> {
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(path, e.to_string()))?;
        let mut p = Self::default();
        let flag = |key: &str, default: bool| -> Result<bool, ModelError> {
            match v.get(key) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(b) => b
                    .as_bool()
                    .ok_or_else(|| invalid(path, format!("`{key}` is not a boolean"))),
            }
        };
        let uint = |x: &serde_json::Value, what: &str| -> Result<usize, ModelError> {
            x.as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| invalid(path, format!("`{what}` is not a positive integer")))
        };
        p.do_resize = flag("do_resize", true)?;
        p.do_center_crop = flag("do_center_crop", true)?;
        p.do_rescale = flag("do_rescale", true)?;
        p.do_normalize = flag("do_normalize", true)?;
        if let Some(s) = v.get("size").filter(|s| !s.is_null()) {
            p.size = if s.is_u64() {
                ResizeTo::ShortestEdge(uint(s, "size")?)
            } else if s.get("longest_edge").is_some_and(|x| !x.is_null()) {
                return Err(invalid(
                    path,
                    "`size.longest_edge` is not supported (only `shortest_edge`, or `height` and `width`)",
                ));
            } else if let Some(e) = s.get("shortest_edge").filter(|x| !x.is_null()) {
                ResizeTo::ShortestEdge(uint(e, "size.shortest_edge")?)
            } else if let (Some(h), Some(w)) = (s.get("height"), s.get("width")) {
                ResizeTo::Exact {
                    height: uint(h, "size.height")?,
                    width: uint(w, "size.width")?,
                }
            } else {
                return Err(invalid(
                    path,
                    "`size` needs `shortest_edge`, or `height` and `width`",
                ));
            };
        }
        if let Some(c) = v.get("crop_size").filter(|c| !c.is_null()) {
            p.crop_size = if c.is_u64() {
                let n = uint(c, "crop_size")?;
                (n, n)
            } else {
                match (c.get("height"), c.get("width")) {
                    (Some(h), Some(w)) => {
                        (uint(h, "crop_size.height")?, uint(w, "crop_size.width")?)
                    }
                    _ => return Err(invalid(path, "`crop_size` needs `height` and `width`")),
                }
            };
        }
        if let Some(r) = v.get("resample").filter(|r| !r.is_null()) {
            let code = r
                .as_u64()
                .ok_or_else(|| invalid(path, "`resample` is not an integer"))?;
            p.resample = Filter::from_pil_code(code)
                .ok_or_else(|| invalid(path, format!("`resample` {code} is not a PIL filter")))?;
        }
        if let Some(r) = v.get("rescale_factor").filter(|r| !r.is_null()) {
            p.rescale_factor = r
                .as_f64()
                .ok_or_else(|| invalid(path, "`rescale_factor` is not a number"))?;
        }
        let triple = |key: &str, default: [f64; 3]| -> Result<[f64; 3], ModelError> {
            match v.get(key) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(x) => {
                    if let Some(f) = x.as_f64() {
                        return Ok([f; 3]);
                    }
                    let a: Vec<f64> = x
                        .as_array()
                        .map(|a| a.iter().filter_map(|f| f.as_f64()).collect())
                        .unwrap_or_default();
                    <[f64; 3]>::try_from(a)
                        .map_err(|_| invalid(path, format!("`{key}` is not 3 numbers")))
                }
            }
        };
        p.image_mean = triple("image_mean", OPENAI_CLIP_MEAN)?;
        p.image_std = triple("image_std", OPENAI_CLIP_STD)?;
        Ok(p)
    }

    /// The (height, width) of the pixels an image of (height, width) `hw` gives.
    pub fn output_size(&self, hw: (usize, usize)) -> (usize, usize) {
        if self.do_center_crop {
            return self.crop_size;
        }
        match (self.do_resize, self.size) {
            (false, _) => hw,
            (true, ResizeTo::ShortestEdge(s)) => shortest_edge_size(hw, s),
            (true, ResizeTo::Exact { height, width }) => (height, width),
        }
    }

    /// The image's normalized pixels, as `CLIPImageProcessor(...)(image)["pixel_values"][0]`.
    pub fn preprocess(&self, image: &Image) -> Result<Pixels, String> {
        let mut img = Rgb::of(image);
        if self.do_resize {
            let hw = match self.size {
                ResizeTo::ShortestEdge(s) => shortest_edge_size((img.h, img.w), s),
                ResizeTo::Exact { height, width } => (height, width),
            };
            // transformers resizes with PIL even when the size does not change (a copy).
            img = img.resize(hw, self.resample)?;
        }
        if self.do_center_crop {
            img = crop_transformers(&img, self.crop_size.0, self.crop_size.1);
        }
        let rescale = self.do_rescale.then_some(self.rescale_factor);
        let norm = self.do_normalize.then(|| {
            (
                self.image_mean.map(|m| m as f32),
                self.image_std.map(|s| s as f32),
            )
        });
        Ok(channels_first(&img, |c, x| {
            // np.rescale: astype(float64) * scale, then astype(float32); normalize in f32.
            let v = match rescale {
                Some(f) => (x as f64 * f) as f32,
                None => x as f32,
            };
            match &norm {
                Some((m, s)) => (v - m[c]) / s[c],
                None => v,
            }
        }))
    }
}

/// The `clip` package's / open_clip's evaluation transform: torchvision's
/// `Resize(resize, BICUBIC)` of the shorter side on a PIL image, `CenterCrop(crop)`,
/// `ToTensor`, `Normalize(mean, std)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchvisionTransform {
    /// The shorter side after `Resize`.
    pub resize: usize,
    /// `CenterCrop` (height, width).
    pub crop: (usize, usize),
    pub filter: Filter,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl TorchvisionTransform {
    /// `clip._transform(n_px)` = open_clip's `image_transform(n_px, is_train=False)` with the
    /// OpenAI mean/std (what `clip.load("ViT-L/14")` and
    /// `open_clip.create_model_and_transforms("ViT-L-14", "openai")` return, at 224).
    pub fn clip(n_px: usize) -> Self {
        Self {
            resize: n_px,
            crop: (n_px, n_px),
            filter: Filter::Bicubic,
            mean: OPENAI_CLIP_MEAN,
            std: OPENAI_CLIP_STD,
        }
    }

    /// The image's normalized pixels, as the transform's tensor.
    pub fn preprocess(&self, image: &Image) -> Result<Pixels, String> {
        let mut img = Rgb::of(image);
        let hw = shortest_edge_size((img.h, img.w), self.resize);
        if hw != (img.h, img.w) {
            img = img.resize(hw, self.filter)?;
        }
        img = crop_torchvision(&img, self.crop.0, self.crop.1);
        let (m, s) = (self.mean.map(|m| m as f32), self.std.map(|s| s as f32));
        Ok(channels_first(&img, |c, x| {
            (x as f32 / 255.0 - m[c]) / s[c]
        }))
    }
}

/// Either pipeline, for a judge that can be put behind one or the other.
#[derive(Debug, Clone, PartialEq)]
pub enum ImagePreprocessor {
    Transformers(ClipImageProcessor),
    Torchvision(TorchvisionTransform),
}

impl ImagePreprocessor {
    pub fn preprocess(&self, image: &Image) -> Result<Pixels, String> {
        match self {
            Self::Transformers(p) => p.preprocess(image),
            Self::Torchvision(t) => t.preprocess(image),
        }
    }

    /// The (height, width) of the pixels every image gets, where that does not depend on the
    /// image (a centre crop).
    pub fn fixed_size(&self) -> Option<(usize, usize)> {
        match self {
            Self::Transformers(p) => p.do_center_crop.then_some(p.crop_size),
            Self::Torchvision(t) => Some(t.crop),
        }
    }

    /// A short description for a model's identity.
    pub fn describe(&self) -> String {
        match self {
            Self::Transformers(p) => format!(
                "transformers-clip(size={:?},crop={}x{},resample={:?})",
                p.size, p.crop_size.0, p.crop_size.1, p.resample
            ),
            Self::Torchvision(t) => format!(
                "torchvision-clip(resize={},crop={}x{},filter={:?})",
                t.resize, t.crop.0, t.crop.1, t.filter
            ),
        }
    }
}

fn channels_first(img: &Rgb, f: impl Fn(usize, u8) -> f32) -> Pixels {
    let n = img.h * img.w;
    let mut data = Vec::with_capacity(3 * n);
    for c in 0..3 {
        data.extend(img.px[c..].iter().step_by(3).map(|&x| f(c, x)));
    }
    Pixels {
        height: img.h,
        width: img.w,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rgb(h: usize, w: usize) -> Rgb {
        Rgb {
            h,
            w,
            px: (0..h * w * 3).map(|i| (i % 251) as u8).collect(),
        }
    }

    #[test]
    fn shortest_edge_truncates_the_longer_side() {
        assert_eq!(shortest_edge_size((40, 50), 28), (28, 35));
        assert_eq!(shortest_edge_size((36, 40), 28), (28, 31));
        assert_eq!(shortest_edge_size((61, 23), 28), (74, 28));
        assert_eq!(shortest_edge_size((512, 768), 224), (224, 336));
        assert_eq!(shortest_edge_size((10, 10), 224), (224, 224));
    }

    #[test]
    fn crop_offsets_round_as_each_reference_does() {
        // d = 3: torchvision round(1.5) = 2, transformers 3 // 2 = 1.
        let img = rgb(31, 28);
        let first_row = |r: &Rgb| r.px[0];
        assert_eq!(
            first_row(&crop_torchvision(&img, 28, 28)),
            img.px[2 * 28 * 3]
        );
        assert_eq!(first_row(&crop_transformers(&img, 28, 28)), img.px[28 * 3]);
        // d = 5: both 2 (round(2.5) = 2).
        let img = rgb(33, 28);
        assert_eq!(
            crop_torchvision(&img, 28, 28).px,
            crop_transformers(&img, 28, 28).px
        );
        // Padding an odd difference: torchvision puts the extra black column after the image,
        // transformers before it.
        let img = rgb(4, 3);
        let tv = crop_torchvision(&img, 4, 4);
        let hf = crop_transformers(&img, 4, 4);
        assert_eq!(&tv.px[..3], &img.px[..3]);
        assert_eq!(&hf.px[..3], &[0, 0, 0]);
        assert_eq!(&hf.px[3..6], &img.px[..3]);
    }

    #[test]
    fn rescale_in_f64_equals_division_in_f32_for_bytes() {
        for x in 0..=255u8 {
            assert_eq!((x as f64 * (1.0 / 255.0)) as f32, x as f32 / 255.0);
        }
    }

    #[test]
    fn old_feature_extractor_configs_parse() {
        let p = ClipImageProcessor::from_json(
            br#"{"crop_size": 224, "do_center_crop": true, "do_normalize": true, "do_resize": true,
                 "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
                 "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 224}"#,
            Path::new("preprocessor_config.json"),
        )
        .unwrap();
        assert_eq!(p, ClipImageProcessor::clip(224));
        let e = ClipImageProcessor::from_json(
            br#"{"size": {"shortest_edge": 224, "longest_edge": 500}}"#,
            Path::new("x.json"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("longest_edge"), "{e}");
        let e =
            ClipImageProcessor::from_json(br#"{"resample": 9}"#, Path::new("x.json")).unwrap_err();
        assert!(e.to_string().contains("resample"), "{e}");
    }
}
