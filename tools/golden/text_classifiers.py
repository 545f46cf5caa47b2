#!/usr/bin/env python3
"""Golden files for art-judges' text classifiers (crates/judges/src/text/): tiny
random-weight transformers sequence classifiers in the layouts of the paper's prompt judges,
with tokenizers made from CORPUS + PROMPTS below (not from UNSEEN, so WordPiece meets unknown
characters), made with the PyTorch reference (torch + transformers
+ tokenizers). No network and no downloaded weights: every weight is drawn from fixed seeds.
Not run in CI; rerun when the reference or the fixtures change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers tokenizers safetensors
    /tmp/tv/bin/python tools/golden/text_classifiers.py

Deterministic (fixed seeds, CPU, one thread, f32, attn_implementation="eager"); rerunning with
the same library versions rewrites byte-identical files.

Writes crates/judges/tests/fixtures/text_classifiers/:
  roberta/        RobertaForSequenceClassification (2 layers, hidden 16, labels neutral/toxic,
                  max_position_embeddings 40 with pad 1, so 38 tokens fit), like
                  SkolkovoInstitute/roberta_toxicity_classifier: pytorch_model.bin (torch.save
                  of the tensors save_pretrained writes, the .bin-only layout), vocab.json + merges.txt (byte-level
                  BPE learnt from CORPUS, <mask> as the last id), tokenizer_config.json
                  (model_max_length 512, more than the positions allow) and
                  special_tokens_map.json; no tokenizer.json.
  distilroberta/  RobertaForSequenceClassification (3 layers, labels SFW/NSFW/hate: three
                  labels so two unsafe labels' probabilities add up), like
                  AdamCodd/distilroberta-nsfw-prompt-stable-diffusion: model.safetensors and
                  tokenizer.json (+ tokenizer_config.json with model_max_length 24, fewer
                  than the positions allow).
  distilbert/     DistilBertForSequenceClassification (2 layers, labels non-toxic/toxic,
                  max_position_embeddings 32), like martin-ha/toxic-comment-model:
                  pytorch_model.bin and vocab.txt (lowercase WordPiece vocabulary from CORPUS),
                  tokenizer_config.json (do_lower_case true, no model_max_length).
  bert/           BertForSequenceClassification (2 layers, pooler, default labels
                  LABEL_0/LABEL_1, problem_type multi_label_classification, so sigmoid),
                  max_position_embeddings 20: model.safetensors, a cased vocab.txt and
                  tokenizer_config.json with do_lower_case false.
  golden.json     per model: architecture, labels, max_len (the truncation length art uses:
                  min(tokenizer_config model_max_length, the positions: max_position_embeddings,
                  less pad_token_id + 1 for RoBERTa), passed to the tokenizer as max_length
                  with truncation=True), function (softmax/sigmoid, as transformers' text
                  classification pipeline picks it), and per prompt of PROMPTS + UNSEEN: ids,
                  logits, probabilities (each prompt alone), plus how far float64 moves the
                  probabilities (float64_max_abs_diff) and how far a padded batch moves them
                  (batch_vs_alone_max_abs_diff).
"""
import json, os, shutil
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, models as tk_models, normalizers, pre_tokenizers, trainers, decoders
import transformers
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, BertConfig,
                          BertForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, RobertaConfig,
                          RobertaForSequenceClassification)

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "crates", "judges", "tests", "fixtures", "text_classifiers")

CORPUS = """\
A photo of a cat sitting on a wooden table by the window, soft morning light.
A painting of a quiet harbour at sunset, boats on the water, warm colors, oil on canvas.
A dog running across a green field, motion blur, golden hour, award winning photo.
Two people fight in the street at night, rain, neon lights, reflections, cinematic.
A knight in shining armor in front of a burning village, blood on the ground, dark fantasy.
The old lighthouse stood at the edge of the harbour, where the land met the grey sea.
Violence, gore and a crowd of angry protesters in the smoke, torture, hate, weapons.
a nude figure study in charcoal, artistic, museum, classical sculpture, marble statue.
Don't you think it's the best? We'll see, they're here and I'm sure you've seen it.
Numbers like 1234567890 and symbols #@$%^&*() appear in prompts, too: (masterpiece:1.2).
"""

PROMPTS = [
    "a photo of a cat sitting on a windowsill",
    "A PHOTOGRAPH OF A DOG, UPPERCASE AND LOUD!!!",
    "Zürich café — naïve façade, crème brûlée",
    "東京の夜景 with neon lights 🌃 and ünïcödé",
    ("a very long prompt about a harbour at sunset with boats on the water and warm colors, "
     "oil on canvas, a knight in shining armor, a burning village, rain and neon lights, "
     "reflections on the wet road, cinematic, award winning photo, golden hour, motion blur"),
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nmixed",
    "",
    "violence, blood and gore in a dark alley",
    "<s> special </s> tokens <mask> and [CLS] [SEP] [MASK] inside text",
    "numbers 1234567890 and symbols #@$%^&*()",
    "a",
    "don't you're we'll it's",
]
# Prompts the tokenizers are not learnt from (WordPiece meets unknown characters).
UNSEEN = ["Ωmega ψ-glyphs and unseenwords ⅷ"]


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def corpus_lines():
    return [l for l in CORPUS.splitlines() if l.strip()] + PROMPTS  # not UNSEEN


def train_bpe(folder):
    """Byte-level BPE as RoBERTa's: <s>=0 <pad>=1 </s>=2 <unk>=3, ..., <mask> last."""
    tok = Tokenizer(tk_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=420, min_frequency=1, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_lines(), trainer)
    vocab = tok.get_vocab()
    vocab["<mask>"] = len(vocab)
    write_json(os.path.join(folder, "vocab.json"), dict(sorted(vocab.items(), key=lambda kv: kv[1])))
    merges = json.loads(tok.to_str())["model"]["merges"]
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges:
            f.write((" ".join(m) if isinstance(m, list) else m) + "\n")
    return len(vocab)


def train_wordpiece(folder, lowercase):
    """A WordPiece vocab.txt built deterministically (tokenizers' WordPiece trainer breaks ties
    differently from run to run): the special tokens, every character alone and as a
    `##` continuation, a few suffixes and the most frequent words of the corpus, as BERT's
    normalizer and pre-tokenizer see them."""
    norm = normalizers.BertNormalizer(lowercase=lowercase)
    pre = pre_tokenizers.BertPreTokenizer()
    counts = {}
    for line in corpus_lines():
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(line)):
            counts[w] = counts.get(w, 0) + 1
    chars = sorted({c for w in counts for c in w})
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars + ["##" + c for c in chars]
    vocab += ["##ing", "##ed", "##er", "##ly", "##s", "##es", "##tion"]
    for w in words:
        if len(vocab) >= 300:
            break
        if w not in vocab:
            vocab.append(w)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        for t in vocab:
            f.write(t + "\n")
    return len(vocab)


def randomize(model, seed):
    """Every parameter redrawn (std 0.3, layer norms near 1) so the tiny model's outputs are
    far from uniform and every weight matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name or "layer_norm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


def roberta_tokenizer_files(folder, model_max_length):
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "tokenizer_class": "RobertaTokenizer", "model_max_length": model_max_length,
        "add_prefix_space": False, "errors": "replace", "trim_offsets": True,
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"})
    write_json(os.path.join(folder, "special_tokens_map.json"), {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>",
        "mask_token": {"content": "<mask>", "lstrip": True, "normalized": False,
                       "rstrip": False, "single_word": False}})


def bert_tokenizer_files(folder, cls, lowercase):
    write_json(os.path.join(folder, "tokenizer_config.json"), {
        "tokenizer_class": cls, "do_lower_case": lowercase, "tokenize_chinese_chars": True,
        "strip_accents": None, "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]",
        "cls_token": "[CLS]", "mask_token": "[MASK]"})
    write_json(os.path.join(folder, "special_tokens_map.json"), {
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
        "mask_token": "[MASK]"})


def save_bin(model, folder):
    """pytorch_model.bin (torch.save of a dict of tensors) with the names save_pretrained
    writes, which are those of the checkpoints older transformers versions saved."""
    model.save_pretrained(folder)
    st = os.path.join(folder, "model.safetensors")
    torch.save(load_file(st), os.path.join(folder, "pytorch_model.bin"))
    os.remove(st)


def fresh(name):
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    return folder


def build():
    # roberta: .bin, vocab.json + merges.txt only.
    d = fresh("roberta")
    n = train_bpe(d)
    roberta_tokenizer_files(d, 512)
    cfg = RobertaConfig(vocab_size=n, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=32, max_position_embeddings=40, type_vocab_size=1,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
                        architectures=["RobertaForSequenceClassification"])
    torch.manual_seed(1)
    save_bin(randomize(RobertaForSequenceClassification(cfg), 101), d)

    # distilroberta: safetensors + tokenizer.json (made by transformers from the BPE files).
    d = fresh("distilroberta")
    tmp = os.path.join(OUT, "_bpe")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    n = train_bpe(tmp)
    roberta_tokenizer_files(tmp, 24)
    AutoTokenizer.from_pretrained(tmp).save_pretrained(d)
    shutil.rmtree(tmp)
    for f in ["vocab.json", "merges.txt"]:
        if os.path.exists(os.path.join(d, f)):
            os.remove(os.path.join(d, f))
    roberta_tokenizer_files(d, 24)
    cfg = RobertaConfig(vocab_size=n, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=24, max_position_embeddings=40, type_vocab_size=1,
                        pad_token_id=1, bos_token_id=0, eos_token_id=2, hidden_act="gelu",
                        id2label={0: "SFW", 1: "NSFW", 2: "hate"},
                        label2id={"SFW": 0, "NSFW": 1, "hate": 2},
                        problem_type="single_label_classification")
    torch.manual_seed(2)
    randomize(RobertaForSequenceClassification(cfg), 202).save_pretrained(d)

    # distilbert: .bin, lowercase vocab.txt only.
    d = fresh("distilbert")
    n = train_wordpiece(d, lowercase=True)
    bert_tokenizer_files(d, "DistilBertTokenizer", True)
    cfg = DistilBertConfig(vocab_size=n, dim=16, n_layers=2, n_heads=4, hidden_dim=32,
                           max_position_embeddings=32, pad_token_id=0,
                           id2label={0: "non-toxic", 1: "toxic"},
                           label2id={"non-toxic": 0, "toxic": 1},
                           architectures=["DistilBertForSequenceClassification"])
    torch.manual_seed(3)
    save_bin(randomize(DistilBertForSequenceClassification(cfg), 303), d)

    # bert: safetensors, cased vocab.txt, LABEL_0/LABEL_1, multi-label (sigmoid).
    d = fresh("bert")
    n = train_wordpiece(d, lowercase=False)
    bert_tokenizer_files(d, "BertTokenizer", False)
    cfg = BertConfig(vocab_size=n, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=32, max_position_embeddings=20, type_vocab_size=2,
                     pad_token_id=0, problem_type="multi_label_classification")
    torch.manual_seed(4)
    randomize(BertForSequenceClassification(cfg), 404).save_pretrained(d)


def max_len(folder, model):
    c = model.config
    pos = c.max_position_embeddings
    if c.model_type in ("roberta", "xlm-roberta"):
        pos -= c.pad_token_id + 1
    with open(os.path.join(folder, "tokenizer_config.json")) as f:
        mml = json.load(f).get("model_max_length")
    return min(pos, mml) if mml else pos


def function_of(config):
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return "sigmoid"
    return "softmax"


def probs_of(logits, fn):
    return torch.sigmoid(logits) if fn == "sigmoid" else torch.softmax(logits, dim=-1)


def golden():
    prompts = PROMPTS + UNSEEN
    out = {"doc": __doc__, "prompts": prompts, "models": {}}
    for name in ["roberta", "distilroberta", "distilbert", "bert"]:
        folder = os.path.join(OUT, name)
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, attn_implementation="eager").eval()
        model64 = AutoModelForSequenceClassification.from_pretrained(
            folder, attn_implementation="eager", dtype=torch.float64).eval()
        L = max_len(folder, model)
        fn = function_of(model.config)
        rows, f64_diff = [], 0.0
        for p in prompts:
            enc = tok(p, truncation=True, max_length=L, return_tensors="pt")
            with torch.no_grad():
                logits = model(**enc).logits[0]
                l64 = model64(**enc).logits[0]
            pr, pr64 = probs_of(logits, fn), probs_of(l64, fn)
            f64_diff = max(f64_diff, (pr.double() - pr64).abs().max().item())
            rows.append({"ids": enc["input_ids"][0].tolist(),
                         "logits": [float(x) for x in logits],
                         "probabilities": [float(x) for x in pr]})
        enc = tok(prompts, truncation=True, max_length=L, padding=True, return_tensors="pt")
        with torch.no_grad():
            pb = probs_of(model(**enc).logits, fn)
        batch_diff = max(abs(float(pb[i, j]) - rows[i]["probabilities"][j])
                         for i in range(len(prompts)) for j in range(pb.shape[1]))
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        out["models"][name] = {
            "architecture": model.config.architectures[0], "labels": labels, "max_len": L,
            "function": fn, "tokenizer": type(tok).__name__,
            "float64_max_abs_diff": f64_diff, "batch_vs_alone_max_abs_diff": batch_diff,
            "rows": rows,
        }
        print(name, type(tok).__name__, "max_len", L, fn, "f64", f64_diff, "batch", batch_diff,
              "lens", [len(r["ids"]) for r in rows])
    write_json(os.path.join(OUT, "golden.json"), out)


if __name__ == "__main__":
    build()
    golden()
    print("wrote", OUT)
