//! Image preprocessing for the vision models (CLIP, LLaVA, ViT image processors).
//!
//! * [`clip`]: CLIP's encoder layer and vision tower (`CLIPVisionModel`);
//! * [`resample`]: Pillow's `Image.resize`, bit for bit, for packed RGB8 images.

pub mod clip;
pub mod resample;
