#!/usr/bin/env python3
"""Golden files for art-judges' ViT image classifier (crates/judges/src/vit.rs): a tiny
random-weight transformers ViTForImageClassification in the layout of
Falconsai/nsfw_image_detection (labels normal/nsfw, ViTImageProcessor: resize to the model's
size with BILINEAR, rescale 1/255, normalize mean = std = 0.5), made with the PyTorch reference
(torch + transformers + pillow). No network and no downloaded weights. Not run in CI; rerun
when the reference or the fixtures change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers safetensors numpy pillow
    /tmp/tv/bin/python tools/golden/vit.py

Deterministic (fixed seeds, CPU, one thread, f32, attn_implementation="eager"); rerunning with
the same library versions rewrites byte-identical files.

Writes crates/judges/tests/fixtures/vit/:
  model/                ViTForImageClassification.save_pretrained (config.json: image_size 32,
                        patch_size 8, hidden 16, 2 layers, 4 heads, labels normal/nsfw;
                        model.safetensors) and preprocessor_config.json
                        (ViTImageProcessorPil.save_pretrained: 32x32, resample 2 = BILINEAR).
  model-bin/            the same model as pytorch_model.bin (torch.save of the saved tensors, the
                        .bin-only layout) with the same config.json and preprocessor_config.json.
  processors/bicubic.json  another preprocessor_config.json for the same model: resample 3
                        (BICUBIC) and ImageNet's mean/std, to show the settings are read.
  processors/noresize.json  do_resize false: only 32x32 images can be judged.
  images/*.png          RGB test images (w x h): wide 50x30, tall 23x61, tiny 5x7, big 97x80,
                        exact 32x32 (the model's size: no resize), drawn by numpy from seeds.
  golden.json           per processor (bilinear = the model's own, bicubic) and image: its
                        size, logits and probabilities (softmax); how far float64
                        moves the probabilities (float64_max_abs_diff) and how far the batch of
                        all images moves them from each alone (batch_vs_alone_max_abs_diff).
  golden.safetensors    pixel_values.<processor>.<image>: [3, 32, 32] f32, ViTImageProcessorPil
                        on the PNG as PIL reads it.
"""
import json, os, shutil
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from PIL import Image
import transformers
from transformers import ViTConfig, ViTForImageClassification
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "crates", "judges", "tests", "fixtures", "vit")
MODEL = os.path.join(OUT, "model")
MODEL_BIN = os.path.join(OUT, "model-bin")
IMAGES = os.path.join(OUT, "images")
PROCESSORS = os.path.join(OUT, "processors")

# (name, width, height, seed)
IMAGE_SPECS = [("wide", 50, 30, 21), ("tall", 23, 61, 22), ("tiny", 5, 7, 23), ("big", 97, 80, 24),
               ("exact", 32, 32, 25)]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def draw(w, h, seed):
    """Smooth gradients + sines + noise, so resampling has structure to get wrong."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([
        255 * x / max(w - 1, 1),
        127.5 + 127.5 * np.sin(0.7 * x + 0.3 * y + seed),
        255 * y / max(h - 1, 1),
    ], axis=-1) + rng.normal(0, 25, (h, w, 3))
    return Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB")


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


def build():
    shutil.rmtree(OUT, ignore_errors=True)
    for d in [MODEL, MODEL_BIN, IMAGES, PROCESSORS]:
        os.makedirs(d)
    for name, w, h, seed in IMAGE_SPECS:
        draw(w, h, seed).save(os.path.join(IMAGES, f"{name}.png"))
    cfg = ViTConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                    image_size=32, patch_size=8, num_channels=3, hidden_act="gelu",
                    id2label={0: "normal", 1: "nsfw"}, label2id={"normal": 0, "nsfw": 1},
                    architectures=["ViTForImageClassification"])
    torch.manual_seed(5)
    model = randomize(ViTForImageClassification(cfg), 505)
    model.save_pretrained(MODEL)
    # The tensors under the names transformers saves (its in-memory ViT names differ since 5.x).
    torch.save(load_file(os.path.join(MODEL, "model.safetensors")), os.path.join(MODEL_BIN, "pytorch_model.bin"))
    ViTImageProcessorPil(size={"height": 32, "width": 32}, resample=2, do_resize=True, do_rescale=True,
                         rescale_factor=1 / 255, do_normalize=True, image_mean=[0.5, 0.5, 0.5],
                         image_std=[0.5, 0.5, 0.5]).save_pretrained(MODEL)
    with open(os.path.join(MODEL, "preprocessor_config.json")) as f:
        base = json.load(f)
    for f in ["config.json", "preprocessor_config.json"]:
        shutil.copy(os.path.join(MODEL, f), os.path.join(MODEL_BIN, f))
    bicubic = dict(base, resample=3, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    write_json(os.path.join(PROCESSORS, "bicubic.json"), bicubic)
    write_json(os.path.join(PROCESSORS, "noresize.json"), dict(base, do_resize=False))


def golden():
    model = ViTForImageClassification.from_pretrained(MODEL, attn_implementation="eager").eval()
    model64 = ViTForImageClassification.from_pretrained(MODEL, attn_implementation="eager",
                                                        dtype=torch.float64).eval()
    images = {name: Image.open(os.path.join(IMAGES, f"{name}.png")).convert("RGB")
              for name, *_ in IMAGE_SPECS}
    out = {"doc": __doc__, "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
           "processors": {}}
    tensors = {}
    tmp = os.path.join(OUT, "_proc")
    for proc_name, src in [("bilinear", os.path.join(MODEL, "preprocessor_config.json")),
                           ("bicubic", os.path.join(PROCESSORS, "bicubic.json"))]:
        os.makedirs(tmp, exist_ok=True)
        shutil.copy(src, os.path.join(tmp, "preprocessor_config.json"))
        proc = ViTImageProcessorPil.from_pretrained(tmp)
        shutil.rmtree(tmp)
        rows, f64 = {}, 0.0
        for name, img in images.items():
            pv = proc(images=img, return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                logits = model(pixel_values=pv).logits[0]
                l64 = model64(pixel_values=pv.double()).logits[0]
            p, p64 = torch.softmax(logits, -1), torch.softmax(l64, -1)
            f64 = max(f64, (p.double() - p64).abs().max().item())
            tensors[f"pixel_values.{proc_name}.{name}"] = pv[0].contiguous()
            rows[name] = {"size": list(img.size),
                          "logits": [float(x) for x in logits], "probabilities": [float(x) for x in p]}
        pv = proc(images=list(images.values()), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            pb = torch.softmax(model(pixel_values=pv).logits, -1)
        batch = max(abs(float(pb[i, j]) - rows[n]["probabilities"][j])
                    for i, n in enumerate(images) for j in range(pb.shape[1]))
        out["processors"][proc_name] = {"images": rows, "float64_max_abs_diff": f64,
                                        "batch_vs_alone_max_abs_diff": batch}
        print(proc_name, "f64", f64, "batch", batch,
              {n: [round(x, 4) for x in r["probabilities"]] for n, r in rows.items()})
    write_json(os.path.join(OUT, "golden.json"), out)
    save_file(tensors, os.path.join(OUT, "golden.safetensors"))


if __name__ == "__main__":
    build()
    golden()
    print("wrote", OUT)
