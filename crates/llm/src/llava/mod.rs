//! LLaVA-NeXT (LLaVA-1.6), the paper's Guide model: a CLIP ViT tower read at an inner layer,
//! "anyres" tiling with unpadding and an image-newline embedding, a two-layer GELU projector
//! and a Llama-family language model (Mistral for `llava-v1.6-mistral-7b`) that generates
//! from the prompt's text embeddings with the image features spliced in.
//!
//! * [`config`]: both checkpoint layouts' `config.json` (llava-hf and the original LLaVA's);
//! * [`anyres`]: the image processor's tiling and the feature map's unpadding;
//! * [`model`]: the tower, projector, packing and prompt embeddings;
//! * [`mod@load`]: weights of either layout, a PEFT LoRA and `non_lora_trainables.bin`.

pub mod anyres;
pub mod config;
pub mod load;
pub mod model;

pub use config::{Layout, LlavaConfig};
pub use load::{Loaded, load};
pub use model::{LlavaNext, Piece, Prompt};

use crate::LlmTokenizer;
use crate::ModelError;

/// The image's place in a prompt text.
pub const IMAGE_MARKER: &str = "<image>";

/// Tokenizes `text` as LLaVA's `tokenizer_image_token` does: the text between image markers
/// is encoded chunk by chunk (each with the tokenizer's special tokens), the first chunk keeps
/// its leading BOS and the later chunks lose theirs, and each marker becomes a
/// [`Piece::Image`].
pub fn tokenize_with_image(tok: &LlmTokenizer, text: &str) -> Result<Vec<Piece>, ModelError> {
    let bos = tok.bos_id();
    let mut out = Vec::new();
    for (i, chunk) in text.split(IMAGE_MARKER).enumerate() {
        if i > 0 {
            out.push(Piece::Image);
        }
        let mut ids = tok.encode(chunk)?;
        if i > 0 && bos.is_some() && ids.first().copied() == bos {
            ids.remove(0);
        }
        out.push(Piece::Text(ids));
    }
    Ok(out)
}
