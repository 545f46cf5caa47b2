#!/usr/bin/env python3
"""The reference side of crates/models/benches/embed.rs: sentence-transformers on PyTorch CPU,
the same model folder, the same 255 prompts, batch 32. Prints one JSON line with the median
seconds of RUNS runs and the peak RSS."""
import json, resource, statistics, sys, time
import torch
from sentence_transformers import SentenceTransformer

model_dir, runs = sys.argv[1], int(sys.argv[2])
prompts = json.load(sys.stdin)
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else torch.get_num_threads())
m = SentenceTransformer(model_dir, device="cpu")
m.encode(prompts[:32], batch_size=32)  # warm-up
times = []
for _ in range(runs):
    t = time.perf_counter()
    m.encode(prompts, batch_size=32, convert_to_numpy=True)
    times.append(time.perf_counter() - t)
print(json.dumps({"median_s": statistics.median(times),
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": torch.get_num_threads()}))
