//! `art-diffusion`: Stable Diffusion in-process: diffusers-layout pipelines (SD 1.x, 2.x, SDXL and the Turbo
//! variants) loaded from a folder or the hub cache and rendered on candle.
//!
//! * [`config`]: the pipeline's JSON configs with diffusers' defaults, unsupported values
//!   refused;
//! * [`text_encoder`]: the CLIP tokenizer and text encoder(s) (on `art_nn::clip`'s layers);
//! * [`unet`]: `UNet2DConditionModel` incl. SDXL's added conditioning, sliced attention;
//! * [`scheduler`]: PNDM, Euler, Euler ancestral and DDIM as diffusers steps them;
//! * [`pipeline`]: prompt encoding, classifier-free guidance, the denoising loop, VAE decode,
//!   seeded per-image noise;
//! * [`conv`] and [`norm`]: `art`'s own 3x3 convolution (block-copy im2col + one matmul per
//!   band) and fused GroupNorm+SiLU, where candle's were the bottleneck;
//! * [`target`]: the Target role (`kind = "stable-diffusion"`) on a pipeline.

pub mod config;
pub mod conv;
pub mod norm;
pub mod pipeline;
pub mod scheduler;
pub mod target;
pub mod text_encoder;
pub mod unet;
pub mod vae;

pub use art_nn::ModelError;
