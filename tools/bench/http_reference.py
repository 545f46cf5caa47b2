#!/usr/bin/env python3
"""The Python side of crates/remote/benches/remote_load.rs: the same requests with httpx (the
HTTP client the `openai` package uses), sequentially on one connection and from a pool of
threads. Prints one JSON line: {"sequential_us": ..., "concurrent_rps": ...}."""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import httpx

url, n_seq, n_conc, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = {"model": "m", "messages": [{"role": "user", "content": "a pic of cat"}], "seed": 1}

with httpx.Client(timeout=30) as c:
    c.post(url, json=body).json()  # warm-up
    t = time.perf_counter()
    for _ in range(n_seq):
        c.post(url, json=body).json()
    seq = (time.perf_counter() - t) / n_seq

with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=workers)) as c:
    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: c.post(url, json=body).json(), range(n_conc)))
    rps = n_conc / (time.perf_counter() - t)

print(json.dumps({"sequential_us": seq * 1e6, "concurrent_rps": rps}))
