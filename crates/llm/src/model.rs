//! The Llama-family decoder (Llama 2/3, Mistral) as transformers computes it: RMSNorm in f32,
//! rotary embeddings from per-row position ids (so left-padded batches get the positions
//! `generate` gives them), grouped KV heads, an optional sliding window, softmax in f32, and a
//! KV cache whose rows can be reordered or dropped (beam search, finished lanes).
//!
//! Linear layers are `QMatMul`s: dense tensors for safetensors checkpoints, quantized blocks for
//! GGUF files. GGUF stores Q and K rows permuted for interleaved rotary pairs (llama.cpp's
//! layout), so those models rotate with `rope_i`; Hugging Face checkpoints use the half split.

use crate::config::{LlmConfig, inv_freq};
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};

pub(crate) struct Linear {
    pub(crate) w: QMatMul,
    pub(crate) b: Option<Tensor>,
}

impl Linear {
    /// `x`: [n, in] -> [n, out].
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = self.w.forward(x)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

pub(crate) struct Layer {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
    pub(crate) input_norm: Tensor,
    pub(crate) post_norm: Tensor,
}

/// A causal LM ready to run. Shared read-only between threads; the mutable state of a
/// generation lives in its [`KvCache`].
pub struct CausalLm {
    pub(crate) cfg: LlmConfig,
    pub(crate) embed: Tensor,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Tensor,
    pub(crate) lm_head: Linear,
    pub(crate) rope_interleaved: bool,
    pub(crate) inv_freq: Vec<f32>,
    pub(crate) dtype: DType,
    pub(crate) device: Device,
}

impl std::fmt::Debug for CausalLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CausalLm")
            .field("model_type", &self.cfg.model_type)
            .field("layers", &self.layers.len())
            .field("hidden", &self.cfg.hidden_size)
            .field("dtype", &self.dtype)
            .finish_non_exhaustive()
    }
}

/// Keys and values of every layer: [rows, kv_heads, len, head_dim] each.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// Tokens held per row.
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the rows `rows` (in that order, repeats allowed): beam reordering, or dropping
    /// finished rows from the batch.
    pub fn select_rows(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        let Some(Some((k0, _))) = self.layers.first() else {
            return Ok(());
        };
        let idx = Tensor::new(rows, k0.device())?;
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(&idx, 0)?;
            *v = v.index_select(&idx, 0)?;
        }
        Ok(())
    }
}

/// Queries of a prefill attended to per block (see `attention`).
const QUERY_BLOCK: usize = 256;

/// The causal (and sliding-window) bias of `q` queries that are the last of `kv` keys, all
/// real: [1, 1, q, kv] in f32.
fn causal_bias(
    q: usize,
    kv: usize,
    window: Option<usize>,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let mut bias = vec![f32::NEG_INFINITY; q * kv];
    for i in 0..q {
        let qa = kv - q + i;
        let lo = window.map_or(0, |w| (qa + 1).saturating_sub(w));
        for x in &mut bias[i * kv + lo..=i * kv + qa] {
            *x = 0.0;
        }
    }
    Tensor::from_vec(bias, (1, 1, q, kv), device)
}

/// Runs of consecutive rows with the same number of leading pad positions: (start, len, pad).
fn pad_runs(pads: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (r, &p) in pads.iter().enumerate() {
        match runs.last_mut() {
            Some(run) if run.2 == p => run.1 += 1,
            _ => runs.push((r, 1, p)),
        }
    }
    runs
}

impl CausalLm {
    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: vec![None; self.layers.len()],
        }
    }

    /// Runs `ids` ([rows, t], u32) at `positions` ([rows][t]), appending to `cache`. The
    /// batch is left-padded: `pads[r]` is the number of leading pad positions of row `r`
    /// (cache and new tokens together); everything after them is real. Returns f32 logits
    /// [rows, t, vocab], or [rows, vocab] for the last position only when `last_only`.
    ///
    /// Attention runs over each row's real keys only (rows with equal padding together), so
    /// a row's numbers are bit-for-bit those of the same sequence run alone: padding would
    /// otherwise shift the summation order, which quantized models amplify into different
    /// tokens.
    pub fn forward(
        &self,
        ids: &Tensor,
        positions: &[Vec<u32>],
        pads: &[usize],
        cache: &mut KvCache,
        last_only: bool,
    ) -> candle_core::Result<Tensor> {
        let (rows, t) = ids.dims2()?;
        let x = self.embed.index_select(&ids.flatten_all()?, 0)?.reshape((
            rows,
            t,
            self.cfg.hidden_size,
        ))?;
        self.forward_embeds(&x, positions, pads, cache, last_only)
    }

    /// The input embeddings of `ids`: [ids.len(), hidden] in the model dtype.
    pub fn embed_ids(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        self.embed.index_select(&Tensor::new(ids, &self.device)?, 0)
    }

    /// [`forward`](Self::forward) from input embeddings ([rows, t, hidden], the model dtype)
    /// instead of token ids: how a vision-language model feeds image features in among the
    /// text embeddings.
    pub fn forward_embeds(
        &self,
        x: &Tensor,
        positions: &[Vec<u32>],
        pads: &[usize],
        cache: &mut KvCache,
        last_only: bool,
    ) -> candle_core::Result<Tensor> {
        let (rows, t, hidden) = x.dims3()?;
        if hidden != self.cfg.hidden_size {
            candle_core::bail!(
                "input embeddings have width {hidden}, the model {}",
                self.cfg.hidden_size
            );
        }
        let (cos, sin) = self.rope_tables(positions, t)?;
        let mut x = x.reshape((rows * t, hidden))?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = candle_nn::ops::rms_norm(&x, &layer.input_norm, self.cfg.rms_norm_eps as f32)?;
            let a = self.attention(layer, &h, rows, t, &cos, &sin, pads, &mut cache.layers[i])?;
            x = (x + a)?;
            let h = candle_nn::ops::rms_norm(&x, &layer.post_norm, self.cfg.rms_norm_eps as f32)?;
            let m = layer.down.forward(
                &(candle_nn::ops::silu(&layer.gate.forward(&h)?)? * layer.up.forward(&h)?)?,
            )?;
            x = (x + m)?;
        }
        let x = x.reshape((rows, t, self.cfg.hidden_size))?;
        let x = if last_only {
            x.narrow(1, t - 1, 1)?
                .reshape((rows, self.cfg.hidden_size))?
        } else {
            x.reshape((rows * t, self.cfg.hidden_size))?
        };
        let x = candle_nn::ops::rms_norm(&x, &self.norm, self.cfg.rms_norm_eps as f32)?;
        let logits = self.lm_head.forward(&x)?.to_dtype(DType::F32)?;
        if last_only {
            Ok(logits)
        } else {
            logits.reshape((rows, t, ()))
        }
    }

    /// cos and sin of every row's positions: [rows, t, head_dim / 2], computed in f32 as
    /// transformers does (position x inverse frequency, then cos/sin), cast to the model dtype.
    fn rope_tables(
        &self,
        positions: &[Vec<u32>],
        t: usize,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let half = self.inv_freq.len();
        let rows = positions.len();
        let mut cos = Vec::with_capacity(rows * t * half);
        let mut sin = Vec::with_capacity(rows * t * half);
        for row in positions {
            if row.len() != t {
                candle_core::bail!("positions row has {} entries, expected {t}", row.len());
            }
            for &p in row {
                for &f in &self.inv_freq {
                    let a = p as f32 * f;
                    cos.push(a.cos());
                    sin.push(a.sin());
                }
            }
        }
        let cos = Tensor::from_vec(cos, (rows, t, half), &self.device)?.to_dtype(self.dtype)?;
        let sin = Tensor::from_vec(sin, (rows, t, half), &self.device)?.to_dtype(self.dtype)?;
        Ok((cos, sin))
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        layer: &Layer,
        h: &Tensor,
        rows: usize,
        t: usize,
        cos: &Tensor,
        sin: &Tensor,
        pads: &[usize],
        cache: &mut Option<(Tensor, Tensor)>,
    ) -> candle_core::Result<Tensor> {
        let (nh, nkv, hd) = (
            self.cfg.num_attention_heads,
            self.cfg.num_key_value_heads,
            self.cfg.head_dim,
        );
        let heads =
            |x: Tensor, n: usize| x.reshape((rows, t, n, hd))?.transpose(1, 2)?.contiguous();
        let q = heads(layer.q.forward(h)?, nh)?;
        let k = heads(layer.k.forward(h)?, nkv)?;
        let v = heads(layer.v.forward(h)?, nkv)?;
        let rope = if self.rope_interleaved {
            candle_nn::rotary_emb::rope_i
        } else {
            candle_nn::rotary_emb::rope
        };
        let q = rope(&q, cos, sin)?;
        let k = rope(&k, cos, sin)?;
        let (k, v) = match cache.take() {
            Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));
        let kv_len = k.dim(2)?;
        if pads.len() != rows {
            candle_core::bail!("{} pad counts for {rows} rows", pads.len());
        }
        let rep = nh / nkv;
        let scale = 1.0 / (hd as f64).sqrt();
        let mut outs = Vec::new();
        for (start, n, pad) in pad_runs(pads) {
            let keys = kv_len - pad.min(kv_len);
            // Queries at padded positions (prefill only) see nothing; their output is zero
            // and never read.
            let first = pad.saturating_sub(kv_len - t).min(t);
            let nq = t - first;
            let mut parts = Vec::with_capacity(2 + nq / QUERY_BLOCK);
            if first > 0 {
                parts.push(Tensor::zeros((n, nh, first, hd), self.dtype, &self.device)?);
            }
            // Long prompts (a vision-language prompt holds thousands of image tokens) run
            // their queries in blocks of a fixed size, each against the keys up to its last
            // query: the scores of a block are [rows, heads, QUERY_BLOCK, keys] instead of
            // [rows, heads, nq, keys], and the block size never depends on the batch.
            for b0 in (0..nq).step_by(QUERY_BLOCK) {
                let bl = QUERY_BLOCK.min(nq - b0);
                let kend = keys - nq + b0 + bl;
                let qb = q
                    .narrow(0, start, n)?
                    .narrow(2, first + b0, bl)?
                    .contiguous()?;
                let kr = k.narrow(0, start, n)?.narrow(2, pad, kend)?.contiguous()?;
                let vr = v.narrow(0, start, n)?.narrow(2, pad, kend)?.contiguous()?;
                // Grouped heads without copying K/V: the `rep` query heads of a KV head are
                // stacked along the query axis, so one batched matmul serves the group.
                let qb = qb.reshape((n, nkv, rep * bl, hd))?;
                let mut scores = (qb.matmul(&kr.t()?)? * scale)?
                    .to_dtype(DType::F32)?
                    .reshape((n, nh, bl, kend))?;
                let window_cuts = self.cfg.sliding_window.is_some_and(|w| kend > w);
                if bl > 1 || window_cuts {
                    let bias = causal_bias(bl, kend, self.cfg.sliding_window, &self.device)?;
                    scores = scores.broadcast_add(&bias)?;
                }
                let probs = candle_nn::ops::softmax_last_dim(&scores)?
                    .to_dtype(self.dtype)?
                    .reshape((n, nkv, rep * bl, kend))?;
                parts.push(probs.matmul(&vr)?.reshape((n, nh, bl, hd))?);
            }
            outs.push(if parts.len() == 1 {
                parts.pop().expect("one part")
            } else {
                Tensor::cat(&parts, 2)?
            });
        }
        let out = if outs.len() == 1 {
            outs.pop().expect("one run")
        } else {
            Tensor::cat(&outs, 0)?
        };
        let out = out.transpose(1, 2)?.reshape((rows * t, nh * hd))?;
        layer.o.forward(&out)
    }

    /// Builds the model from its parts; used by the loaders.
    pub(crate) fn assemble(
        cfg: LlmConfig,
        parts: Parts,
        rope_interleaved: bool,
        dtype: DType,
        device: Device,
    ) -> Self {
        let inv_freq = inv_freq(&cfg);
        Self {
            cfg,
            embed: parts.embed,
            layers: parts.layers,
            norm: parts.norm,
            lm_head: parts.lm_head,
            rope_interleaved,
            inv_freq,
            dtype,
            device,
        }
    }
}

pub(crate) struct Parts {
    pub(crate) embed: Tensor,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm: Tensor,
    pub(crate) lm_head: Linear,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causal_bias_with_window() {
        let b: Vec<Vec<f32>> = causal_bias(2, 4, Some(2), &Device::Cpu)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2()
            .unwrap();
        let ok = |r: &[f32]| r.iter().map(|&x| x == 0.0).collect::<Vec<_>>();
        assert_eq!(ok(&b[0]), [false, true, true, false]);
        assert_eq!(ok(&b[1]), [false, false, true, true]);
    }

    #[test]
    fn rows_with_equal_padding_run_together() {
        assert_eq!(
            pad_runs(&[2, 2, 0, 0, 0, 2]),
            vec![(0, 2, 2), (2, 3, 0), (5, 1, 2)]
        );
    }
}
