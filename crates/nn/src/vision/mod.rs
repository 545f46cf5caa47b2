//! Image preprocessing for the vision models (CLIP, LLaVA, ViT image processors).
//!
//! * [`preprocess`]: the image pipelines in front of CLIP encoders, bit for bit: transformers'
//!   `CLIPImageProcessor` (PIL backend) and the `clip` package's / open_clip's torchvision
//!   transform;
//! * [`resample`]: Pillow's `Image.resize`, bit for bit, for packed RGB8 images.

pub mod preprocess;
pub mod resample;
