//! Stable Diffusion in-process: diffusers-layout pipelines (SD 1.x, 2.x, SDXL and the Turbo
//! variants) loaded from a folder or the hub cache and rendered on candle.
//!
//! * [`config`]: the pipeline's JSON configs with diffusers' defaults, unsupported values
//!   refused;
//! * [`clip`]: the CLIP tokenizer and text encoder(s);
//! * [`unet`]: `UNet2DConditionModel` incl. SDXL's added conditioning, sliced attention;
//! * [`scheduler`]: PNDM, Euler, Euler ancestral and DDIM as diffusers steps them;
//! * [`pipeline`]: prompt encoding, classifier-free guidance, the denoising loop, VAE decode,
//!   seeded per-image noise.

pub mod clip;
pub mod config;
pub mod conv;
pub mod norm;
pub mod pipeline;
pub mod scheduler;
pub mod unet;
pub mod vae;
