#!/usr/bin/env python3
"""The reference side of `crates/models/benches/llm.rs --gguf FILE`: llama.cpp (through the
PyPI package llama-cpp-python, the venv tools/test.sh builds) generating greedily from the same
GGUF file and the same prompt token ids, batch 1 (its high-level API runs one sequence).

    python tools/bench/gguf_reference.py FILE.gguf --prompts DIR/prompts.json \
        [--new-tokens 32] [--repeats 3] [--threads 2]

Generates exactly N tokens (its `generate` does not stop at EOS), after an untimed warm-up;
the KV cache is reset before every run so each run processes the whole prompt. Prints one JSON
line: impl, llama_cpp_python, threads, new_tokens, prompt_len, times_s, median_s,
tokens_per_s, peak_rss_mb (VmHWM of the process, MiB).
"""
import argparse
import json
import statistics
import time

import llama_cpp
from llama_cpp import Llama

from bench_common import peak_rss_mb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gguf")
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    prompt = json.load(open(a.prompts))[0]
    llm = Llama(model_path=a.gguf, n_ctx=1024, n_batch=512, n_threads=a.threads, verbose=False)

    def run(n):
        llm.reset()
        out = []
        for tok in llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0,
                                repeat_penalty=1.0, reset=True):
            out.append(tok)
            if len(out) >= n:
                break
        return out

    run(4)
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        run(a.new_tokens)
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    print(json.dumps({
        "impl": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "threads": a.threads,
        "new_tokens": a.new_tokens,
        "prompt_len": len(prompt),
        "times_s": times,
        "median_s": med,
        "tokens_per_s": a.new_tokens / med,
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
