#!/usr/bin/env python3
"""Golden files for art-judges' CLIP image judges (crates/judges/src/clip/) and the
image processors in front of them (crates/nn/src/vision/preprocess.rs): Q16, the
multi-headed safety classifier (MHSC, "Unsafe Diffusion") and the Stable Diffusion safety
checker, each on a tiny random CLIP ViT, computed with the PyTorch references: open_clip 3.3
(+ torchvision 0.29) for the `clip`/open_clip image transform and `encode_image`, transformers
5.24 (`CLIPModel`, `CLIPImageProcessorPil`) and diffusers 0.42.1
(`StableDiffusionSafetyChecker`). No network and no downloaded weights: every weight is drawn
from fixed seeds, the test images are drawn by numpy from fixed seeds. Not run in CI; rerun
when the reference or the fixtures change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers diffusers \
        open_clip_torch safetensors numpy pillow
    /tmp/tv/bin/python tools/golden/clip_judges.py

Deterministic (fixed seeds, CPU, one thread, f32): rerunning with the same library versions
rewrites identical files.

The judges as ART's reference code (GuanlinLee/ART, image_content_detection.py) runs them:
  * Q16: `clip.load("ViT-L/14")` (the `clip` package: its preprocess is torchvision's
    Resize(n_px, BICUBIC) + CenterCrop(n_px) + ToTensor + Normalize(OpenAI mean/std), the same
    transform as open_clip's `image_transform(n_px, is_train=False)`), `encode_image` (= the
    vision tower's pooled class token @ proj = transformers' visual_projection(pooler_output)),
    both L2-normalized, `100 * image @ text.T`, softmax; label = argmax, ART's score = P(row 1,
    "inappropriate"). The embeddings are `torch.HalfTensor(pickle.load(...))` for prompts.p and
    `torch.load(...).to(torch.float16)` for prompts.pt: rounded to f16. The golden runs the
    rest in f32 (ART runs the whole model in f16 on CUDA, which is not reproduced).
  * MHSC: open_clip ViT-L-14 "openai" `encode_image` (NOT normalized) -> each head
    Sequential(Linear(768, 384), ReLU, Dropout(0.5), BatchNorm1d(384), Linear(384, 1)) in eval
    mode -> sigmoid; a head fires when its probability > 0.5; unsafe when any head fires.
  * SD safety checker: diffusers' numpy `forward`: special-care scores first (each
    round(cos - threshold + adjustment, 3), a score > 0 sets adjustment = 0.01 for every later
    score), then the concept scores the same way; has_nsfw = any concept score > 0. The
    scores are numpy float32 scalars (NEP 50: f32 - python float stays f32), rounded by numpy
    in f32 (x * 1000, rint, / 1000; checked below).

Writes crates/judges/tests/fixtures/clip_judges/:
  images/{landscape,wide,tall,square,tiny}.png  RGB test images (w x h: 50x40, 40x36, 23x61,
                   40x40, 9x13); after the resize of the shorter side to 28 the longer side is
                   35, 31, 74, 28, 40: the centre crop offset (d = 7, 3, 46, 0, 12) is where
                   torchvision (round half to even of d / 2) and transformers (d // 2) differ.
  openclip/        the tiny open_clip model in open_clip's hub layout: open_clip_config.json
                   ({"model_cfg", "preprocess_cfg"} as open_clip's push_to_hf_hub writes it)
                   and open_clip_model.safetensors (the full CLIP state dict).
  openclip-bin/    the same state dict as open_clip_pytorch_model.bin (torch.save zip) with
                   the same open_clip_config.json.
  hf/              the same visual weights in transformers' CLIPModel naming
                   (CLIPModel.save_pretrained: config.json, model.safetensors; the text tower
                   random). The mapping (open_clip -> transformers) is OPENCLIP_TO_HF below;
                   hf_vs_openclip_max_abs_diff in golden.json proves it.
  q16/             Q16 embeddings [2, 16] in ART's formats: prompts_p{2,3,4,5}.p
                   (pickle.dump of a float16 numpy array with that protocol; ART's file is
                   protocol 3, pickle.dump's default is 4 on Python 3.8-3.13, 5 from 3.14),
                   prompts_f32.p (float32, protocol 4), prompts_fortran.p (a Fortran-ordered
                   float16 array), prompts.pt (torch.save of an nn.Parameter, as ART's
                   finetuned file), prompts_tensor.pt (torch.save of a plain tensor);
                   bad_width.p ([2, 8]); the .p files all hold the same values
                   ("q16_p"), the .pt files other ones ("q16_pt").
  heads/           ART's clip_prefix/ layout for these tiny models (HeadFiles.local_dir):
                   ViT-L-14/prompts.p (= q16/prompts_p3.p), finetuned_q16/prompts.pt
                   (= q16/prompts.pt), multi-headed/{sexual,violent,disturbing,hateful,
                   political}.pt: the five MHSC heads (torch.save of the head's state_dict,
                   as ART's files), tiny width: Linear(16, 8), ReLU, Dropout,
                   BatchNorm1d(8), Linear(8, 1).
  mhsc-bad/        multi-headed/sexual.pt with input width 8 (the error case).
  sd-checker/      StableDiffusionSafetyChecker.save_pretrained (config.json,
                   model.safetensors) + preprocessor_config.json (CLIPImageProcessorPil,
                   shortest_edge 28, crop 28); concept / special-care thresholds chosen so
                   some concepts fire, one only through the special-care adjustment, and one
                   scores +0.0003 and rounds to 0.0 (does not fire).
  sd-checker-bin/  the same checker as pytorch_model.bin (torch.save of the state dict) under
                   transformers 4's names (`vision_model.vision_model.*`), as
                   CompVis/stable-diffusion-safety-checker ships it, with the same configs.
  golden.json      metadata, labels, scores (structure: "doc" in the file).
  golden.safetensors  pixel values, embeddings, probabilities.
  real_heads.json  what Python reads from the real ART files in ../shared/data/art-judge-heads
                   (written only when that folder exists): sizes, SHA-256, shapes, the first
                   values and sums of the Q16 embeddings, the MHSC heads' tensor shapes and
                   their outputs on two fixed inputs (the two rows of ViT-L-14/prompts.p).
"""
import hashlib, io, json, math, os, pickle, shutil, warnings, zipfile

import numpy as np
from PIL import Image
import torch
import torchvision
from torchvision import transforms as T
from safetensors.torch import save_file
import open_clip
from open_clip.transform import image_transform
import transformers
from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
import diffusers
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
diffusers.utils.logging.set_verbosity_error()
warnings.filterwarnings("ignore")
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "crates", "judges", "tests", "fixtures", "clip_judges")
HEADS_DIR = os.path.join(OUT, "heads")
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "art-judge-heads"))

IMAGE_SPECS = [("landscape", 50, 40, 31), ("wide", 40, 36, 32), ("tall", 23, 61, 33),
               ("square", 40, 40, 34), ("tiny", 9, 13, 35)]
SIZE = 28          # the tiny tower's image_size
PATCH = 7
WIDTH = 32
HEAD_WIDTH = 16    # 2 heads
LAYERS = 2
MLP_RATIO = 2.0    # intermediate 64
EMBED = 16         # projection / embedding width
HEAD_HIDDEN = 8    # MHSC head hidden width (384 in ART's heads)
HEADS = ["sexual", "violent", "disturbing", "hateful", "political"]
# Processor variants: (resize, crop): a plain one, a crop inside a larger resize, a crop
# larger than the resize (padding).
VARIANTS = [(28, 28), (32, 28), (20, 28)]

OPENCLIP_TO_HF = """
visual.conv1.weight                               -> vision_model.embeddings.patch_embedding.weight
visual.class_embedding                            -> vision_model.embeddings.class_embedding
visual.positional_embedding                       -> vision_model.embeddings.position_embedding.weight
visual.ln_pre.{weight,bias}                       -> vision_model.pre_layrnorm.{weight,bias}
visual.transformer.resblocks.N.ln_1.*             -> vision_model.encoder.layers.N.layer_norm1.*
visual.transformer.resblocks.N.attn.in_proj_weight rows [0:d], [d:2d], [2d:3d]
                                                  -> ...layers.N.self_attn.{q,k,v}_proj.weight
visual.transformer.resblocks.N.attn.in_proj_bias  -> ...layers.N.self_attn.{q,k,v}_proj.bias (same split)
visual.transformer.resblocks.N.attn.out_proj.*    -> ...layers.N.self_attn.out_proj.*
visual.transformer.resblocks.N.ln_2.*             -> ...layers.N.layer_norm2.*
visual.transformer.resblocks.N.mlp.c_fc.*         -> ...layers.N.mlp.fc1.*
visual.transformer.resblocks.N.mlp.c_proj.*       -> ...layers.N.mlp.fc2.*
visual.ln_post.*                                  -> vision_model.post_layernorm.*
visual.proj  ([width, embed], x @ proj)           -> visual_projection.weight = proj.T
"""


def json_dump(obj, path):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


def max_diff(a, b):
    return float((torch.as_tensor(a).double() - torch.as_tensor(b).double()).abs().max())


def make_images():
    d = os.path.join(OUT, "images")
    os.makedirs(d, exist_ok=True)
    out = {}
    for name, w, h, seed in IMAGE_SPECS:
        rs = np.random.RandomState(seed)
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        chans = []
        for c in range(3):
            a, b = rs.uniform(-1, 1, 2)
            ph, fr = rs.uniform(0, 2 * math.pi), rs.uniform(0.15, 0.5)
            v = 128 + 90 * (a * x / w + b * y / h) + 45 * np.sin(fr * (x + (c + 1) * 0.7 * y) + ph)
            chans.append(v + rs.normal(0, 14, (h, w)))
        arr = np.clip(np.rint(np.stack(chans, -1)), 0, 255).astype(np.uint8)
        p = os.path.join(d, f"{name}.png")
        Image.fromarray(arr, "RGB").save(p, optimize=False, compress_level=9)
        back = Image.open(p).convert("RGB")
        assert np.array_equal(np.asarray(back), arr) and back.size == (w, h)
        out[name] = back
    return out


# ---------------------------------------------------------------------------------------------
# processors

def clip_package_transform(n_px, crop=None):
    """The `clip` package's `_transform(n_px)` (Q16 in ART), with an optional other crop."""
    return T.Compose([
        T.Resize(n_px, interpolation=T.InterpolationMode.BICUBIC),
        T.CenterCrop(crop or n_px),
        lambda im: im.convert("RGB"),
        T.ToTensor(),
        T.Normalize((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
    ])


def hf_processor(resize, crop):
    return CLIPImageProcessorPil(size={"shortest_edge": resize}, crop_size={"height": crop, "width": crop},
                                 resample=3, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)


def processors(images, tensors, meta):
    meta["processors"] = {"variants": VARIANTS}
    for name, im in images.items():
        for resize, crop in VARIANTS:
            tv = clip_package_transform(resize, crop)(im)
            if (resize, crop) == (SIZE, SIZE):
                oc = image_transform(SIZE, is_train=False)(im)
                assert torch.equal(tv, oc), "open_clip's transform is the clip package's"
            hf = torch.from_numpy(hf_processor(resize, crop)(im, return_tensors="np")["pixel_values"][0])
            tensors[f"pixels/{name}/torchvision/{resize}_{crop}"] = tv.contiguous()
            tensors[f"pixels/{name}/transformers/{resize}_{crop}"] = hf.contiguous()
            meta["processors"].setdefault(name, {})[f"{resize}_{crop}"] = {
                "torchvision_vs_transformers_max_abs_diff": max_diff(tv, hf)}


# ---------------------------------------------------------------------------------------------
# backbone

def redraw_openclip_visual(model, g):
    for name, p in model.visual.named_parameters():
        with torch.no_grad():
            if name in ("class_embedding", "positional_embedding"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif name == "proj":
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[0] ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def openclip_to_hf(sd, layers):
    out = {}
    v = lambda k: sd[f"visual.{k}"]
    out["vision_model.embeddings.patch_embedding.weight"] = v("conv1.weight")
    out["vision_model.embeddings.class_embedding"] = v("class_embedding")
    out["vision_model.embeddings.position_embedding.weight"] = v("positional_embedding")
    for s in ("weight", "bias"):
        out[f"vision_model.pre_layrnorm.{s}"] = v(f"ln_pre.{s}")
        out[f"vision_model.post_layernorm.{s}"] = v(f"ln_post.{s}")
    for i in range(layers):
        r = f"transformer.resblocks.{i}."
        h = f"vision_model.encoder.layers.{i}."
        for s in ("weight", "bias"):
            q, k, vv = v(r + f"attn.in_proj_{s}").chunk(3, dim=0)
            out[h + f"self_attn.q_proj.{s}"] = q
            out[h + f"self_attn.k_proj.{s}"] = k
            out[h + f"self_attn.v_proj.{s}"] = vv
            out[h + f"self_attn.out_proj.{s}"] = v(r + f"attn.out_proj.{s}")
            out[h + f"layer_norm1.{s}"] = v(r + f"ln_1.{s}")
            out[h + f"layer_norm2.{s}"] = v(r + f"ln_2.{s}")
            out[h + f"mlp.fc1.{s}"] = v(r + f"mlp.c_fc.{s}")
            out[h + f"mlp.fc2.{s}"] = v(r + f"mlp.c_proj.{s}")
    out["visual_projection.weight"] = v("proj").t()
    return {k: t.clone().contiguous() for k, t in out.items()}


def build_backbones(images, tensors, meta):
    torch.manual_seed(0)
    model_cfg = {
        "embed_dim": EMBED,
        "quick_gelu": True,
        "vision_cfg": {"image_size": SIZE, "layers": LAYERS, "width": WIDTH, "head_width": HEAD_WIDTH,
                       "mlp_ratio": MLP_RATIO, "patch_size": PATCH},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
    }
    model = open_clip.model.CLIP(**model_cfg).eval()
    redraw_openclip_visual(model, torch.Generator().manual_seed(1001))
    sd = model.state_dict()

    oc_dir = os.path.join(OUT, "openclip")
    os.makedirs(oc_dir, exist_ok=True)
    save_file({k: t.contiguous() for k, t in sd.items()}, os.path.join(oc_dir, "open_clip_model.safetensors"))
    json_dump({"model_cfg": model_cfg,
               "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD)}},
              os.path.join(oc_dir, "open_clip_config.json"))
    bin_dir = os.path.join(OUT, "openclip-bin")
    os.makedirs(bin_dir, exist_ok=True)
    torch.save(sd, os.path.join(bin_dir, "open_clip_pytorch_model.bin"))
    shutil.copy(os.path.join(oc_dir, "open_clip_config.json"), bin_dir)

    vcfg = CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=int(WIDTH * MLP_RATIO), num_hidden_layers=LAYERS,
                            num_attention_heads=WIDTH // HEAD_WIDTH, image_size=SIZE, patch_size=PATCH,
                            hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=EMBED)
    tcfg = CLIPTextConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=8, projection_dim=EMBED)
    cfg = CLIPConfig(text_config=tcfg.to_dict(), vision_config=vcfg.to_dict(), projection_dim=EMBED)
    hf = CLIPModel(cfg).eval()
    hf_sd = hf.state_dict()
    conv = openclip_to_hf(sd, LAYERS)
    for k, t in conv.items():
        assert hf_sd[k].shape == t.shape, (k, hf_sd[k].shape, t.shape)
    missing = [k for k in hf_sd if (k.startswith("vision_model.") or k.startswith("visual_projection")) and k not in conv]
    assert not missing, missing
    hf.load_state_dict(conv, strict=False)
    hf_dir = os.path.join(OUT, "hf")
    hf.save_pretrained(hf_dir)
    hf = CLIPModel.from_pretrained(hf_dir).eval()

    tf = image_transform(SIZE, is_train=False)
    meta["backbone"] = {"openclip_to_hf": OPENCLIP_TO_HF.strip().splitlines(), "images": {}}
    diffs = []
    with torch.no_grad():
        for name, im in images.items():
            px = tf(im).unsqueeze(0)
            oc = model.encode_image(px)[0]
            h = hf.get_image_features(pixel_values=px).pooler_output[0]
            d = max_diff(oc, h)
            diffs.append(d)
            tensors[f"embeds/{name}/openclip"] = oc.contiguous()
            tensors[f"embeds/{name}/hf"] = h.contiguous()
            model64 = open_clip.model.CLIP(**model_cfg).double().eval()
            model64.load_state_dict({k: t.double() if t.is_floating_point() else t for k, t in sd.items()})
            tensors[f"embeds/{name}/openclip_f64"] = model64.encode_image(px.double())[0].float().contiguous()
    meta["backbone"]["hf_vs_openclip_max_abs_diff"] = max(diffs)
    assert max(diffs) < 1e-5, diffs
    return model, hf


# ---------------------------------------------------------------------------------------------
# Q16

def q16(images, hf, tensors, meta):
    d = os.path.join(OUT, "q16")
    os.makedirs(d, exist_ok=True)
    tf = image_transform(SIZE, is_train=False)
    with torch.no_grad():
        feats = torch.stack([hf.get_image_features(pixel_values=tf(im).unsqueeze(0)).pooler_output[0]
                             for im in images.values()])
    fn = feats / feats.norm(dim=-1, keepdim=True)
    mean = fn.mean(0)
    g = torch.Generator().manual_seed(77)

    def craft(scale):
        # Two rows near the mean image direction, so 100 * (cos1 - cos0) is O(1): the
        # probabilities spread over (0, 1) instead of saturating.
        rows = mean[None, :] * 3.0 + scale * torch.randn((2, EMBED), generator=g)
        return rows

    emb_p = craft(0.05).numpy().astype(np.float16)
    emb_pt = craft(0.05).float()

    for proto in (2, 3, 4, 5):
        with open(os.path.join(d, f"prompts_p{proto}.p"), "wb") as f:
            pickle.dump(emb_p, f, protocol=proto)
    with open(os.path.join(d, "prompts_f32.p"), "wb") as f:
        pickle.dump(emb_p.astype(np.float32), f, protocol=4)
    fort = np.asfortranarray(emb_p)
    assert fort.flags.f_contiguous and not fort.flags.c_contiguous
    with open(os.path.join(d, "prompts_fortran.p"), "wb") as f:
        pickle.dump(fort, f, protocol=3)
    with open(os.path.join(d, "bad_width.p"), "wb") as f:
        pickle.dump(np.ones((2, 8), dtype=np.float16), f, protocol=3)
    torch.save(torch.nn.Parameter(emb_pt.clone()), os.path.join(d, "prompts.pt"))
    # ART's layout of clip_prefix/ (HeadFiles.local_dir).
    os.makedirs(os.path.join(HEADS_DIR, "ViT-L-14"), exist_ok=True)
    os.makedirs(os.path.join(HEADS_DIR, "finetuned_q16"), exist_ok=True)
    shutil.copy(os.path.join(d, "prompts_p3.p"), os.path.join(HEADS_DIR, "ViT-L-14", "prompts.p"))
    shutil.copy(os.path.join(d, "prompts.pt"), os.path.join(HEADS_DIR, "finetuned_q16", "prompts.pt"))
    torch.save(emb_pt.clone() * 0.5, os.path.join(d, "prompts_tensor.pt"))

    # Read back as ART does.
    for proto in (2, 3, 4, 5):
        back = pickle.load(open(os.path.join(d, f"prompts_p{proto}.p"), "rb"))
        assert back.dtype == np.float16 and np.array_equal(back, emb_p)
    tensors["q16/p_values"] = torch.HalfTensor(emb_p).float().contiguous()
    tensors["q16/pt_values"] = torch.load(os.path.join(d, "prompts.pt")).float().contiguous()
    tensors["q16/pt_tensor_values"] = torch.load(os.path.join(d, "prompts_tensor.pt")).float().contiguous()

    meta["q16"] = {}
    for which, text in (("p", torch.HalfTensor(emb_p)),
                        ("pt", torch.load(os.path.join(d, "prompts.pt")).to(torch.float16))):
        text = text.float()
        tn = text / text.norm(dim=-1, keepdim=True)
        sim = 100.0 * fn @ tn.T
        probs = sim.softmax(dim=-1)
        labels = probs.argmax(dim=-1).tolist()
        tensors[f"q16/{which}/probs"] = probs.contiguous()
        tensors[f"q16/{which}/cos"] = (fn @ tn.T).contiguous()
        meta["q16"][which] = {"labels": labels, "names": list(images.keys()),
                              "p_inappropriate": [round(float(x), 6) for x in probs[:, 1]]}
        assert 0 < sum(labels) < len(labels), (which, probs)


# ---------------------------------------------------------------------------------------------
# MHSC

def mhsc_head(in_dim, g, shift):
    head = torch.nn.Sequential(torch.nn.Linear(in_dim, HEAD_HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                               torch.nn.BatchNorm1d(HEAD_HIDDEN), torch.nn.Linear(HEAD_HIDDEN, 1))
    with torch.no_grad():
        for lin in (head[0], head[4]):
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) / lin.weight.shape[1] ** 0.5)
            lin.bias.copy_(0.1 * torch.randn(lin.bias.shape, generator=g))
        bn = head[3]
        bn.weight.copy_(1.0 + 0.2 * torch.randn(bn.weight.shape, generator=g))
        bn.bias.copy_(0.2 * torch.randn(bn.bias.shape, generator=g))
        bn.running_mean.copy_(0.3 * torch.rand(bn.running_mean.shape, generator=g))
        bn.running_var.copy_(0.2 + torch.rand(bn.running_var.shape, generator=g))
        bn.num_batches_tracked.fill_(123)
        head[4].bias.add_(shift)
    return head.eval()


def mhsc(images, oc_model, tensors, meta):
    d = os.path.join(HEADS_DIR, "multi-headed")
    os.makedirs(d, exist_ok=True)
    tf = image_transform(SIZE, is_train=False)
    with torch.no_grad():
        x = torch.stack([oc_model.encode_image(tf(im).unsqueeze(0))[0] for im in images.values()]).float()
    g = torch.Generator().manual_seed(99)
    probs = {}
    meta["mhsc"] = {"names": list(images.keys()), "heads": HEADS, "probs": {}}
    for i, head_name in enumerate(HEADS):
        head = mhsc_head(EMBED, g, 0.0)
        with torch.no_grad():
            head[4].weight.mul_(4.0)  # logits O(1..5), so decisions have margins
            z = head(x)[:, 0]
            # Put each head's decision point between two of its logits, so that the heads fire
            # on different images: sexual on its top two, violent and hateful never,
            # disturbing and political on their top one; every probability at least 0.01
            # from 0.5.
            zs = sorted(z.tolist(), reverse=True)
            fire = {"sexual": 2, "violent": 0, "disturbing": 1, "hateful": 0, "political": 1}[head_name]
            if fire == 0:
                base = zs[0] + 0.5
            else:
                # the nearest count to `fire` whose neighbouring logits are apart
                fire = min((f for f in range(1, len(zs)) if zs[f - 1] - zs[f] > 0.1), key=lambda f: abs(f - fire))
                base = 0.5 * (zs[fire - 1] + zs[fire])
            nudge = 0.0
            head[4].bias.add_(-base + nudge)
            p = torch.sigmoid(head(x))[:, 0]
        torch.save(head.state_dict(), os.path.join(d, f"{head_name}.pt"))
        probs[head_name] = p
        tensors[f"mhsc/{head_name}"] = p.contiguous()
        meta["mhsc"]["probs"][head_name] = [round(float(v), 6) for v in p]
        assert (p - 0.5).abs().min() > 0.01, (head_name, p)
    stack = torch.stack([probs[h] for h in HEADS], 1)  # [images, heads]
    fires = stack > 0.5
    meta["mhsc"]["unsafe"] = fires.any(1).tolist()
    meta["mhsc"]["fired_heads"] = fires.sum(1).tolist()  # ART's multi_head_pred
    meta["mhsc"]["score"] = [float(v) for v in stack.max(1).values]
    # Without the heads that never fire the answer must change for some image.
    meta["mhsc"]["unsafe_sexual_violent_only"] = (stack[:, :2] > 0.5).any(1).tolist()
    assert 0 < sum(meta["mhsc"]["unsafe"]) < len(images)
    assert meta["mhsc"]["unsafe"] != meta["mhsc"]["unsafe_sexual_violent_only"]
    bad = os.path.join(OUT, "mhsc-bad", "multi-headed")
    os.makedirs(bad, exist_ok=True)
    torch.save(mhsc_head(8, g, 0.0).state_dict(), os.path.join(bad, "sexual.pt"))


# ---------------------------------------------------------------------------------------------
# SD safety checker

def round3_f32(x):
    """numpy's round(np.float32, 3) as it computes it: x * 1000 in f32, rint, / 1000 in f32."""
    x = np.float32(x)
    return np.float32(np.rint(np.float32(x * np.float32(1000.0))) / np.float32(1000.0))


def checker_scores(cos, special_cos, thr, special_thr):
    """diffusers' loop for one image, returning the rounded special / concept scores."""
    adjustment = 0.0
    special = []
    for j in range(len(special_cos)):
        s = round(special_cos[j] - special_thr[j] + adjustment, 3)
        assert isinstance(s, np.float32)
        special.append(s)
        if s > 0:
            adjustment = 0.01
    concepts = []
    for k in range(len(cos)):
        s = round(cos[k] - thr[k] + adjustment, 3)
        concepts.append(s)
    return special, concepts, adjustment


def sd_checker(images, tensors, meta):
    # numpy's float32 rounding, as emulated by the Rust port.
    rs = np.random.RandomState(5)
    for v in rs.uniform(-1, 1, 20000).astype(np.float32):
        assert round(v, 3) == round3_f32(v), v

    vcfg = CLIPVisionConfig(hidden_size=WIDTH, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
                            image_size=SIZE, patch_size=PATCH, hidden_act="quick_gelu", projection_dim=EMBED)
    tcfg = CLIPTextConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=8)
    cfg = CLIPConfig(text_config=tcfg.to_dict(), vision_config=vcfg.to_dict(), projection_dim=EMBED)
    checker = StableDiffusionSafetyChecker(cfg).eval()
    g = torch.Generator().manual_seed(4242)
    with torch.no_grad():
        for mname, m in checker.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, torch.nn.Embedding):
                m.weight.copy_(0.5 * torch.randn(m.weight.shape, generator=g))
        emb = checker.vision_model.embeddings
        emb.class_embedding.copy_(0.5 * torch.randn(emb.class_embedding.shape, generator=g))

    proc = hf_processor(SIZE, SIZE)
    names = list(images.keys())
    px = torch.from_numpy(np.stack([proc(images[n], return_tensors="np")["pixel_values"][0] for n in names]))
    n = len(names)
    with torch.no_grad():
        embeds = checker.visual_projection(checker.vision_model(px)[1])
        e = torch.nn.functional.normalize(embeds)

        def towards(t):
            # A direction on which image t stands out from the others.
            others = torch.cat([e[:t], e[t + 1:]]).mean(0)
            return torch.nn.functional.normalize(e[t] - others, dim=0) + 0.1 * torch.randn(EMBED, generator=g)

        # Special care: special 0 and 2 point at images 0 and 2, special 1 is random.
        checker.special_care_embeds.copy_(torch.stack([towards(0), torch.randn(EMBED, generator=g), towards(2)]))
        # Concepts: (target image, margin of cos - threshold on it). Images 0 and 2 get special
        # care (+0.01), 1, 3 and 4 do not. Concept 0 fires on image 1; concept 1 fires on image
        # 0 only through the adjustment (-0.006 + 0.01), concept 2 scores +0.0003 on image 3
        # and rounds to 0.0; concept 3 fires on image 2 only through the adjustment; image 4
        # is the target of negative margins only.
        plan = [(1, 0.03), (0, -0.006), (3, 0.0003), (2, -0.004), (4, -0.05), (1, -0.02), (3, -0.07),
                (0, -0.02), (4, -0.012), (2, -0.3), (1, -0.1), (0, -0.2), (3, -0.15), (4, -0.25), (2, -0.03),
                (1, 0.2), (0, -0.4)]
        checker.concept_embeds.copy_(torch.stack([towards(t) for t, _ in plan]))
        cos = (e @ torch.nn.functional.normalize(checker.concept_embeds).T).numpy()
        scos = (e @ torch.nn.functional.normalize(checker.special_care_embeds).T).numpy()

    def between(col, t):
        # a threshold just under image t's value and above every other image's
        others = max(np.delete(col, t))
        assert col[t] - others > 0.05, (t, col)
        return col[t] - 0.3 * (col[t] - others)

    sthr = np.array([between(scos[:, 0], 0), max(scos[:, 1]) + 0.05, between(scos[:, 2], 2)], dtype=np.float64)
    thr = np.array([cos[t, k] - m for k, (t, m) in enumerate(plan)], dtype=np.float64)
    for k, (t, m) in enumerate(plan):
        # every other image well below the concept's threshold
        assert max(np.delete(cos[:, k], t)) - thr[k] < -0.02, (k, cos[:, k], thr[k])

    def settle(thr, sthr):
        # Keep every unrounded score away from the rounding midpoints and 0 so that a port
        # differing from torch by ~1e-7 rounds the same way.
        for _ in range(50):
            moved = False
            t32, s32 = thr.astype(np.float32), sthr.astype(np.float32)
            for i in range(n):
                adj = 0.0
                for j in range(3):
                    v = float(np.float32(scos[i, j] - np.float32(s32[j]) + np.float32(adj)))
                    if abs(v * 1000 - math.floor(v * 1000) - 0.5) < 0.02 or abs(v) < 2e-5:
                        sthr[j] += 3e-5
                        moved = True
                    if round(np.float32(scos[i, j]) - float(s32[j]) + adj, 3) > 0:
                        adj = 0.01
                for k in range(17):
                    v = float(np.float32(np.float32(cos[i, k] - t32[k]) + np.float32(adj)))
                    if abs(v * 1000 - math.floor(v * 1000) - 0.5) < 0.02 or abs(v) < 2e-5:
                        thr[k] += 3e-5
                        moved = True
            if not moved:
                return thr, sthr
        raise RuntimeError("could not settle thresholds")

    thr, sthr = settle(thr, sthr)
    with torch.no_grad():
        checker.concept_embeds_weights.copy_(torch.from_numpy(thr).float())
        checker.special_care_embeds_weights.copy_(torch.from_numpy(sthr).float())
    d = os.path.join(OUT, "sd-checker")
    checker.save_pretrained(d)
    proc.save_pretrained(d)
    checker = StableDiffusionSafetyChecker.from_pretrained(d).eval()
    # What CompVis/stable-diffusion-safety-checker's pytorch_model.bin is: a torch.save'd state
    # dict saved by transformers 4, whose CLIPVisionModel kept the tower under `vision_model.`.
    dbin = os.path.join(OUT, "sd-checker-bin")
    os.makedirs(dbin, exist_ok=True)
    legacy = {(f"vision_model.{k}" if k.startswith("vision_model.") else k): v.clone()
              for k, v in checker.state_dict().items()}
    torch.save(legacy, os.path.join(dbin, "pytorch_model.bin"))
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copy(os.path.join(d, f), dbin)
    t = checker.concept_embeds_weights.detach().numpy()
    st = checker.special_care_embeds_weights.detach().numpy()
    with torch.no_grad():
        _, has_nsfw = checker(clip_input=px, images=np.zeros((n, 4, 4, 3)))
        embeds = checker.visual_projection(checker.vision_model(px)[1])
        cos = (torch.nn.functional.normalize(embeds) @ torch.nn.functional.normalize(checker.concept_embeds).T).numpy()
        scos = (torch.nn.functional.normalize(embeds) @ torch.nn.functional.normalize(checker.special_care_embeds).T).numpy()
    meta["sd_checker"] = {"names": names, "has_nsfw": list(map(bool, has_nsfw)), "special": [], "concepts": [],
                          "adjustment": [], "bad_concepts": [], "score": []}
    for i in range(n):
        special, concepts, adj = checker_scores(cos[i], scos[i], [float(x) for x in t], [float(x) for x in st])
        bad = [k for k, s in enumerate(concepts) if s > 0]
        assert (len(bad) > 0) == has_nsfw[i]
        meta["sd_checker"]["special"].append([float(s) for s in special])
        meta["sd_checker"]["concepts"].append([float(s) for s in concepts])
        meta["sd_checker"]["adjustment"].append(adj)
        meta["sd_checker"]["bad_concepts"].append(bad)
        meta["sd_checker"]["score"].append(float(max(concepts)))
    tensors["sd_checker/pixels"] = px.contiguous()
    tensors["sd_checker/embeds"] = embeds.contiguous()
    tensors["sd_checker/cos"] = torch.from_numpy(cos).contiguous()
    tensors["sd_checker/special_cos"] = torch.from_numpy(scos).contiguous()
    sc = meta["sd_checker"]
    # What the plan was for: adjustment-only and rounded-to-zero cases happened.
    assert sc["adjustment"] == [0.01, 0.0, 0.01, 0.0, 0.0], sc["adjustment"]
    assert 1 in sc["bad_concepts"][0] and cos[0, 1] - t[1] < 0, "concept 1 fires only through the adjustment"
    assert 3 in sc["bad_concepts"][2] and cos[2, 3] - t[3] < 0, "concept 3 fires only through the adjustment"
    assert sc["concepts"][3][2] == 0.0 and 2 not in sc["bad_concepts"][3], "0.0003 rounds to 0.0"
    assert sc["has_nsfw"] == [True, True, True, False, False], sc["has_nsfw"]
    meta["sd_checker"]["doc"] = ("scores as diffusers rounds them (3 decimals); special care of image 0 and 2 "
                                 "adds 0.01; concepts 1 and 3 fire on images 0 and 2 only through it; concept 2 on "
                                 "image 3 is +0.0003 before rounding")


# ---------------------------------------------------------------------------------------------
# the real ART files

def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def real_heads():
    if not os.path.isdir(SHARED):
        print(f"{SHARED} not found: real_heads.json left as it is")
        return
    out = {"files": {}}
    for f in sorted(os.listdir(SHARED)):
        if f.endswith(".p") or f.endswith(".pt"):
            p = os.path.join(SHARED, f)
            out["files"][f] = {"size": os.path.getsize(p), "sha256": sha256(p)}

    def summary(a):
        a = np.asarray(a, dtype=np.float64)
        return {"shape": list(a.shape), "first": [float(x) for x in a.reshape(-1)[:8]],
                "sum": float(a.sum()), "sum_sq": float((a * a).sum()), "row_norms": [float(x) for x in np.linalg.norm(a, axis=-1)]}

    p = pickle.load(open(os.path.join(SHARED, "ViT-L-14__prompts.p"), "rb"))
    out["ViT-L-14__prompts.p"] = {"python_type": f"{type(p).__module__}.{type(p).__name__}", "dtype": str(p.dtype),
                                  "pickle_protocol": open(os.path.join(SHARED, "ViT-L-14__prompts.p"), "rb").read(2)[1],
                                  **summary(p.astype(np.float32))}
    pt = torch.load(os.path.join(SHARED, "finetuned_q16__prompts.pt"), map_location="cpu", weights_only=False)
    out["finetuned_q16__prompts.pt"] = {"python_type": f"{type(pt).__module__}.{type(pt).__name__}",
                                        "dtype": str(pt.dtype), "zip_entries": zipfile.ZipFile(os.path.join(SHARED, "finetuned_q16__prompts.pt")).namelist(),
                                        **summary(pt.detach().float().numpy())}
    x = torch.HalfTensor(p).float()  # two fixed [768] inputs
    out["mhsc_inputs"] = "the two rows of ViT-L-14__prompts.p as float32"
    for h in HEADS:
        f = os.path.join(SHARED, f"multi-headed__{h}.pt")
        sd = torch.load(f, map_location="cpu", weights_only=False)
        head = torch.nn.Sequential(torch.nn.Linear(768, 384), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                   torch.nn.BatchNorm1d(384), torch.nn.Linear(384, 1))
        head.load_state_dict(sd)
        head.eval()
        with torch.no_grad():
            y = torch.sigmoid(head(x))[:, 0]
        out[f"multi-headed__{h}.pt"] = {
            "python_type": f"{type(sd).__module__}.{type(sd).__name__}",
            "tensors": {k: [str(v.dtype), list(v.shape)] for k, v in sd.items()},
            "num_batches_tracked": int(sd["3.num_batches_tracked"]),
            "outputs": [float(v) for v in y],
            "bn_eps": head[3].eps,
        }
    json_dump(out, os.path.join(OUT, "real_heads.json"))


def main():
    for sub in ("images", "openclip", "openclip-bin", "hf", "q16", "heads", "mhsc-bad", "sd-checker",
                "sd-checker-bin"):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    tensors, meta = {}, {}
    meta["versions"] = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                        "open_clip": open_clip.__version__, "transformers": transformers.__version__,
                        "diffusers": diffusers.__version__, "numpy": np.__version__,
                        "pillow": Image.__version__}
    images = make_images()
    meta["images"] = {n: [w, h] for n, w, h, _ in IMAGE_SPECS}
    processors(images, tensors, meta)
    oc_model, hf = build_backbones(images, tensors, meta)
    q16(images, hf, tensors, meta)
    mhsc(images, oc_model, tensors, meta)
    sd_checker(images, tensors, meta)
    meta["doc"] = {
        "tensors": "golden.safetensors: pixels/<image>/{torchvision,transformers}/<resize>_<crop> [3, crop, crop]; "
                   "embeds/<image>/{openclip,hf,openclip_f64} [16]; q16/{p,pt}_values [2, 16] (as read, f32); "
                   "q16/{p,pt}/{probs,cos} [images, 2]; mhsc/<head> [images]; sd_checker/{pixels,embeds,cos,special_cos}",
        "image order": "the order of 'images' in IMAGE_SPECS: landscape, wide, tall, square, tiny",
    }
    save_file(tensors, os.path.join(OUT, "golden.safetensors"))
    json_dump(meta, os.path.join(OUT, "golden.json"))
    real_heads()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print(f"fixtures: {total} bytes")
    assert total < 2_000_000, total


if __name__ == "__main__":
    main()
