#!/usr/bin/env python3
"""The reference side of crates/models/benches/llm.rs: Hugging Face transformers
LlamaForCausalLM generation on PyTorch CPU, timed against art's candle Llama.

Two subcommands:

  make DIR
      Builds a random-weight LlamaForCausalLM in a ~100M-class Llama shape
      (vocab 32000, hidden 768, intermediate 2048, 12 layers, 12 heads, 12 KV heads,
      max positions 2048, rms_norm_eps 1e-5, untied embeddings, bos 1 / eos 2 / pad 0;
      134,105,856 parameters: the untied 32000x768 embedding and lm_head are ~49M of them),
      seeded with torch.manual_seed(0) and saved with save_pretrained (safetensors, f32)
      into DIR. The EOS row of lm_head (row 2) is zeroed, so that EOS does not win the
      argmax; the script checks that 64 greedy tokens, generated without a minimum
      length, hold no EOS for any prompt, and makes the EOS row more negative until
      they do not. Also writes DIR/prompts.json: 16 prompts as lists of token ids,
      each starting with bos 1, 40..60 tokens long, the rest random ids in [3, 32000)
      (numpy seed 0). The Rust side reads the same model folder and the same
      prompts.json.

  bench DIR --batch B --mode greedy|beam-sample --new-tokens N --repeats R [--threads T]
      Loads DIR (f32, eval, torch.inference_mode, attn_implementation "sdpa" unless
      --attn says otherwise), takes the first B prompts of DIR/prompts.json, left-pads
      them with pad id 0 and an attention mask, and times model.generate(...):
        greedy:      do_sample=False, num_beams=1
        beam-sample: do_sample=True, num_beams=5, temperature=3.5, top_k=50,
                     repetition_penalty=1.5 (the Writer settings, at a fixed length)
      both with max_new_tokens=min_new_tokens=N, pad_token_id=0, eos_token_id=2, so
      every run generates exactly N tokens per returned sequence. One untimed warm-up
      run (N=4), then R timed runs. Prints one JSON line on stdout:
        impl, torch, transformers, attn_implementation, dtype, threads, batch, mode,
        new_tokens, repeats, prompt_lens, times_s, median_s, min_s,
        tokens_per_s (B*N/median_s: returned tokens, not beams),
        rss_import_mb (peak RSS after importing torch and transformers, before loading),
        rss_after_load_mb (peak RSS right after from_pretrained),
        rss_after_warmup_mb (peak RSS after the warm-up generate),
        peak_rss_mb (peak RSS at the end: process peak including imports and loading),
        rss_end ({rss_mb, anon_mb, file_mb}: current RSS at the end from /proc/self/status).
      Peak RSS is VmHWM of /proc/self/status in MiB (ru_maxrss would carry the parent's size
      over exec).
      Caveats for reading the memory numbers: importing torch (a CUDA build) already
      costs ~700 MiB, much of it file-backed library pages; and from_pretrained leaves
      the f32 weights as zero-copy mmaps of model.safetensors, so they enter RSS (as
      file-backed pages) only when the first forward pass touches them, i.e. in
      rss_after_warmup_mb, not rss_after_load_mb.
      Threads: --threads, else the env var ART_BENCH_THREADS, else 2.
        omp_wait_policy ($OMP_WAIT_POLICY as set, or null) and loadavg_1m ([1-minute load
        average before loading, at the end]) are recorded to judge noisy runs.
      Noise warning: with 2 threads on a 2-core machine, any other busy process makes
      PyTorch's OpenMP threads spin at barriers and generation gets ~30x slower (0.3 s
      becomes ~9 s for 8 tokens). OMP_WAIT_POLICY=PASSIVE (set in the environment
      before Python starts) keeps that to ~1.7x, at ~10% cost on an idle machine; the
      script does not set it itself, so by default it measures stock PyTorch.

How llm.rs uses it: it runs this script as a subprocess, e.g.

  python tools/bench/llm_reference.py make /tmp/llm100m
  python tools/bench/llm_reference.py bench /tmp/llm100m --batch 1 --mode greedy --new-tokens 32 --repeats 2
  python tools/bench/llm_reference.py bench /tmp/llm100m --batch 16 --mode beam-sample --new-tokens 16 --repeats 1

and reads the last line of stdout as JSON for the side-by-side numbers. Progress and
warnings go to stderr only.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

from bench_common import log, peak_rss_mb, rss_now, threads as bench_threads

PAD, BOS, EOS = 0, 1, 2
N_PROMPTS = 16


def left_pad(prompts):
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    return ids, mask


def make(args):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(threads(args))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=32000, hidden_size=768, intermediate_size=2048,
        num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=12,
        max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=False,
        bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, torch_dtype="float32",
    )
    model = LlamaForCausalLM(config).to(torch.float32).eval()

    rng = np.random.default_rng(0)
    prompts = []
    for _ in range(N_PROMPTS):
        n = int(rng.integers(40, 61))  # 40..60 tokens, bos included
        prompts.append([BOS] + rng.integers(3, 32000, size=n - 1).tolist())

    # EOS must not win the argmax: zero its lm_head row, check 64 free greedy tokens
    # (no min_new_tokens), and push the row further down until no prompt yields EOS.
    ids, mask = left_pad(prompts)
    with torch.inference_mode():
        w = model.lm_head.weight
        w[EOS] = 0
        scale = 10.0
        for attempt in range(6):
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                 num_beams=1, max_new_tokens=64, pad_token_id=PAD,
                                 eos_token_id=EOS)
            new = out[:, ids.shape[1]:]
            n_eos = int((new == EOS).sum())
            log(f"make: EOS check {attempt}: {n_eos} EOS in {tuple(new.shape)} greedy tokens")
            if n_eos == 0 and new.shape[1] == 64:
                break
            w[EOS] = -w.mean(0) * scale
            scale *= 10
        else:
            sys.exit("make: could not keep EOS from winning the argmax")

    os.makedirs(args.dir, exist_ok=True)
    model.save_pretrained(args.dir, safe_serialization=True)
    with open(os.path.join(args.dir, "prompts.json"), "w") as f:
        json.dump(prompts, f)
    n_params = sum(p.numel() for p in model.parameters())
    print(json.dumps({"dir": args.dir, "parameters": n_params,
                      "prompt_lens": [len(p) for p in prompts]}))


def threads(args):
    """--threads, else $ART_BENCH_THREADS, else 2."""
    return bench_threads(args, 2)


def bench(args):
    import transformers
    from transformers import LlamaForCausalLM

    torch.set_num_threads(threads(args))
    rss_import = peak_rss_mb()
    load_start = os.getloadavg()[0]
    with open(os.path.join(args.dir, "prompts.json")) as f:
        prompts = json.load(f)[: args.batch]
    if len(prompts) < args.batch:
        sys.exit(f"bench: only {len(prompts)} prompts in {args.dir}/prompts.json")

    model = LlamaForCausalLM.from_pretrained(
        args.dir, dtype=torch.float32, attn_implementation=args.attn).eval()
    rss_after_load = peak_rss_mb()
    attn_impl = getattr(model.config, "_attn_implementation", None)

    ids, mask = left_pad(prompts)
    common = dict(input_ids=ids, attention_mask=mask, pad_token_id=PAD, eos_token_id=EOS)
    if args.mode == "greedy":
        common.update(do_sample=False, num_beams=1)
    else:
        common.update(do_sample=True, num_beams=5, temperature=3.5, top_k=50,
                      repetition_penalty=1.5)

    def run(n, seed):
        torch.manual_seed(seed)
        t = time.perf_counter()
        out = model.generate(max_new_tokens=n, min_new_tokens=n, **common)
        dt = time.perf_counter() - t
        got = tuple(out.shape)
        if got != (args.batch, ids.shape[1] + n):
            sys.exit(f"bench: generate returned {got}, wanted {(args.batch, ids.shape[1] + n)}")
        return dt

    with torch.inference_mode():
        warm = run(4, 0)
        log(f"bench: warm-up (4 tokens) {warm:.2f}s")
        rss_after_warmup = peak_rss_mb()
        times = []
        for r in range(args.repeats):
            times.append(run(args.new_tokens, r + 1))
            log(f"bench: run {r}: {times[-1]:.2f}s")

    median = statistics.median(times)
    print(json.dumps({
        "impl": "transformers",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "attn_implementation": attn_impl,
        "dtype": "float32",
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "batch": args.batch,
        "mode": args.mode,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "prompt_lens": [len(p) for p in prompts],
        "times_s": times,
        "median_s": median,
        "min_s": min(times),
        "tokens_per_s": args.batch * args.new_tokens / median,
        "rss_import_mb": rss_import,
        "rss_after_load_mb": rss_after_load,
        "rss_after_warmup_mb": rss_after_warmup,
        "peak_rss_mb": peak_rss_mb(),
        "rss_end": rss_now(),
    }), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write the random-weight model and prompts.json")
    m.add_argument("dir")
    m.add_argument("--threads", type=int, default=0)
    b = sub.add_parser("bench", help="time model.generate, print one JSON line")
    b.add_argument("dir")
    b.add_argument("--batch", type=int, default=1)
    b.add_argument("--mode", choices=["greedy", "beam-sample"], default="greedy")
    b.add_argument("--new-tokens", type=int, default=32)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--threads", type=int, default=0, help="else $ART_BENCH_THREADS, else 2")
    b.add_argument("--attn", default="sdpa", help="attn_implementation (sdpa, eager)")
    args = ap.parse_args()
    if args.cmd == "bench" and (args.batch < 1 or args.new_tokens < 1 or args.repeats < 1):
        ap.error("--batch, --new-tokens and --repeats must be >= 1")
    make(args) if args.cmd == "make" else bench(args)


if __name__ == "__main__":
    main()
