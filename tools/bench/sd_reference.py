#!/usr/bin/env python3
"""The reference side of a Stable Diffusion benchmark: diffusers text-to-image on CPU.

diffusers' StableDiffusionPipeline on PyTorch CPU, timed against art's candle Stable Diffusion.

Two subcommands:

  make DIR
      Writes a Stable Diffusion 1.5-shaped pipeline with random weights in diffusers layout
      (StableDiffusionPipeline.save_pretrained(DIR, safe_serialization=True), f32, no
      safety checker, requires_safety_checker false):
        unet/          UNet2DConditionModel, SD 1.5's config (859,520,964 parameters)
        vae/           AutoencoderKL, SD 1.5's config (83,653,863 parameters)
        text_encoder/  CLIPTextModel, the ViT-L/14 text tower of SD 1.5
                       (vocab 49408, 123,060,480 parameters; tensor names "text_model.*"
                       as in SD 1.5's file, see fix_text_encoder_keys)
        tokenizer/     CLIPTokenizer: vocab.json + merges.txt (+ tokenizer.json,
                       tokenizer_config.json from transformers' save_pretrained)
        scheduler/     PNDMScheduler, SD 1.5's scheduler_config.json
        model_index.json
      ~4.3 GB in all. Each model is built from its config with torch.manual_seed(0) right
      before it (the default init of diffusers / transformers; the weights are noise, which
      is all a speed benchmark needs). The real CLIP BPE vocabulary is not available
      offline, so the tokenizer is CLIP-structured but tiny: the 256 bytes_to_unicode
      characters, the same with '</w>', up to N_MERGES (400) merges learned (plain BPE,
      CLIP's word-final '</w>' convention) from a small built-in text (it yields 386),
      then <|startoftext|> and <|endoftext|>: 256 + 256 + 386 + 2 = 900 ids, the prompt
      and each word of the negative prompt one token. The text model keeps the real
      vocab_size 49408; every id the tokenizer emits is below that. Prints one JSON line
      (dir, parameter counts, tokenizer size, bytes on disk per folder).

  bench DIR [--size 256] [--batch 1 4] [--steps 4] [--repeats 3] [--threads N] [--sliced]
      For each batch size B, in a fresh subprocess of this script (so every batch size
      gets its own peak-RSS high-water mark): loads DIR with
      StableDiffusionPipeline.from_pretrained (f32, CPU), torch.set_num_threads(threads),
      and under torch.inference_mode() times
        pipe(prompt=[PROMPT]*B, negative_prompt=[NEGATIVE]*B, height=size, width=size,
             num_inference_steps=steps, guidance_scale=7.5,
             generator=torch.Generator().manual_seed(0), output_type="np")
      One untimed warm-up call (1 step), then `repeats` timed calls. Then it times
      `repeats` single UNet calls directly at the classifier-free-guidance batch 2*B
      (latents (2B, 4, size/8, size/8) from the seeded generator, timestep of the first
      denoising step, the pipeline's own prompt embeddings from pipe.encode_prompt): the
      cost of one denoising step without the text encoder, the scheduler or the VAE.
      --sliced turns on pipe.enable_attention_slicing() (diffusers' "auto": half the heads
      at a time; diffusers warns this is slower than the default SDPA processor).
      Prints one JSON line per batch size on stdout:
        impl ("diffusers"), torch, diffusers, dtype, size, batch, steps, repeats, threads,
        sliced, attn_processor (class name of the UNet's attention processor),
        omp_wait_policy, loadavg_1m ([before loading, at the end]),
        unet_calls_per_call (UNet forwards in one pipeline call, counted with a hook:
          PNDM with skip_prk_steps runs steps + 1 of them, it repeats one timestep),
        warmup_s, times_s, total_s_median, per_image_s_median (total_s_median / B),
        unet_times_s, unet_call_s_median,
        image_finite (whether the last image held no NaN/inf: random weights),
        rss_after_load_mib (peak RSS right after from_pretrained),
        peak_rss_mib (peak RSS at the end of the subprocess: imports, loading, all calls),
        ru_maxrss_mib (the same high-water mark from resource.getrusage; Linux's ru_maxrss
          can carry a parent's size over exec, which is why peak_rss_mib is VmHWM, as in
          llm_reference.py; the parent here does not import torch, so they agree),
        rss_end ({rss_mb, anon_mb, file_mb}: current RSS at the end).
      Caveat for reading the memory numbers: from_pretrained leaves the f32 weights as
      mmaps of the safetensors files, so they enter RSS (as file-backed pages, ~4 GiB of
      rss_end's file_mb) when the first call touches them: peak_rss_mib, not
      rss_after_load_mib, holds them. Importing torch and diffusers is ~0.6 GiB of it.
      Threads: --threads, else the env var ART_BENCH_THREADS, else os.cpu_count().
      The noise warning of llm_reference.py applies: with as many threads as cores, any
      other busy process makes PyTorch's OpenMP threads spin at barriers; OMP_WAIT_POLICY
      (if set in the environment) is recorded, not set.

How it is used:

  python tools/bench/sd_reference.py make /tmp/sd15-random
  python tools/bench/sd_reference.py bench /tmp/sd15-random --size 256 --batch 1 4 --steps 4 --repeats 3

Progress and warnings go to stderr only; stdout carries only the JSON lines.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench_common import dir_bytes, log, peak_rss_mb, ru_maxrss_mb, rss_now, run_json_line, threads as bench_threads

# The tokenizer's vocab builder is shared with the golden files' script, tools/golden/sd.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "golden"))
from clip_vocab import build_vocab, byte_encode, bytes_to_unicode, learn_merges, write_vocab_files  # noqa: E402

PROMPT = "a pic of cat"
NEGATIVE = (
    "blurry low quality low resolution jpeg artifacts watermark text signature logo cropped "
    "out of frame worst quality bad anatomy deformed disfigured extra limbs extra fingers "
    "missing fingers mutated hands poorly drawn face ugly duplicate grainy noisy overexposed "
    "underexposed distorted bad proportions long neck"
)  # 43 words, one token each with this script's tokenizer: 45 ids with start/end, no truncation
N_MERGES = 400

# SD 1.5's component configs (runwayml/stable-diffusion-v1-5), written out.
UNET_CONFIG = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    center_input_sample=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                      "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D",
                    "CrossAttnUpBlock2D"),
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    downsample_padding=1,
    mid_block_scale_factor=1,
    act_fn="silu",
    norm_num_groups=32,
    norm_eps=1e-5,
    cross_attention_dim=768,
    attention_head_dim=8,
)
VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    act_fn="silu",
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
    scaling_factor=0.18215,
)
TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=768,
    intermediate_size=3072,
    projection_dim=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    attention_dropout=0.0,
    dropout=0.0,
    initializer_range=0.02,
    initializer_factor=1.0,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)
SCHEDULER_CONFIG = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}

# The text the tokenizer's merges are learned from.
MERGE_TEXT = (
    PROMPT + ". " + NEGATIVE + ". "
    "A photograph of a cat sitting on a wooden table next to a window, soft light, "
    "highly detailed, sharp focus, studio portrait of a dog in the garden, a painting "
    "of a mountain landscape at sunset with a river and trees, digital art, concept art, "
    "a red car parked on the street of an old city at night, cinematic lighting, "
    "an astronaut riding a horse on the moon, oil painting, trending on artstation, "
    "the quick brown fox jumps over the lazy dog while the children are playing in the "
    "park and the birds are singing in the morning, beautiful, colorful, realistic, "
    "photorealistic, illustration, intricate, elegant, smooth, volumetric lighting, "
    "octane render, unreal engine, 4k, 8k, hdr, masterpiece, best quality"
)


def threads(args):
    """--threads, else $ART_BENCH_THREADS, else os.cpu_count()."""
    return bench_threads(args, os.cpu_count() or 1)


# ---------------------------------------------------------------- tokenizer


def merge_words(text):
    """The words the merges are learnt from: lowercased, split like CLIP's pattern (letters,
    single digits, runs of other non-space characters), byte-encoded (clip_vocab.byte_encode).
    clip_vocab.learn_merges then runs plain BPE on them, the last symbol of a word carrying
    '</w>'; every pair counts, even one seen once, and it stops early when no pair is left."""
    import re

    b2u = bytes_to_unicode()
    return [byte_encode(w, b2u)
            for w in re.findall(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", text.lower())]


def write_tokenizer(out_dir, n_merges=N_MERGES):
    """Writes vocab.json + merges.txt in CLIP's layout into out_dir, then loads them with
    transformers' CLIPTokenizer and saves it there (adding tokenizer.json and
    tokenizer_config.json). Returns the tokenizer."""
    from transformers import CLIPTokenizer

    merges = learn_merges(merge_words(MERGE_TEXT), n_merges, min_count=1, strict=False)
    vocab = build_vocab(merges)
    vocab_path, merges_path = write_vocab_files(out_dir, vocab, merges)
    tok = CLIPTokenizer(vocab_file=vocab_path, merges_file=merges_path,
                        model_max_length=77)
    if len(tok) != len(vocab):
        # Older/newer constructors spell the file arguments differently; load the folder.
        tok = CLIPTokenizer.from_pretrained(out_dir, model_max_length=77)
    if len(tok) != len(vocab):
        sys.exit(f"make: tokenizer has {len(tok)} tokens, wrote {len(vocab)}")
    tok.save_pretrained(out_dir)
    # save_pretrained may rewrite vocab.json / merges.txt; make sure CLIP's layout stays.
    if not (os.path.isfile(vocab_path) and os.path.isfile(merges_path)):
        sys.exit("make: tokenizer save dropped vocab.json / merges.txt")
    return tok


# ---------------------------------------------------------------- make


def fix_text_encoder_keys(path):
    """transformers 5 saves CLIPTextModel without the "text_model." prefix of its tensor
    names (it strips the prefix on load, and does not put it back on save). SD 1.5's real
    text_encoder/model.safetensors, and candle's CLIP loader, have "text_model.*"; rewrite
    the file with the prefix (transformers still loads it: the prefix is what it expects
    from real checkpoints)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    if all(k.startswith("text_model.") for k in tensors):
        return
    tensors = {(k if k.startswith("text_model.") else "text_model." + k): v
               for k, v in tensors.items()}
    save_file(tensors, path, metadata={"format": "pt"})
    log(f"make: {path}: tensor names given the text_model. prefix")



def make(args):
    import torch
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.set_num_threads(threads(args))
    t0 = time.perf_counter()
    tok_dir = os.path.join(args.dir, "tokenizer")
    tokenizer = write_tokenizer(tok_dir)
    ids = tokenizer([PROMPT, NEGATIVE], padding="max_length", max_length=77,
                    truncation=True).input_ids
    log(f"make: tokenizer {len(tokenizer)} tokens; prompt -> {[i for i in ids[0] if i != tokenizer.pad_token_id]}")
    if max(max(r) for r in ids) >= TEXT_CONFIG["vocab_size"]:
        sys.exit("make: a token id is past the text model's vocabulary")

    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG)).eval()
    log(f"make: text encoder built ({time.perf_counter() - t0:.0f}s)")
    torch.manual_seed(0)
    vae = AutoencoderKL(**VAE_CONFIG).eval()
    log(f"make: VAE built ({time.perf_counter() - t0:.0f}s)")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_CONFIG).eval()
    log(f"make: UNet built ({time.perf_counter() - t0:.0f}s), peak RSS {peak_rss_mb():.0f} MiB")
    # from_config, not the constructor: SD 1.5's file carries "clip_sample", which
    # PNDMScheduler does not take (it is put back into the saved file below).
    scheduler = PNDMScheduler.from_config(SCHEDULER_CONFIG)

    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    # safetensors >= 0.6 writes straight from the tensors' memory (no bytes copy), so this
    # does not hold a second copy of the UNet.
    pipe.save_pretrained(args.dir, safe_serialization=True)
    log(f"make: saved ({time.perf_counter() - t0:.0f}s), peak RSS {peak_rss_mb():.0f} MiB")
    fix_text_encoder_keys(os.path.join(args.dir, "text_encoder", "model.safetensors"))
    sched_path = os.path.join(args.dir, "scheduler", "scheduler_config.json")
    with open(sched_path) as f:
        sched = json.load(f)
    for k, v in SCHEDULER_CONFIG.items():
        sched.setdefault(k, v)
    with open(sched_path, "w") as f:
        json.dump(sched, f, indent=2, sort_keys=True)
        f.write("\n")

    def n_params(m):
        return sum(p.numel() for p in m.parameters())

    sizes = {d: dir_bytes(os.path.join(args.dir, d)) for d in sorted(os.listdir(args.dir))
             if os.path.isdir(os.path.join(args.dir, d))}
    total = dir_bytes(args.dir)
    log(f"make: {args.dir}: {total / 1e9:.2f} GB ({total / 2**30:.2f} GiB)")
    print(json.dumps({
        "dir": args.dir,
        "parameters": {"unet": n_params(unet), "vae": n_params(vae),
                       "text_encoder": n_params(text_encoder)},
        "tokenizer_tokens": len(tokenizer),
        "bytes": sizes,
        "total_bytes": total,
        "peak_rss_mib": peak_rss_mb(),
        "seconds": round(time.perf_counter() - t0, 1),
    }), flush=True)


# ---------------------------------------------------------------- bench


def bench(args):
    """Runs one subprocess per batch size and relays its JSON line."""
    for b in args.batch:
        cmd = [sys.executable, os.path.abspath(__file__), "_bench_one", args.dir,
               "--size", str(args.size), "--batch", str(b), "--steps", str(args.steps),
               "--repeats", str(args.repeats), "--threads", str(threads(args))]
        if args.sliced:
            cmd.append("--sliced")
        print(json.dumps(run_json_line(cmd, f"batch {b}")), flush=True)


def bench_one(args):
    import torch
    import diffusers
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(threads(args))
    load_start = os.getloadavg()[0]
    B, size = args.batch, args.size
    pipe = StableDiffusionPipeline.from_pretrained(
        args.dir, dtype=torch.float32, safety_checker=None, requires_safety_checker=False)
    pipe = pipe.to("cpu")
    pipe.set_progress_bar_config(disable=True)
    if args.sliced:
        pipe.enable_attention_slicing()
    rss_after_load = peak_rss_mb()
    procs = {type(p).__name__ for p in pipe.unet.attn_processors.values()}

    unet_calls = [0]
    hook = pipe.unet.register_forward_pre_hook(lambda *_: unet_calls.__setitem__(0, unet_calls[0] + 1))

    prompts, negatives = [PROMPT] * B, [NEGATIVE] * B

    def call(steps):
        unet_calls[0] = 0
        t = time.perf_counter()
        out = pipe(prompt=prompts, negative_prompt=negatives, height=size, width=size,
                   num_inference_steps=steps, guidance_scale=7.5,
                   generator=torch.Generator().manual_seed(0), output_type="np")
        dt = time.perf_counter() - t
        images = out.images
        if images.shape != (B, size, size, 3):
            sys.exit(f"bench: pipeline returned {images.shape}, wanted {(B, size, size, 3)}")
        return dt, images

    with torch.inference_mode():
        warm, _ = call(1)
        log(f"bench: batch {B}: warm-up (1 step, {unet_calls[0]} UNet calls) {warm:.2f}s")
        times = []
        for r in range(args.repeats):
            dt, images = call(args.steps)
            times.append(dt)
            log(f"bench: batch {B}: run {r}: {dt:.2f}s ({unet_calls[0]} UNet calls)")
        calls_per_call = unet_calls[0]
        finite = bool(__import__("numpy").isfinite(images).all())

        # One denoising step's UNet call at the CFG batch 2B, with the pipeline's inputs.
        hook.remove()
        pos, neg = pipe.encode_prompt(prompts, torch.device("cpu"), 1, True, negatives)
        embeds = torch.cat([neg, pos])
        g = torch.Generator().manual_seed(0)
        latents = torch.randn((2 * B, 4, size // 8, size // 8), generator=g)
        pipe.scheduler.set_timesteps(args.steps)
        t_first = pipe.scheduler.timesteps[0]
        latents = pipe.scheduler.scale_model_input(latents, t_first)
        unet_times = []
        for r in range(args.repeats):
            t = time.perf_counter()
            noise = pipe.unet(latents, t_first, encoder_hidden_states=embeds, return_dict=False)[0]
            unet_times.append(time.perf_counter() - t)
            log(f"bench: batch {B}: UNet call at batch {2 * B}: {unet_times[-1]:.2f}s")
        assert noise.shape == latents.shape

    total = statistics.median(times)
    print(json.dumps({
        "impl": "diffusers",
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "dtype": "float32",
        "size": size,
        "batch": B,
        "steps": args.steps,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "sliced": args.sliced,
        "attn_processor": sorted(procs),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "unet_calls_per_call": calls_per_call,
        "warmup_s": warm,
        "times_s": times,
        "total_s_median": total,
        "per_image_s_median": total / B,
        "unet_times_s": unet_times,
        "unet_call_s_median": statistics.median(unet_times),
        "image_finite": finite,
        "rss_after_load_mib": rss_after_load,
        "peak_rss_mib": peak_rss_mb(),
        "ru_maxrss_mib": ru_maxrss_mb(),
        "rss_end": rss_now(),
    }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{make,bench}")
    m = sub.add_parser("make", help="write the random-weight SD 1.5-shaped pipeline")
    m.add_argument("dir")
    m.add_argument("--threads", type=int, default=0)
    for name in ("bench", "_bench_one"):
        # _bench_one: one batch size, run by bench in a fresh process (hidden).
        kw = {"help": "time the pipeline, print one JSON line per batch size"} \
            if name == "bench" else {}
        b = sub.add_parser(name, **kw)
        b.add_argument("dir")
        b.add_argument("--size", type=int, default=256, help="height = width, a multiple of 8")
        if name == "bench":
            b.add_argument("--batch", type=int, nargs="+", default=[1, 4])
        else:
            b.add_argument("--batch", type=int, required=True)
        b.add_argument("--steps", type=int, default=4)
        b.add_argument("--repeats", type=int, default=3)
        b.add_argument("--threads", type=int, default=0,
                       help="else $ART_BENCH_THREADS, else os.cpu_count()")
        b.add_argument("--sliced", action="store_true",
                       help="pipe.enable_attention_slicing() (\"auto\")")
    args = ap.parse_args()
    if args.cmd in ("bench", "_bench_one"):
        batches = args.batch if isinstance(args.batch, list) else [args.batch]
        if min(batches) < 1 or args.steps < 1 or args.repeats < 1 or args.size < 8 \
                or args.size % 8:
            ap.error("--batch, --steps, --repeats must be >= 1; --size a multiple of 8")
    {"make": make, "bench": bench, "_bench_one": bench_one}[args.cmd](args)


if __name__ == "__main__":
    main()
