//! `art-remote`: every role over HTTP.
//!
//! [`endpoint`] owns how requests travel (pools of base URLs, timeouts, retries with backoff
//! and `Retry-After`, concurrency and rate limits, API keys from the environment);
//! [`backends`] owns what each API expects and answers (OpenAI-compatible chat and
//! completions, the OpenAI Images API, AUTOMATIC1111, ComfyUI, OpenAI moderation, vision-chat
//! guard models); [`build`] turns config sections into role objects.

pub mod backends;
pub mod build;
pub mod endpoint;
