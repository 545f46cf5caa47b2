//! Building a [`CausalLm`] from its files: a Hugging Face folder (`config.json` +
//! safetensors, single or sharded) or a GGUF file (quantized for CPU users), with an optional
//! PEFT LoRA adapter merged into the base weights as they are read.

use crate::ModelError;
use crate::config::LlmConfig;
use crate::lora::{LoraAdapter, Merger};
use crate::model::{CausalLm, Layer, Linear, Parts};
use art_nn::tensors::{Overlay, SafetensorsIndex};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use std::path::Path;

pub use art_nn::LoadOptions;

/// A weight as a file holds it.
enum Weight {
    Dense(Tensor),
    Quant(QTensor),
}

trait Source {
    fn weight(&mut self, hf_name: &str) -> Result<Weight, ModelError>;
    /// GGUF stores Q/K rows permuted for interleaved rotary pairs; adapter deltas must follow.
    fn permuted_qk(&self) -> bool;
    fn dtype(&self) -> DType;
    fn device(&self) -> &Device;
}

/// A safetensors checkpoint, whose tensor names `name` maps from the Hugging Face Llama
/// names (the identity for a plain LM; a vision-language model keeps its language model
/// under a prefix), with tensors an [`Overlay`] replaces.
struct MappedSource<'a> {
    idx: &'a SafetensorsIndex,
    opts: &'a LoadOptions,
    name: &'a dyn Fn(&str) -> String,
    overlay: Option<&'a Overlay>,
}

impl Source for MappedSource<'_> {
    fn weight(&mut self, hf_name: &str) -> Result<Weight, ModelError> {
        let name = (self.name)(hf_name);
        if let Some(o) = self.overlay
            && let Some(t) = o.take(&name, self.idx.shape(&name))?
        {
            return Ok(Weight::Dense(
                t.to_dtype(self.opts.dtype)?.to_device(&self.opts.device)?,
            ));
        }
        Ok(Weight::Dense(self.idx.load(
            &name,
            self.opts.dtype,
            &self.opts.device,
        )?))
    }
    fn permuted_qk(&self) -> bool {
        false
    }
    fn dtype(&self) -> DType {
        self.opts.dtype
    }
    fn device(&self) -> &Device {
        &self.opts.device
    }
}

struct GgufSource<'a> {
    ct: &'a gguf_file::Content,
    file: std::fs::File,
    path: &'a Path,
    device: Device,
}

/// The GGUF name of a Hugging Face Llama tensor.
fn gguf_name(hf: &str) -> String {
    if hf == "model.embed_tokens.weight" {
        return "token_embd.weight".into();
    }
    if hf == "model.norm.weight" {
        return "output_norm.weight".into();
    }
    if hf == "lm_head.weight" {
        return "output.weight".into();
    }
    if let Some(rest) = hf.strip_prefix("model.layers.")
        && let Some((n, tail)) = rest.split_once('.')
    {
        let t = match tail {
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            other => other,
        };
        return format!("blk.{n}.{t}");
    }
    hf.to_string()
}

impl Source for GgufSource<'_> {
    fn weight(&mut self, name: &str) -> Result<Weight, ModelError> {
        let g = gguf_name(name);
        if !self.ct.tensor_infos.contains_key(&g) {
            return Err(ModelError::Missing {
                path: self.path.to_path_buf(),
                what: format!("GGUF tensor `{g}` ({name})"),
            });
        }
        let q = self
            .ct
            .tensor(&mut self.file, &g, &self.device)
            .map_err(|e| ModelError::Invalid {
                path: self.path.to_path_buf(),
                detail: format!("tensor `{g}`: {e}"),
            })?;
        Ok(Weight::Quant(fast_cpu_format(q)?))
    }
    fn permuted_qk(&self) -> bool {
        true
    }
    fn dtype(&self) -> DType {
        DType::F32
    }
    fn device(&self) -> &Device {
        &self.device
    }
}

/// candle's CPU kernels have no SIMD path for Q4_1, Q5_0 and Q5_1 (a scalar loop, 5-6x slower
/// than llama.cpp on SmolLM2 Q4_1); those matrices are re-quantized to Q8_0 at load, which
/// moves a weight by about 1/254 of its block's largest magnitude at most (far below the 4- or
/// 5-bit step they already carry) for about twice their memory.
fn fast_cpu_format(q: QTensor) -> Result<QTensor, ModelError> {
    let slow = matches!(
        q.dtype(),
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    );
    let dev = q.device();
    if !slow || !dev.is_cpu() || q.rank() != 2 {
        return Ok(q);
    }
    Ok(QTensor::quantize(&q.dequantize(&dev)?, GgmlDType::Q8_0)?)
}

/// llama.cpp's row permutation of Q/K for interleaved rotary pairs.
fn permute_rows(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    w.reshape((heads, 2, out / heads / 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))
}

fn dense(w: Weight, dtype: DType, device: &Device) -> Result<Tensor, ModelError> {
    Ok(match w {
        Weight::Dense(t) => t,
        Weight::Quant(q) => q.dequantize(device)?.to_dtype(dtype)?,
    })
}

fn shape_of(w: &Weight) -> Vec<usize> {
    match w {
        Weight::Dense(t) => t.dims().to_vec(),
        Weight::Quant(q) => q.shape().dims().to_vec(),
    }
}

fn linear(
    src: &mut dyn Source,
    merger: &mut Merger<'_>,
    cfg: &LlmConfig,
    module: &str,
    bias: bool,
) -> Result<Linear, ModelError> {
    let w = src.weight(&format!("{module}.weight"))?;
    let shape = shape_of(&w);
    let b = if bias {
        Some(dense(
            src.weight(&format!("{module}.bias"))?,
            src.dtype(),
            src.device(),
        )?)
    } else {
        None
    };
    let w = match merger.delta(module, &shape)? {
        None => match w {
            Weight::Dense(t) => QMatMul::Tensor(t),
            Weight::Quant(q) => QMatMul::from_qtensor(q)?,
        },
        Some(delta) => {
            let mut delta = delta.to_device(src.device())?;
            if src.permuted_qk() {
                if module.ends_with("q_proj") {
                    delta = permute_rows(&delta, cfg.num_attention_heads)?;
                } else if module.ends_with("k_proj") {
                    delta = permute_rows(&delta, cfg.num_key_value_heads)?;
                }
            }
            let base = dense(w, DType::F32, src.device())?.to_dtype(DType::F32)?;
            QMatMul::Tensor((base + delta)?.to_dtype(src.dtype())?)
        }
    };
    Ok(Linear { w, b })
}

fn build(
    cfg: &LlmConfig,
    src: &mut dyn Source,
    adapter: Option<&LoraAdapter>,
) -> Result<Parts, ModelError> {
    let (dtype, device) = (src.dtype(), src.device().clone());
    let mut merger = Merger::new(adapter);
    // Read once: a tied model's output projection is this matrix (for GGUF, in its quantized
    // form when the file has no separate output tensor).
    let (embed, tied_head) = match src.weight("model.embed_tokens.weight")? {
        Weight::Dense(t) => {
            let head = cfg.tie_word_embeddings.then(|| QMatMul::Tensor(t.clone()));
            (t, head)
        }
        Weight::Quant(q) => {
            let t = q.dequantize(&device)?.to_dtype(dtype)?;
            let head = match cfg.tie_word_embeddings {
                true => Some(QMatMul::from_qtensor(q)?),
                false => None,
            };
            (t, head)
        }
    };
    if embed.dims() != [cfg.vocab_size, cfg.hidden_size] {
        return Err(ModelError::Compute(format!(
            "embed_tokens is {:?}, config says [{}, {}]",
            embed.dims(),
            cfg.vocab_size,
            cfg.hidden_size
        )));
    }
    let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let (ab, mb) = (cfg.attention_bias, cfg.mlp_bias);
        let mut lin = |m: &str, b: bool| linear(src, &mut merger, cfg, &format!("{p}.{m}"), b);
        let (q, k, v, o) = (
            lin("self_attn.q_proj", ab)?,
            lin("self_attn.k_proj", ab)?,
            lin("self_attn.v_proj", ab)?,
            lin("self_attn.o_proj", ab)?,
        );
        let (gate, up, down) = (
            lin("mlp.gate_proj", mb)?,
            lin("mlp.up_proj", mb)?,
            lin("mlp.down_proj", mb)?,
        );
        let norm = |src: &mut dyn Source, n: &str| -> Result<Tensor, ModelError> {
            dense(src.weight(&format!("{p}.{n}.weight"))?, dtype, &device)
        };
        layers.push(Layer {
            q,
            k,
            v,
            o,
            gate,
            up,
            down,
            input_norm: norm(src, "input_layernorm")?,
            post_norm: norm(src, "post_attention_layernorm")?,
        });
    }
    let norm = dense(src.weight("model.norm.weight")?, dtype, &device)?;
    let lm_head = match tied_head {
        Some(w) => Linear { w, b: None },
        None => linear(src, &mut merger, cfg, "lm_head", false)?,
    };
    merger.finish()?;
    Ok(Parts {
        embed,
        layers,
        norm,
        lm_head,
    })
}

fn with_path(e: ModelError, path: &Path) -> ModelError {
    match e {
        ModelError::Compute(d) => ModelError::Invalid {
            path: path.to_path_buf(),
            detail: d,
        },
        e => e,
    }
}

impl CausalLm {
    /// Loads a Hugging Face model folder (`config.json`, `model.safetensors` or sharded
    /// `model-*.safetensors` with their index).
    pub fn load_folder(
        dir: &Path,
        opts: &LoadOptions,
        adapter: Option<&LoraAdapter>,
    ) -> Result<Self, ModelError> {
        let cfg = LlmConfig::from_hf_json(
            &art_hub::read(dir, "config.json")?,
            &dir.join("config.json"),
        )?;
        let idx = SafetensorsIndex::open_folder(dir, "model").map_err(|e| match e {
            ModelError::Missing { path, .. } if dir.join("pytorch_model.bin").is_file() => {
                ModelError::Invalid {
                    path,
                    detail: "only safetensors base weights are read; convert pytorch_model.bin \
                             with transformers' save_pretrained(safe_serialization=True)"
                        .into(),
                }
            }
            e => e,
        })?;
        Self::load_mapped(cfg, &idx, &|n| n.to_string(), None, opts, adapter)
    }

    /// Loads the language model of a larger checkpoint: `name` maps each Hugging Face Llama
    /// tensor name (`model.layers.0...`, `lm_head.weight`) to the checkpoint's, `overlay`
    /// replaces tensors by checkpoint name (before the adapter is merged, as LLaVA's loader
    /// applies them).
    pub(crate) fn load_mapped(
        cfg: LlmConfig,
        idx: &SafetensorsIndex,
        name: &dyn Fn(&str) -> String,
        overlay: Option<&Overlay>,
        opts: &LoadOptions,
        adapter: Option<&LoraAdapter>,
    ) -> Result<Self, ModelError> {
        let mut src = MappedSource {
            idx,
            opts,
            name,
            overlay,
        };
        let parts = build(&cfg, &mut src, adapter).map_err(|e| with_path(e, idx.path()))?;
        Ok(CausalLm::assemble(
            cfg,
            parts,
            false,
            opts.dtype,
            opts.device.clone(),
        ))
    }

    /// Loads a GGUF file (architecture `llama`). Quantized matrices stay quantized; the
    /// activations are f32 whatever `opts.dtype` says.
    pub fn load_gguf(
        path: &Path,
        opts: &LoadOptions,
        adapter: Option<&LoraAdapter>,
    ) -> Result<(Self, gguf_file::Content), ModelError> {
        let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ModelError::Missing {
                path: path.to_path_buf(),
                what: "file".into(),
            },
            _ => ModelError::Invalid {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
        })?;
        let ct = gguf_file::Content::read(&mut file).map_err(|e| ModelError::Invalid {
            path: path.to_path_buf(),
            detail: format!("not a readable GGUF file: {e}"),
        })?;
        let cfg = LlmConfig::from_gguf(&ct, path)?;
        let parts = {
            let mut src = GgufSource {
                ct: &ct,
                file,
                path,
                device: opts.device.clone(),
            };
            build(&cfg, &mut src, adapter).map_err(|e| with_path(e, path))?
        };
        Ok((
            CausalLm::assemble(cfg, parts, true, DType::F32, opts.device.clone()),
            ct,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(
            gguf_name("model.layers.3.self_attn.k_proj.weight"),
            "blk.3.attn_k.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.mlp.down_proj.weight"),
            "blk.0.ffn_down.weight"
        );
        assert_eq!(gguf_name("lm_head.weight"), "output.weight");
    }

    #[test]
    fn slow_quantizations_become_q8_0_within_its_rounding() {
        // Fixed pseudo-random weights (an LCG), so the test is the same every run.
        let mut x = 12345u32;
        let vals: Vec<f32> = (0..8 * 64)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 8) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0
            })
            .collect();
        let w = Tensor::from_vec(vals, (8, 64), &Device::Cpu).unwrap();
        for dt in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1] {
            let q = QTensor::quantize(&w, dt).unwrap();
            let before = q.dequantize(&Device::Cpu).unwrap();
            let fast = fast_cpu_format(q).unwrap();
            assert_eq!(fast.dtype(), GgmlDType::Q8_0);
            let after = fast.dequantize(&Device::Cpu).unwrap();
            let max_abs = |t: &Tensor| {
                t.abs()
                    .and_then(|a| a.max_all())
                    .and_then(|m| m.to_scalar::<f32>())
                    .unwrap()
            };
            let amax = max_abs(&before);
            let d = max_abs(&(after - &before).unwrap());
            // Q8_0's rounding (amax / 254) plus its f16 block scale's (about amax / 2048).
            let bound = amax * (1.0 / 254.0 + 1.0 / 1024.0);
            assert!(d <= bound, "{dt:?}: {d} vs {bound}");
        }
        let q = QTensor::quantize(&w, GgmlDType::Q4_0).unwrap();
        assert_eq!(
            fast_cpu_format(q).unwrap().dtype(),
            GgmlDType::Q4_0,
            "Q4_0 has a kernel"
        );
    }

    #[test]
    fn permutation_pairs_halves_into_interleaved_rows() {
        // One head of 4 rows [a0, a1, b0, b1] becomes [a0, b0, a1, b1].
        let w = Tensor::new(&[[0f32], [1.], [2.], [3.]], &Device::Cpu).unwrap();
        let p = permute_rows(&w, 1).unwrap();
        assert_eq!(
            p.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0., 2., 1., 3.]
        );
    }
}
