//! `LlavaNextForConditionalGeneration`'s forward pieces: the CLIP tower on an image's tiles,
//! the two-layer GELU projector, anyres packing with unpadding and the image-newline
//! embedding, and the prompt's input embeddings with the image features spliced in where
//! the prompt has its image placeholder. Generation then runs on the language model
//! ([`CausalLm`]) from those embeddings.

use super::anyres::{self, Tiles};
use super::config::{FeatureSelect, LlavaConfig};
use crate::CausalLm;
use crate::ModelError;
use art_core::Image;
use art_nn::clip::ClipVisionModel;
use candle_core::{Module, Tensor};
use candle_nn::Linear;

/// A prompt piece: text token ids, or the image's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(Vec<u32>),
    Image,
}

/// A vision-language prompt ready for generation.
#[derive(Debug)]
pub struct Prompt {
    /// The ids the logit processors see: text ids, and `placeholder` at each image
    /// feature position.
    pub ids: Vec<u32>,
    /// [ids.len(), hidden] in the language model's dtype.
    pub embeds: Tensor,
}

#[derive(Debug)]
pub struct LlavaNext {
    pub cfg: LlavaConfig,
    pub vision: ClipVisionModel,
    pub(crate) proj1: Linear,
    pub(crate) proj2: Linear,
    /// [hidden] of the language model.
    pub(crate) newline: Tensor,
    pub lm: CausalLm,
}

impl LlavaNext {
    /// The image cut into tiles as the processor does, and its pixel values
    /// [tiles, 3, size, size] (f32).
    pub fn pixel_values(&self, image: &Image) -> Result<(Tiles, Tensor), ModelError> {
        let s = self.cfg.vision.image_size;
        let tiles = anyres::tiles(image, &self.cfg.pinpoints, s).map_err(ModelError::Compute)?;
        let p = &self.cfg.processor;
        let px = anyres::pixel_values(&tiles, &p.mean, &p.std, p.rescale);
        let n = tiles.tiles.len();
        let px = Tensor::from_vec(px, (n, 3, s, s), self.lm.device())?;
        Ok((tiles, px))
    }

    /// The projected features of every tile, before packing: [tiles, tokens, hidden].
    pub fn tile_features(&self, pixels: &Tensor) -> Result<Tensor, ModelError> {
        let h = self.vision.hidden_state(pixels, self.cfg.feature_layer)?;
        let h = match self.cfg.select {
            FeatureSelect::Patch => h.narrow(1, 1, h.dim(1)? - 1)?,
            FeatureSelect::Full => h,
        };
        let (t, n, d) = h.dims3()?;
        let h = h.reshape((t * n, d))?.to_dtype(self.lm.dtype())?;
        let x = self.proj2.forward(&self.proj1.forward(&h)?.gelu_erf()?)?;
        Ok(x.reshape((t, n, ()))?)
    }

    /// transformers' `pack_image_features` for one image: the whole-image tile's features,
    /// then the grid's feature map unpadded to the image's aspect ratio with the newline
    /// embedding after every row: [tokens, hidden].
    pub fn pack(&self, feats: &Tensor, size: (usize, usize)) -> Result<Tensor, ModelError> {
        let (tiles, n, d) = feats.dims3()?;
        let base = feats.get(0)?;
        if tiles == 1 {
            return Ok(Tensor::cat(&[&base, &self.newline.reshape((1, d))?], 0)?);
        }
        let g = self.cfg.vision.grid();
        let (rows, cols) =
            anyres::grid_shape(size, &self.cfg.pinpoints, self.cfg.vision.image_size);
        if rows * cols != tiles - 1 || n != g * g {
            return Err(ModelError::Compute(format!(
                "{} grid tiles of {n} features do not make a {rows}x{cols} grid of {g}x{g} patches (vision_feature_select_strategy must be `default` for anyres)",
                tiles - 1
            )));
        }
        // [rows, cols, g, g, d] -> [d, rows, g, cols, g] -> [d, rows * g, cols * g]
        let map = feats
            .narrow(0, 1, tiles - 1)?
            .reshape((rows, cols, g, g, d))?
            .permute((4, 0, 2, 1, 3))?
            .reshape((d, rows * g, cols * g))?;
        let (top, bottom, left, right) = anyres::unpad_window(size, (rows * g, cols * g));
        let (h, w) = (bottom - top, right - left);
        let map = map.narrow(1, top, h)?.narrow(2, left, w)?;
        let newline = self.newline.reshape((d, 1, 1))?.broadcast_as((d, h, 1))?;
        let map = Tensor::cat(&[&map, &newline], 2)?
            .reshape((d, h * (w + 1)))?
            .t()?;
        Ok(Tensor::cat(&[&base, &map], 0)?)
    }

    /// The packed features of one image: [tokens, hidden].
    pub fn image_features(&self, image: &Image) -> Result<Tensor, ModelError> {
        let (tiles, px) = self.pixel_values(image)?;
        self.pack(&self.tile_features(&px)?, tiles.size)
    }

    /// The input embeddings of `pieces` with `features` at the image's place (once per
    /// `Piece::Image`); `placeholder` stands for the image positions in the returned ids.
    pub fn prompt(
        &self,
        pieces: &[Piece],
        features: &Tensor,
        placeholder: u32,
    ) -> Result<Prompt, ModelError> {
        let n = features.dim(0)?;
        let mut ids = Vec::new();
        let mut parts = Vec::with_capacity(pieces.len());
        for p in pieces {
            match p {
                Piece::Text(t) if t.is_empty() => {}
                Piece::Text(t) => {
                    ids.extend_from_slice(t);
                    parts.push(self.lm.embed_ids(t)?);
                }
                Piece::Image => {
                    ids.extend(std::iter::repeat_n(placeholder, n));
                    parts.push(features.to_dtype(self.lm.dtype())?);
                }
            }
        }
        if parts.is_empty() {
            return Err(ModelError::Compute("an empty prompt".into()));
        }
        Ok(Prompt {
            ids,
            embeds: Tensor::cat(&parts, 0)?,
        })
    }
}
