#!/usr/bin/env python3
"""The reference side of a LLaVA-NeXT benchmark: one transformers guide call on PyTorch CPU.

transformers' LlavaNextForConditionalGeneration (CLIP vision tower + MLP projector + Mistral,
"anyres" tiling) on PyTorch CPU, timed against art's candle LLaVA-NeXT port: the seconds of
one *guide call* (the image processor on B images, the prompt ids, and a beam-sample
model.generate) per batch size.

Two subcommands:

  make DIR
      Writes a random-weight LlavaNextForConditionalGeneration in a REDUCED LLaVA-1.6-Mistral
      shape (LlavaNextForConditionalGeneration.save_pretrained(DIR, safe_serialization=True),
      f32; config.json, generation_config.json, model.safetensors):
        vision tower  CLIPVisionConfig: the real 336 px tiles and 14 px patches (576 patches +
                      CLS), but narrow: hidden 256, intermediate 1024, 4 layers, 4 heads,
                      quick_gelu (VISION_CONFIG)
        projector     Linear(256, 512) + gelu + Linear(512, 512) (projector_hidden_act gelu)
        language      MistralConfig: hidden 512, intermediate 1408, 4 layers, 8 heads, 4 KV
                      heads, vocab 32064 (the real model's), max positions 8192, rope_theta
                      1e6, no sliding window, untied lm_head (TEXT_CONFIG)
        LlavaNextConfig  image_grid_pinpoints GRID (LLaVA-1.6's five), vision_feature_layer
                      -2, vision_feature_select_strategy "default" (CLS dropped),
                      image_token_index 32000, untied (LLAVA_CONFIG)
      Built with torch.manual_seed(0) right before the model (transformers' default init: the
      weights are noise, which is all a speed benchmark needs); image_newline is then redrawn
      as 0.02*N(0, 1) from torch.Generator().manual_seed(1), so it is a plain random vector
      whatever the init does with loose parameters. Also writes
        preprocessor_config.json  LlavaNextImageProcessorPil(size shortest_edge 336,
                      crop_size 336x336, image_grid_pinpoints GRID).save_pretrained: the PIL
                      backend, OpenAI CLIP mean/std, bicubic, do_pad.
        image.png     a 512x512 RGB image (the size Stable Diffusion renders): smooth
                      gradients + sines + noise from numpy RandomState(IMAGE_SEED); LLaVA-NeXT
                      picks 672x672 as its best resolution and cuts it into 1 + 4 tiles of 336.
        bench_inputs.json  {"image": "image.png", "pieces": [[60 ids], "image", [90 ids]],
                      "image_tokens": N}: a fixed token-id list standing for the guide
                      conversation (no tokenizer is written): the first piece is BOS 1 then 59
                      ids, the last piece 90 ids (no BOS), all drawn by
                      numpy.random.default_rng(PIECES_SEED) in [3, 32000) (never pad 0, BOS 1,
                      EOS 2 or the image id 32000). "image_tokens" is the N of the bench below
                      for image.png, written as a check for the other side; bench recomputes it.
      N (the rows pack_image_features gives the image, the <image> ids standing for it) is
      computed two ways, transformers' LlavaNextProcessor._get_number_of_features (minus the
      CLS, as its replace_image_token does) and the length of the model's own
      get_image_features(...).pooler_output for image.png, and make stops if they differ.
      Prints one JSON line (dir, parameters per part, image_tokens, prompt_len, bytes per file,
      total_bytes, peak_rss_mib, seconds).

  bench DIR [--batch 1 8] [--new-tokens 16] [--repeats 3] [--threads N] [--attn sdpa]
      For each batch size B, in a fresh subprocess of this script (so every batch size gets
      its own peak-RSS high-water mark): torch.set_num_threads(threads), loads DIR with
      LlavaNextForConditionalGeneration.from_pretrained(DIR, dtype=float32,
      attn_implementation="sdpa" (the default a user gets; --attn eager to compare)) and
      LlavaNextImageProcessorPil.from_pretrained(DIR), reads image.png once (PIL, RGB, the
      decoded image held in memory, as a guide gets it from the renderer), and under
      torch.inference_mode() times one guide call:
        1. processor   image_processor([image]*B, return_tensors="pt"): pixel_values
                       (B, 5, 3, 336, 336), image_sizes (B, 2) = (512, 512) each;
        2. prompt ids  per row pieces[0] + [32000]*N + pieces[2], N from
                       LlavaNextProcessor._get_number_of_features for that row's image_sizes
                       (minus 1 for the "default" strategy's dropped CLS), left-padded with
                       pad id 0 and an attention mask (every row is the same length here:
                       the same image B times, so there is no padding in practice);
        3. generate    model.generate(input_ids, attention_mask, pixel_values, image_sizes,
                       do_sample=True, num_beams=5, temperature=3.0, top_k=50, top_p=1.0,
                       min_new_tokens=T, max_new_tokens=T, pad_token_id=0, eos_token_id=2)
                       (the guide's beam-sample settings), torch.manual_seed(call index)
                       right before it.
      EOS: eos_token_id stays 2 (the config's); min_new_tokens = max_new_tokens = T makes
      generate's MinLengthLogitsProcessor set the EOS logit to -inf on every one of the T
      steps, so no beam can end early and every call returns exactly (B, prompt_len + T)
      ids (checked, along with no EOS among the new ids).
      One untimed warm-up call (T=2), then `repeats` timed calls (T = --new-tokens). Then,
      untimed by the guide-call clock, one direct model(...) forward of the batch's inputs
      (batch B, not B*num_beams; logits_to_keep=1 as generate's prefill) and one
      model.model.get_image_features(pixel_values, image_sizes) (vision tower + projector +
      pack, B images), each timed once.
      Forward hooks count what one timed generate runs: vision-tower tiles (transformers 5
      encodes the images once, B*5 tiles, before it expands the batch to the beams), language
      model forwards (1 prefill + T-1 decode steps) and the rows of the language model's
      prefill (B*num_beams: the prompt is expanded to the beams before the prefill).
      Prints one JSON line per batch size from the subprocess; bench (the parent) prints one
      JSON line at the end: {"impl", "torch", "transformers", "model" (the vision / text
      config fields above as read back from DIR/config.json, and image_grid_pinpoints),
      "results": [the per-batch objects, in --batch order]}. Per batch:
        impl ("transformers"), torch, transformers, attn_implementation (language model's),
        vision_attn_implementation, dtype, threads, cpu_count, omp_wait_policy,
        loadavg_1m ([before loading, at the end]),
        batch, new_tokens, repeats, num_beams, generate_kwargs (as passed, minus tensors),
        eos_handling (how EOS is kept out, in words),
        image_size ([h, w] of image.png), pixel_values_shape, image_tokens (N per row),
        prompt_len (tokens per row, N included), prompt_pieces ([60, N, 90]),
        vision_tiles_per_call, lm_forwards_per_call, lm_prefill_rows,
        warmup_s, times_s (per guide call), median_s, min_s,
        processor_times_s, processor_s_median (step 1 of each timed call),
        generate_times_s, generate_s_median (step 3 of each timed call),
        prefill_s (the direct forward at batch B), vision_s (get_image_features at B images),
        per_image_s_median (median_s / B),
        rss_import_mb (peak RSS after importing torch + transformers),
        rss_after_load_mb (peak RSS right after from_pretrained),
        rss_after_warmup_mb (peak RSS after the warm-up call),
        peak_rss_mb (peak RSS at the end of the subprocess: imports, loading, all calls),
        rss_end ({rss_mb, anon_mb, file_mb}: current RSS at the end).
      Peak RSS is VmHWM of /proc/self/status in MiB (bench_common.peak_rss_mb). As in
      llm_reference.py, from_pretrained leaves the f32 weights as mmaps of model.safetensors,
      so they enter RSS (file-backed) when the warm-up touches them; with the reduced shape
      they are small (~0.2 GiB) and the peak is mostly imports, activations and the beams'
      KV cache.
      Threads: --threads, else the env var ART_BENCH_THREADS, else os.cpu_count().
      The noise warning of llm_reference.py applies: with as many threads as cores, any other
      busy process makes PyTorch's OpenMP threads spin at barriers; OMP_WAIT_POLICY (if set in
      the environment) is recorded, not set.

How it is used:

  python tools/bench/llava_reference.py make /tmp/llava-bench
  python tools/bench/llava_reference.py bench /tmp/llava-bench --batch 1 8 --new-tokens 16 --repeats 3

What the other side must mirror: the ids of bench_inputs.json with N = 2928 <image> ids for
the 512x512 image (576 base-tile rows, then the 48x48 unpadded grid with one image_newline
after each of its 48 rows: 576 + 48*49), so prompt_len = 60 + 2928 + 90 = 3078 per row; the
beam-sample settings above with exactly T new tokens per row (no early EOS); the processor
step on B copies of the decoded image. Progress and warnings go to stderr only; stdout
carries only the JSON lines.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

from bench_common import dir_bytes, log, peak_rss_mb, rss_now, run_json_line, threads as bench_threads

PAD, BOS, EOS = 0, 1, 2
IMAGE_TOKEN = 32000
TILE, PATCH = 336, 14
GRID = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
IMAGE_SIDE = 512  # Stable Diffusion's render size
IMAGE_SEED = 0
PIECES_SEED = 0
PIECE_LENS = (60, 90)  # ids before the image (BOS included), ids after it
NUM_BEAMS = 5
GEN_KWARGS = dict(do_sample=True, num_beams=NUM_BEAMS, temperature=3.0, top_k=50, top_p=1.0,
                  pad_token_id=PAD, eos_token_id=EOS)
WARMUP_TOKENS = 2

VISION_CONFIG = dict(
    hidden_size=256,
    intermediate_size=1024,
    num_hidden_layers=4,
    num_attention_heads=4,
    image_size=TILE,
    patch_size=PATCH,
    hidden_act="quick_gelu",
)
TEXT_CONFIG = dict(
    hidden_size=512,
    intermediate_size=1408,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=4,
    vocab_size=32064,
    max_position_embeddings=8192,
    rope_theta=1e6,
    sliding_window=None,
    tie_word_embeddings=False,
    bos_token_id=BOS,
    eos_token_id=EOS,
)
LLAVA_CONFIG = dict(
    image_grid_pinpoints=GRID,
    vision_feature_layer=-2,
    vision_feature_select_strategy="default",
    projector_hidden_act="gelu",
    image_token_index=IMAGE_TOKEN,
    tie_word_embeddings=False,
)


def threads(args):
    """--threads, else $ART_BENCH_THREADS, else os.cpu_count()."""
    return bench_threads(args, os.cpu_count() or 1)


def make_processor():
    from transformers.models.llava_next.image_processing_pil_llava_next import \
        LlavaNextImageProcessorPil

    return LlavaNextImageProcessorPil(size={"shortest_edge": TILE},
                                      crop_size={"height": TILE, "width": TILE},
                                      image_grid_pinpoints=GRID)


def image_tokens(image_processor, image_size, pixel_hw=(TILE, TILE)):
    """N: the <image> ids one image of image_size (h, w) stands for, by transformers'
    LlavaNextProcessor._get_number_of_features (base tile + CLS, unpadded grid, one
    image_newline per grid row), minus the CLS that the "default" strategy drops (as
    LlavaNextProcessor.replace_image_token does). The processor needs a tokenizer to be
    built, so the method runs on a bare instance carrying only what it reads."""
    from transformers import LlavaNextProcessor

    proc = object.__new__(LlavaNextProcessor)
    proc.__dict__.update(image_processor=image_processor, patch_size=PATCH,
                         num_additional_image_tokens=1,
                         vision_feature_select_strategy=LLAVA_CONFIG["vision_feature_select_strategy"])
    h, w = (int(v) for v in image_size)
    return proc._get_number_of_features(h, w, *pixel_hw) - 1


def make_image():
    """The 512x512 RGB test image as a uint8 array: per channel a linear gradient, a sine
    and N(0, 14) noise from RandomState(IMAGE_SEED), rounded and clipped."""
    import numpy as np

    rs = np.random.RandomState(IMAGE_SEED)
    h = w = IMAGE_SIDE
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for c in range(3):
        a, b = rs.uniform(-1, 1, 2)
        ph, fr = rs.uniform(0, 2 * math.pi), rs.uniform(0.01, 0.05)
        v = 128 + 90 * (a * x / w + b * y / h) + 45 * np.sin(fr * (x + (c + 1) * 0.7 * y) + ph)
        chans.append(v + rs.normal(0, 14, (h, w)))
    return np.clip(np.rint(np.stack(chans, -1)), 0, 255).astype(np.uint8)


def make_pieces():
    import numpy as np

    rng = np.random.default_rng(PIECES_SEED)
    first = [BOS] + rng.integers(3, IMAGE_TOKEN, size=PIECE_LENS[0] - 1).tolist()
    last = rng.integers(3, IMAGE_TOKEN, size=PIECE_LENS[1]).tolist()
    return [first, "image", last]


def prompt_ids(pieces, n):
    """One row's ids: the pieces with "image" replaced by n copies of the image id."""
    ids = []
    for p in pieces:
        ids += [IMAGE_TOKEN] * n if p == "image" else p
    return ids


def left_pad(rows):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, width - len(r):] = 1
    return ids, mask


# ---------------------------------------------------------------- make


def make(args):
    import numpy as np
    import torch
    from PIL import Image
    from transformers import (CLIPVisionConfig, LlavaNextConfig,
                              LlavaNextForConditionalGeneration, MistralConfig)

    torch.set_num_threads(threads(args))
    t0 = time.perf_counter()
    os.makedirs(args.dir, exist_ok=True)

    config = LlavaNextConfig(vision_config=CLIPVisionConfig(**VISION_CONFIG),
                             text_config=MistralConfig(**TEXT_CONFIG), **LLAVA_CONFIG)
    torch.manual_seed(0)
    model = LlavaNextForConditionalGeneration(config).to(torch.float32).eval()
    with torch.no_grad():
        nl = model.model.image_newline
        nl.copy_(0.02 * torch.randn(nl.shape, generator=torch.Generator().manual_seed(1)))
    log(f"make: model built ({time.perf_counter() - t0:.0f}s)")
    model.save_pretrained(args.dir, safe_serialization=True)
    processor = make_processor()
    processor.save_pretrained(args.dir)

    arr = make_image()
    img_path = os.path.join(args.dir, "image.png")
    Image.fromarray(arr, "RGB").save(img_path, optimize=False, compress_level=9)
    image = Image.open(img_path).convert("RGB")
    if not np.array_equal(np.asarray(image), arr):
        sys.exit("make: image.png does not read back as written")

    # N two ways: the processor's formula and the model's own packed features.
    feats = processor([image], return_tensors="pt")
    n_formula = image_tokens(processor, feats["image_sizes"][0])
    with torch.inference_mode():
        packed = model.model.get_image_features(pixel_values=feats["pixel_values"],
                                                image_sizes=feats["image_sizes"]).pooler_output
    n_model = int(packed[0].shape[0])
    log(f"make: pixel_values {tuple(feats['pixel_values'].shape)}, image_sizes "
        f"{feats['image_sizes'].tolist()}, N = {n_formula} (formula) / {n_model} (model)")
    if n_formula != n_model:
        sys.exit(f"make: image tokens differ: formula {n_formula}, model {n_model}")

    pieces = make_pieces()
    with open(os.path.join(args.dir, "bench_inputs.json"), "w") as f:
        json.dump({"image": "image.png", "pieces": pieces, "image_tokens": n_model}, f)

    def n_params(m):
        return sum(p.numel() for p in m.parameters())

    lm = n_params(model.model.language_model) + n_params(model.lm_head)
    sizes = {f: os.path.getsize(os.path.join(args.dir, f)) for f in sorted(os.listdir(args.dir))
             if os.path.isfile(os.path.join(args.dir, f))}
    total = dir_bytes(args.dir)
    log(f"make: {args.dir}: {total / 2**20:.1f} MiB")
    print(json.dumps({
        "dir": args.dir,
        "parameters": {"vision_tower": n_params(model.model.vision_tower),
                       "projector": n_params(model.model.multi_modal_projector),
                       "image_newline": model.model.image_newline.numel(),
                       "language_model": lm,
                       "total": n_params(model)},
        "image_tokens": n_model,
        "prompt_len": len(prompt_ids(pieces, n_model)),
        "bytes": sizes,
        "total_bytes": total,
        "peak_rss_mib": peak_rss_mb(),
        "seconds": round(time.perf_counter() - t0, 1),
    }), flush=True)


# ---------------------------------------------------------------- bench


def bench(args):
    """Runs one subprocess per batch size, then prints one JSON line holding their lines."""
    results = []
    for b in args.batch:
        cmd = [sys.executable, os.path.abspath(__file__), "_bench_one", args.dir,
               "--batch", str(b), "--new-tokens", str(args.new_tokens),
               "--repeats", str(args.repeats), "--threads", str(threads(args)),
               "--attn", args.attn]
        results.append(run_json_line(cmd, f"batch {b}"))
    with open(os.path.join(args.dir, "config.json")) as f:
        cfg = json.load(f)
    first = results[0]
    print(json.dumps({
        "impl": "transformers",
        "torch": first["torch"],
        "transformers": first["transformers"],
        "model": {"vision": {k: cfg["vision_config"].get(k) for k in VISION_CONFIG},
                  "text": dict({k: cfg["text_config"].get(k) for k in TEXT_CONFIG},
                               rope_theta=(cfg["text_config"].get("rope_parameters") or {})
                               .get("rope_theta", cfg["text_config"].get("rope_theta"))),
                  "image_grid_pinpoints": cfg.get("image_grid_pinpoints")},
        "results": results,
    }), flush=True)


def bench_one(args):
    import torch
    import transformers
    from PIL import Image
    from transformers import LlavaNextForConditionalGeneration
    from transformers.models.llava_next.image_processing_pil_llava_next import \
        LlavaNextImageProcessorPil

    torch.set_num_threads(threads(args))
    rss_import = peak_rss_mb()
    load_start = os.getloadavg()[0]
    B, T = args.batch, args.new_tokens
    with open(os.path.join(args.dir, "bench_inputs.json")) as f:
        inputs = json.load(f)
    pieces = inputs["pieces"]

    model = LlavaNextForConditionalGeneration.from_pretrained(
        args.dir, dtype=torch.float32, attn_implementation=args.attn).eval()
    processor = LlavaNextImageProcessorPil.from_pretrained(args.dir)
    rss_after_load = peak_rss_mb()
    attn_impl = getattr(model.config.text_config, "_attn_implementation", None)
    vision_attn = getattr(model.config.vision_config, "_attn_implementation", None)
    image = Image.open(os.path.join(args.dir, inputs["image"])).convert("RGB")
    image.load()

    counts = {"tiles": 0, "lm": 0, "prefill_rows": None}

    def on_vision(_m, a, kw):
        pv = a[0] if a else kw["pixel_values"]
        counts["tiles"] += pv.shape[0]

    def on_lm(_m, a, kw):
        counts["lm"] += 1
        if counts["prefill_rows"] is None:
            x = kw.get("inputs_embeds")
            x = x if x is not None else kw.get("input_ids")
            counts["prefill_rows"] = int(x.shape[0]) if x is not None else None

    hooks = [model.model.vision_tower.register_forward_pre_hook(on_vision, with_kwargs=True),
             model.model.language_model.register_forward_pre_hook(on_lm, with_kwargs=True)]

    state = {}

    def call(n, seed):
        """One guide call with n new tokens; returns (total, processor, generate) seconds."""
        counts.update(tiles=0, lm=0, prefill_rows=None)
        t = time.perf_counter()
        feats = processor([image] * B, return_tensors="pt")
        t_proc = time.perf_counter() - t
        ns = [image_tokens(processor, s) for s in feats["image_sizes"]]
        ids, mask = left_pad([prompt_ids(pieces, k) for k in ns])
        torch.manual_seed(seed)
        t_gen = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask,
                             pixel_values=feats["pixel_values"], image_sizes=feats["image_sizes"],
                             min_new_tokens=n, max_new_tokens=n, **GEN_KWARGS)
        end = time.perf_counter()
        got = tuple(out.shape)
        if got != (B, ids.shape[1] + n):
            sys.exit(f"bench: generate returned {got}, wanted {(B, ids.shape[1] + n)}")
        if bool((out[:, ids.shape[1]:] == EOS).any()):
            sys.exit("bench: EOS among the new tokens")
        state.update(feats=feats, ids=ids, mask=mask, ns=ns)
        return end - t, t_proc, end - t_gen

    with torch.inference_mode():
        warm, _, _ = call(WARMUP_TOKENS, 0)
        log(f"bench: batch {B}: warm-up ({WARMUP_TOKENS} tokens) {warm:.2f}s")
        rss_after_warmup = peak_rss_mb()
        times, proc_times, gen_times = [], [], []
        for r in range(args.repeats):
            dt, dp, dg = call(T, r + 1)
            times.append(dt)
            proc_times.append(dp)
            gen_times.append(dg)
            log(f"bench: batch {B}: run {r}: {dt:.2f}s (processor {dp:.3f}s, generate {dg:.2f}s; "
                f"{counts['tiles']} tiles, {counts['lm']} LM forwards, prefill rows "
                f"{counts['prefill_rows']})")
        per_call = dict(counts)
        for h in hooks:
            h.remove()

        feats, ids, mask = state["feats"], state["ids"], state["mask"]
        t = time.perf_counter()
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=feats["pixel_values"],
                       image_sizes=feats["image_sizes"], logits_to_keep=1).logits
        prefill = time.perf_counter() - t
        assert logits.shape[:2] == (B, 1) and bool(torch.isfinite(logits).all())
        t = time.perf_counter()
        packed = model.model.get_image_features(pixel_values=feats["pixel_values"],
                                                image_sizes=feats["image_sizes"]).pooler_output
        vision = time.perf_counter() - t
        assert [int(p.shape[0]) for p in packed] == state["ns"]
        log(f"bench: batch {B}: prefill forward {prefill:.2f}s, image features {vision:.2f}s")

    median = statistics.median(times)
    gen_kwargs = dict(GEN_KWARGS, min_new_tokens=T, max_new_tokens=T)
    print(json.dumps({
        "impl": "transformers",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn_implementation": attn_impl,
        "vision_attn_implementation": vision_attn,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "batch": B,
        "new_tokens": T,
        "repeats": args.repeats,
        "num_beams": NUM_BEAMS,
        "generate_kwargs": gen_kwargs,
        "eos_handling": "eos_token_id 2 kept; min_new_tokens = max_new_tokens = new_tokens, so "
                        "the EOS logit is -inf on every step and no beam ends early",
        "image_size": [image.height, image.width],
        "pixel_values_shape": list(feats["pixel_values"].shape),
        "image_tokens": state["ns"],
        "prompt_len": int(ids.shape[1]),
        "prompt_pieces": [len(pieces[0]), state["ns"][0], len(pieces[2])],
        "vision_tiles_per_call": per_call["tiles"],
        "lm_forwards_per_call": per_call["lm"],
        "lm_prefill_rows": per_call["prefill_rows"],
        "warmup_s": warm,
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "processor_times_s": proc_times,
        "processor_s_median": statistics.median(proc_times),
        "generate_times_s": gen_times,
        "generate_s_median": statistics.median(gen_times),
        "prefill_s": prefill,
        "vision_s": vision,
        "per_image_s_median": median / B,
        "rss_import_mb": rss_import,
        "rss_after_load_mb": rss_after_load,
        "rss_after_warmup_mb": rss_after_warmup,
        "peak_rss_mb": peak_rss_mb(),
        "rss_end": rss_now(),
    }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{make,bench}")
    m = sub.add_parser("make", help="write the random-weight reduced LLaVA-NeXT and its inputs")
    m.add_argument("dir")
    m.add_argument("--threads", type=int, default=0)
    for name in ("bench", "_bench_one"):
        # _bench_one: one batch size, run by bench in a fresh process (hidden).
        kw = {"help": "time one guide call per batch size, print one JSON line"} \
            if name == "bench" else {}
        b = sub.add_parser(name, **kw)
        b.add_argument("dir")
        if name == "bench":
            b.add_argument("--batch", type=int, nargs="+", default=[1, 8])
        else:
            b.add_argument("--batch", type=int, required=True)
        b.add_argument("--new-tokens", type=int, default=16)
        b.add_argument("--repeats", type=int, default=3)
        b.add_argument("--threads", type=int, default=0,
                       help="else $ART_BENCH_THREADS, else os.cpu_count()")
        b.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, eager)")
    args = ap.parse_args()
    if args.cmd in ("bench", "_bench_one"):
        batches = args.batch if isinstance(args.batch, list) else [args.batch]
        if min(batches) < 1 or args.new_tokens < 1 or args.repeats < 1:
            ap.error("--batch, --new-tokens and --repeats must be >= 1")
    {"make": make, "bench": bench, "_bench_one": bench_one}[args.cmd](args)


if __name__ == "__main__":
    main()
