#!/usr/bin/env python3
"""Golden files for art-nn' PIL-exact resize (crates/nn/src/vision/resample.rs), made
with Pillow itself. Not run in CI; rerun when the cases or the Pillow version change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install pillow numpy
    /tmp/tv/bin/python tools/golden/pil_resample.py

Deterministic: the random images come from numpy's PCG64 with fixed seeds, and the smooth
300x200 image from smooth_image() below, integer arithmetic only, which the Rust test
(crates/nn/tests/resample.rs) rebuilds byte for byte rather than reading it (it alone would
be 180 KB). Each input is resized with Image.resize((w, h), resample=f) for every filter f,
default box and reducing_gap, as the CLIP / LLaVA / ViT image processors call it.

Writes crates/nn/tests/fixtures/pil_resample/:
  cases.bin    the random inputs (packed RGB8), then each case's output: packed RGB8 where it
               is at most RAW_MAX bytes, otherwise one FNV-1a 64 hash (u64 little-endian) per
               output row, so the big upscales stay small but a mismatch still names its row;
  cases.json   the index: Pillow's version, every input (size, where it lies in cases.bin, or
               "generated": "smooth" with the FNV-1a 64 of its bytes), every case (input,
               target size, filter, "data": "raw" | "row_fnv1a64", offset and length in
               cases.bin).
"""
import json
import os

import numpy as np
import PIL
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "nn",
                   "tests", "fixtures", "pil_resample")
RAW_MAX = 4000
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
M32 = 0xFFFFFFFF


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def smooth_image(w, h):
    """Per-channel gradients, hash noise of +-20, and a block of hard 0/255 squares (ringing
    and clipping for bicubic / lanczos). Integer-only: the Rust test repeats it exactly."""
    out = bytearray(w * h * 3)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                if c == 0:
                    base = x * 255 // (w - 1)
                elif c == 1:
                    base = y * 255 // (h - 1)
                else:
                    base = (x + y) * 255 // (w + h - 2)
                n = ((x * 73856093) ^ (y * 19349663) ^ (c * 83492791)) & M32
                n = ((n * 2654435761) & M32) >> 16
                v = base + n % 41 - 20
                if 40 <= x < 100 and 60 <= y < 120:
                    v = 255 if ((x // 6) + (y // 6)) % 2 else 0
                out[(y * w + x) * 3 + c] = min(max(v, 0), 255)
    return bytes(out)


def random_image(w, h, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8).tobytes()


# name -> (w, h, bytes, generated?)
INPUTS = {
    "rand_1x1": (1, 1, random_image(1, 1, 1), False),
    "rand_7x5": (7, 5, random_image(7, 5, 2), False),
    "rand_50x30": (50, 30, random_image(50, 30, 3), False),
    "rand_33x97": (33, 97, random_image(33, 97, 4), False),
    "smooth_300x200": (300, 200, smooth_image(300, 200), True),
}
TARGETS = {
    "rand_1x1": [(3, 3), (1, 1), (5, 1)],
    "rand_7x5": [(336, 240), (3, 2), (7, 11)],
    # down, up, non-integer scales both ways, one dimension unchanged (each way), identity,
    # an exact 2x reduction; 45x19 and 45x20 on either side of Pillow 13's switch to the
    # vertical pass first (height loses more than twice the pixels the width loses)
    "rand_50x30": [(28, 17), (56, 34), (50, 17), (23, 30), (50, 30), (25, 15), (1, 1), (45, 19),
                   (45, 20)],
    # 28x28 and 64x90 run the vertical pass first in Pillow 13
    "rand_33x97": [(28, 28), (33, 40), (64, 200), (64, 90)],
    # CLIP / LLaVA: shortest edge to 224 (336x224) or a square resize; an extreme reduction
    "smooth_300x200": [(224, 224), (336, 224), (7, 5), (301, 199)],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    blob = bytearray()
    index = {"pillow": PIL.__version__, "raw_max": RAW_MAX, "inputs": {}, "cases": []}
    for name, (w, h, data, generated) in INPUTS.items():
        entry = {"w": w, "h": h}
        if generated:
            entry["generated"] = "smooth"
            entry["fnv1a64"] = f"{fnv1a64(data):016x}"
        else:
            entry["offset"] = len(blob)
            entry["len"] = len(data)
            blob += data
        index["inputs"][name] = entry
    for name, targets in TARGETS.items():
        w, h, data, _ = INPUTS[name]
        im = Image.frombytes("RGB", (w, h), data)
        for tw, th in targets:
            for fname, f in FILTERS.items():
                out = im.resize((tw, th), resample=f).tobytes()
                assert len(out) == tw * th * 3
                case = {"input": name, "w": tw, "h": th, "filter": fname, "offset": len(blob)}
                if len(out) <= RAW_MAX:
                    case["data"] = "raw"
                    blob += out
                else:
                    case["data"] = "row_fnv1a64"
                    row = tw * 3
                    for y in range(th):
                        blob += fnv1a64(out[y * row:(y + 1) * row]).to_bytes(8, "little")
                case["len"] = len(blob) - case["offset"]
                index["cases"].append(case)
    with open(os.path.join(OUT, "cases.bin"), "wb") as f:
        f.write(blob)
    # One input or case a line: readable, and small next to cases.bin.
    cases = index.pop("cases")
    text = json.dumps(index, indent=1)[:-2] + ',\n "cases": [\n'
    text += ",\n".join("  " + json.dumps(c) for c in cases) + "\n ]\n}\n"
    assert json.loads(text)["cases"] == cases
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        f.write(text)
    print(f"{len(cases)} cases, cases.bin {len(blob)} bytes")


if __name__ == "__main__":
    main()
