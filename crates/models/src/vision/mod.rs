//! Image preprocessing for the vision models (CLIP, LLaVA, ViT image processors).
//!
//! * [`clip`]: CLIP's encoder layer and vision tower (`CLIPVisionModel`);
//! * [`preprocess`]: the image pipelines in front of CLIP encoders, bit for bit: transformers'
//!   `CLIPImageProcessor` (PIL backend) and the `clip` package's / open_clip's torchvision
//!   transform;
//! * [`resample`]: Pillow's `Image.resize`, bit for bit, for packed RGB8 images.

pub mod clip;
pub mod preprocess;
pub mod resample;
