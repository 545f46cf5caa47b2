//! The CLIP image tower the judges stand on ([`ClipBackbone`]), loaded from transformers' or
//! open_clip's layout, with its memory of recent embeddings by pixel digest.

use super::*;

/// How a checkpoint names the vision tower's tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackboneLayout {
    /// transformers' `CLIPModel` / `CLIPVisionModelWithProjection` (`vision_model.*`,
    /// `visual_projection.weight`), also under the safety checker's `vision_model.vision_model.*`.
    Transformers,
    /// open_clip's `visual.*` (`conv1`, `class_embedding`, `positional_embedding`, `ln_pre`,
    /// `transformer.resblocks.N.{ln_1, attn.in_proj_*, attn.out_proj, ln_2, mlp.c_fc,
    /// mlp.c_proj}`, `ln_post`, `proj`), mapped onto transformers' names: `in_proj` split into
    /// q, k, v by rows, `proj` transposed into `visual_projection.weight`.
    OpenClip,
}

/// The files of a model repository a CLIP judge needs: open_clip's files when the repository
/// has them (timm's repositories also have a `model.safetensors` in timm's naming), else
/// transformers' configs and weights (safetensors, else `pytorch_model.bin`).
pub fn backbone_files(names: &[String]) -> Vec<String> {
    let has = |n: &str| names.iter().any(|x| x == n);
    let top: Vec<&String> = names.iter().filter(|n| !n.contains('/')).collect();
    if has("open_clip_model.safetensors") || has("open_clip_pytorch_model.bin") {
        let weights = if has("open_clip_model.safetensors") {
            "open_clip_model.safetensors"
        } else {
            "open_clip_pytorch_model.bin"
        };
        return top
            .into_iter()
            .filter(|n| n.as_str() == weights || n.as_str() == "open_clip_config.json")
            .cloned()
            .collect();
    }
    let st = top.iter().any(|n| n.ends_with(".safetensors"));
    top.into_iter()
        .filter(|n| {
            matches!(n.as_str(), "config.json" | "preprocessor_config.json")
                || (st
                    && (n.starts_with("model") && n.ends_with(".safetensors")
                        || n.as_str() == "model.safetensors.index.json"))
                || (!st && n.as_str() == "pytorch_model.bin")
        })
        .cloned()
        .collect()
}

/// A CLIP image encoder: a `CLIPVisionModelWithProjection`, however its checkpoint named it.
///
/// It remembers the embeddings of the last [`RECENT_EMBEDDINGS`] inputs it computed, by the
/// SHA-256 of their pixels: Q16, the fine-tuned Q16 and the multi-headed classifier judge the
/// same image through the same preprocessing on one shared tower (see `art_models::build`), so the
/// paper's image judges cost one tower pass per image instead of three. An answer from memory
/// is the embedding the tower computed for exactly those pixels, so it cannot differ from a
/// new pass (each pass is one image, independent of any batch).
#[derive(Debug)]
pub struct ClipBackbone {
    model: ClipVisionModelWithProjection,
    layout: BackboneLayout,
    spec: String,
    revision: Option<String>,
    device: Device,
    recent: std::sync::Mutex<Recent>,
    passes: std::sync::atomic::AtomicU64,
}

/// How many embeddings a backbone remembers: more than one batch of images, since each judge
/// on the tower judges the whole batch before the next one starts (3 KB each at ViT-L/14).
pub const RECENT_EMBEDDINGS: usize = 1024;

/// Recent embeddings by pixel digest, oldest first out.
#[derive(Debug, Default)]
struct Recent {
    by_key: HashMap<String, Vec<f32>>,
    order: std::collections::VecDeque<String>,
}

impl Recent {
    fn insert(&mut self, key: String, e: Vec<f32>) {
        if self.by_key.insert(key.clone(), e).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > RECENT_EMBEDDINGS {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }
}

/// The digest of a tower input: its size and every pixel value's bits.
fn pixels_key(px: &Pixels) -> String {
    let mut bytes = Vec::with_capacity(16 + 4 * px.data.len());
    bytes.extend_from_slice(&(px.height as u64).to_le_bytes());
    bytes.extend_from_slice(&(px.width as u64).to_le_bytes());
    for v in &px.data {
        bytes.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    art_hub::sha256_hex(&bytes)
}

pub(crate) fn json_file(path: &Path) -> Result<serde_json::Value, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => missing(path, "file"),
        _ => invalid(path, e.to_string()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| invalid(path, e.to_string()))
}

fn open_clip_weights(dir: &Path) -> Option<PathBuf> {
    ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

impl ClipBackbone {
    /// Loads `spec`: a folder or hub id (open_clip's files when it has them, else a
    /// transformers CLIP folder), or an open_clip checkpoint file (`.safetensors` or a
    /// PyTorch `.bin`/`.pt` state dict; without `open_clip_config.json` beside it the OpenAI
    /// ViT's settings are assumed: QuickGELU, 64-wide heads).
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self, ModelError> {
        let p = Path::new(spec);
        if p.is_file() {
            let cfg = p
                .parent()
                .map(|d| d.join("open_clip_config.json"))
                .filter(|c| c.is_file());
            let store = Checkpoint::open_file(p)?;
            return Self::from_open_clip(store, cfg.as_deref(), spec, None, opts);
        }
        let dir = art_hub::fetch(spec, backbone_files)?;
        let revision = art_hub::snapshot_revision(&dir);
        if let Some(w) = open_clip_weights(&dir) {
            let cfg = dir.join("open_clip_config.json");
            let store = Checkpoint::open_file(&w)?;
            return Self::from_open_clip(
                store,
                cfg.is_file().then_some(cfg.as_path()),
                spec,
                revision,
                opts,
            );
        }
        let cfg = ClipVisionConfig::from_value(
            &json_file(&dir.join("config.json"))?,
            &dir.join("config.json"),
        )?;
        let store = Arc::new(Checkpoint::open_folder(&dir)?);
        Self::from_transformers(store, &cfg, spec, revision, opts)
    }

    pub(crate) fn from_transformers(
        store: Arc<Checkpoint>,
        cfg: &ClipVisionConfig,
        spec: &str,
        revision: Option<String>,
        opts: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let path = store.path().to_path_buf();
        let prefix = ["vision_model.vision_model", "vision_model"]
            .into_iter()
            .find(|p| store.contains(&format!("{p}.embeddings.class_embedding")))
            .ok_or_else(|| {
                invalid(
                    &path,
                    "no CLIP vision tower (`vision_model.embeddings.class_embedding`) in the weights",
                )
            })?;
        let proj = store
            .shape("visual_projection.weight")
            .ok_or_else(|| missing(&path, "tensor `visual_projection.weight`"))?;
        if proj.len() != 2 || proj[1] != cfg.hidden_size {
            return Err(invalid(
                &path,
                format!(
                    "`visual_projection.weight` is {proj:?}, the tower's width is {}",
                    cfg.hidden_size
                ),
            ));
        }
        let vb = VarBuilder::from_backend(
            Box::new(CheckpointBackend(store)),
            opts.dtype,
            opts.device.clone(),
        );
        let model = ClipVisionModelWithProjection::new(
            vb.pp(prefix),
            vb.pp("visual_projection"),
            cfg,
            proj[0],
        )
        .map_err(|e| invalid(&path, e.to_string()))?;
        Ok(Self {
            model,
            layout: BackboneLayout::Transformers,
            spec: spec.to_string(),
            revision,
            device: opts.device.clone(),
            recent: Default::default(),
            passes: Default::default(),
        })
    }

    fn from_open_clip(
        store: Checkpoint,
        config: Option<&Path>,
        spec: &str,
        revision: Option<String>,
        opts: &LoadOptions,
    ) -> Result<Self, ModelError> {
        let path = store.path().to_path_buf();
        let bad = |d: String| invalid(&path, d);
        // The model config: open_clip_config.json's `model_cfg`, else the OpenAI ViT's.
        let (quick_gelu, head_width) = match config {
            Some(c) => {
                let v = json_file(c)?;
                let m = &v["model_cfg"];
                let vc = &m["vision_cfg"];
                for key in [
                    "timm_model_name",
                    "attentional_pool",
                    "final_ln_after_pool",
                    "no_ln_pre",
                    "ls_init_value",
                ] {
                    if vc
                        .get(key)
                        .is_some_and(|x| !x.is_null() && x != &serde_json::json!(false))
                    {
                        return Err(invalid(
                            c,
                            format!("open_clip `vision_cfg.{key}` is not supported"),
                        ));
                    }
                }
                if vc.get("pool_type").is_some_and(|x| x != "tok") {
                    return Err(invalid(
                        c,
                        "open_clip `vision_cfg.pool_type` other than `tok` is not supported",
                    ));
                }
                (
                    m["quick_gelu"].as_bool().unwrap_or(false),
                    vc["head_width"].as_u64().unwrap_or(64) as usize,
                )
            }
            None => (true, 64),
        };
        let shape = |n: &str| {
            store
                .shape(&format!("visual.{n}"))
                .ok_or_else(|| missing(&path, format!("tensor `visual.{n}` (an open_clip ViT)")))
        };
        let conv = shape("conv1.weight")?;
        let pos = shape("positional_embedding")?;
        let proj = shape("proj")?;
        let fc = shape("transformer.resblocks.0.mlp.c_fc.weight")?;
        if conv.len() != 4
            || conv[2] != conv[3]
            || pos.len() != 2
            || proj.len() != 2
            || fc.len() != 2
        {
            return Err(bad(
                "the open_clip ViT's tensors do not have a ViT's shapes".into(),
            ));
        }
        let (width, patch) = (conv[0], conv[2]);
        let grid = ((pos[0].saturating_sub(1)) as f64).sqrt() as usize;
        if grid * grid + 1 != pos[0] {
            return Err(bad(format!(
                "`visual.positional_embedding` has {} rows, not 1 + a square",
                pos[0]
            )));
        }
        let names = store.names();
        if names
            .iter()
            .any(|n| n.starts_with("visual.") && (n.contains(".ls_1") || n.contains("attn_pool")))
        {
            return Err(bad(
                "open_clip layer scale / attentional pooling is not supported".into(),
            ));
        }
        let layers = (0..)
            .take_while(|i| {
                store.contains(&format!("visual.transformer.resblocks.{i}.ln_1.weight"))
            })
            .count();
        if head_width == 0 || !width.is_multiple_of(head_width) {
            return Err(bad(format!(
                "width {width} is not a multiple of the head width {head_width}"
            )));
        }
        let cfg = ClipVisionConfig {
            hidden_size: width,
            intermediate_size: fc[0],
            num_hidden_layers: layers,
            num_attention_heads: width / head_width,
            image_size: grid * patch,
            patch_size: patch,
            hidden_act: if quick_gelu { "quick_gelu" } else { "gelu" }.into(),
            layer_norm_eps: 1e-5,
            num_channels: conv[1],
        };
        // Rename (and split) onto transformers' names, at the model's dtype.
        let dev = Device::Cpu;
        let get = |n: &str| store.load(&format!("visual.{n}"), DType::F32, &dev);
        let mut map: HashMap<String, Tensor> = HashMap::new();
        let v = "vision_model";
        map.insert(
            format!("{v}.embeddings.patch_embedding.weight"),
            get("conv1.weight")?,
        );
        map.insert(
            format!("{v}.embeddings.class_embedding"),
            get("class_embedding")?,
        );
        map.insert(
            format!("{v}.embeddings.position_embedding.weight"),
            get("positional_embedding")?,
        );
        for s in ["weight", "bias"] {
            map.insert(
                format!("{v}.pre_layrnorm.{s}"),
                get(&format!("ln_pre.{s}"))?,
            );
            map.insert(
                format!("{v}.post_layernorm.{s}"),
                get(&format!("ln_post.{s}"))?,
            );
        }
        for i in 0..layers {
            let r = format!("transformer.resblocks.{i}.");
            let h = format!("{v}.encoder.layers.{i}.");
            for s in ["weight", "bias"] {
                let qkv = get(&format!("{r}attn.in_proj_{s}"))?;
                if qkv.dims()[0] != 3 * width {
                    return Err(bad(format!(
                        "`visual.{r}attn.in_proj_{s}` is {:?}, not 3 x {width} rows",
                        qkv.dims()
                    )));
                }
                for (j, n) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                    map.insert(
                        format!("{h}self_attn.{n}.{s}"),
                        qkv.narrow(0, j * width, width)?.contiguous()?,
                    );
                }
                map.insert(
                    format!("{h}self_attn.out_proj.{s}"),
                    get(&format!("{r}attn.out_proj.{s}"))?,
                );
                map.insert(format!("{h}layer_norm1.{s}"), get(&format!("{r}ln_1.{s}"))?);
                map.insert(format!("{h}layer_norm2.{s}"), get(&format!("{r}ln_2.{s}"))?);
                map.insert(format!("{h}mlp.fc1.{s}"), get(&format!("{r}mlp.c_fc.{s}"))?);
                map.insert(
                    format!("{h}mlp.fc2.{s}"),
                    get(&format!("{r}mlp.c_proj.{s}"))?,
                );
            }
        }
        map.insert(
            "visual_projection.weight".into(),
            get("proj")?.t()?.contiguous()?,
        );
        let mapped = Arc::new(Checkpoint::Map {
            path: path.clone(),
            tensors: map,
        });
        let mut b = Self::from_transformers(mapped, &cfg, spec, revision, opts)?;
        b.layout = BackboneLayout::OpenClip;
        Ok(b)
    }

    pub fn layout(&self) -> BackboneLayout {
        self.layout
    }

    pub fn config(&self) -> &ClipVisionConfig {
        self.model.vision.config()
    }

    /// The width of the image embeddings (768 for ViT-L/14).
    pub fn embed_dim(&self) -> usize {
        self.model.projection_dim()
    }

    /// The tower's input size (224 for ViT-L/14).
    pub fn image_size(&self) -> usize {
        self.config().image_size
    }

    /// What it was loaded from (folder, hub id or file).
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// The hub snapshot it was loaded from, where it came from the hub cache.
    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// The image embedding (not normalized) of one image's pixels, as f32. Each image is its
    /// own pass, so an embedding never depends on the other images of a batch; pixels seen
    /// recently are answered from memory.
    pub fn embed(&self, px: &Pixels) -> Result<Vec<f32>, ModelError> {
        let key = pixels_key(px);
        if let Some(e) = self.recent().by_key.get(&key) {
            return Ok(e.clone());
        }
        let t = Tensor::from_vec(px.data.clone(), (1, 3, px.height, px.width), &self.device)?;
        let e = self.model.image_embeds(&t)?;
        let e = e.squeeze(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        self.passes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.recent().insert(key, e.clone());
        Ok(e)
    }

    /// How many tower passes this backbone has run.
    pub fn passes(&self) -> u64 {
        self.passes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets the recent embeddings, so the next images each take a pass (benchmarks that
    /// judge the same images again time the tower, not the memory).
    pub fn forget_recent(&self) {
        *self.recent() = Recent::default();
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        // The map is whole after any panic (inserts are single calls), so a poisoned lock is
        // still good.
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_open_clip_files_before_timm_ones() {
        let names: Vec<String> = [
            "config.json",
            "model.safetensors",
            "open_clip_config.json",
            "open_clip_model.safetensors",
            "open_clip_pytorch_model.bin",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            backbone_files(&names),
            vec!["open_clip_config.json", "open_clip_model.safetensors"]
        );
        let names: Vec<String> = ["config.json", "pytorch_model.bin", "tokenizer.json"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            safety_checker_files(&names),
            vec!["config.json", "pytorch_model.bin"]
        );
    }
}
