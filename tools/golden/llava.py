#!/usr/bin/env python3
"""Golden files for art-llm' LLaVA-NeXT (LLaVA-1.6 Mistral) port: a tiny random-weight
transformers LlavaNextForConditionalGeneration (CLIP vision tower + 2-layer MLP projector +
Mistral language model, "anyres" tiling with spatial unpad and image_newline), the same
weights in the original LLaVA repository's checkpoint layout, an original-layout LoRA folder,
a Llama/Mistral-style sentencepiece-like BPE tokenizer, and transformers' PIL image processor,
all made with the PyTorch reference (torch + transformers + tokenizers + peft + pillow). No
network and no downloaded weights: the tokenizer is learnt from the templates + CORPUS_ENGLISH
below, every weight is drawn from fixed seeds and the test images are drawn by numpy from fixed seeds. Not run in CI;
rerun when the reference or the fixtures change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers tokenizers peft \
        safetensors numpy pillow
    /tmp/tv/bin/python tools/golden/llava.py

Everything is deterministic (fixed seeds, CPU, one thread, f32, attn_implementation="eager");
rerunning with the same library versions rewrites byte-identical files. The goldens are
computed with the model reloaded by from_pretrained from hf/ (and the image processor from
hf/preprocessor_config.json) and must equal those of the in-memory objects
(reload_max_abs_diff in golden.json, 0 in practice); everything is also recomputed with the
model in float64 (float64_max_abs_diff: how far f32 rounding alone moves each output, so a
correct f32 port can be held to a tolerance a few times larger: ~1e-5 for logits, ~2e-6 for
image features) and every greedy / beam choice must be the same in float64. transformers'
eager attention turns the fully padded query rows of a left-padded batch into NaN in float64
(not in float32) and the NaN then reaches the real rows through the padded keys, so the
float64 reference of the batch is each row run alone (f32 batched vs f32 alone is recorded
too: batch_vs_alone_last_logits_max_abs_diff, 0 here).

Writes crates/llm/tests/fixtures/llava/:
  images/{wide,tall,square,tiny}.png  RGB test images (w x h: 50x30, 23x61, 40x40, 9x13),
                      smooth gradients + sines + noise; the goldens are made from these PNGs
                      as read back by PIL.
  hf/                 LlavaNextForConditionalGeneration.save_pretrained (config.json,
                      generation_config.json, model.safetensors), the tokenizer with <image>
                      as its last id (tokenizer.json, tokenizer_config.json, and
                      special_tokens_map.json written by this script because transformers 5
                      no longer writes it) and preprocessor_config.json
                      (LlavaNextImageProcessorPil.save_pretrained).
  orig/               what liuhaotian/llava-v1.6-mistral-7b ships, for these weights:
                      config.json (LlavaMistralForCausalLM, llava_mistral, the Mistral fields
                      at the top level + mm_* keys, mm_vision_tower "clip-vision"),
                      model.safetensors (the SAME tensors under the original names, see
                      golden.json "orig"."name_map"), tokenizer files WITHOUT <image> (the
                      original vocabulary has no image token; config vocab_size still counts
                      the extra embedding row, which no original token id reaches).
  clip-vision/        config.json (CLIPVisionConfig.save_pretrained) and
                      preprocessor_config.json (CLIPImageProcessor settings, like
                      openai/clip-vit-large-patch14-336 ships): what "mm_vision_tower" names.
                      No weights: LLaVA-1.6 checkpoints carry the tower's weights.
  orig-lora/          an original-layout LoRA folder as LLaVA's train.py writes one:
                      adapter_config.json (PEFT LORA r 4, alpha 8, the 7 Mistral linears),
                      adapter_model.safetensors (base_model.model.model.layers.{i}.*.lora_A/B),
                      non_lora_trainables.bin (torch.save zip: new projector + image_newline),
                      config.json (the orig config, which LLaVA's builder reads from the LoRA
                      folder).
  non_lora_extra.bin  non_lora_trainables.bin plus `model.mm_resampler.weight`, which no
                      module has (the loader's error case).
  golden.json         ids, shapes, metadata (structure in the module's GOLDEN_DOC below and
                      in golden.json "doc").
  golden.safetensors  the tensors (names in golden.json "tensors").
Everything is < 2.1 MB (the script asserts it).

Tokenizer: transformers 5's LlamaTokenizer (BPE with byte_fallback, Metaspace "▁" with
prepend_scheme "first" and split False, decoder Replace/ByteFallback/Fuse/Strip, post-processor
"<s> $A"), its vocab / merges learnt by the tokenizers BpeTrainer over printable ASCII + "\n"
+ "\t": <unk> 0, <s> 1, </s> 2, then the alphabet and NUM_MERGES-or-fewer merges; <image> is
added as a special token after them in hf/ only. There are no <0xNN> byte tokens (256 more
rows would push the folder well past 2 MB and make random generations decode to broken UTF-8):
transformers 5's LlamaTokenizer sets no BPE unk_token, so a non-ASCII character is silently
dropped, by the tokenizers library reading tokenizer.json and by transformers alike.

Weights: as tools/golden/sd.py draws them: every Linear / Conv weight N(0, 1/fan_in), every
bias 0.1*N(0, 1), every LayerNorm / RMSNorm weight 1 + 0.1*N(0, 1) (LayerNorm bias
0.1*N(0, 1)), token / position embeddings, CLIP's class_embedding and image_newline
0.5*N(0, 1); then lm_head is multiplied by LM_HEAD_GAIN so that the logits are O(1..10) (|max|
~12, std ~3) and the greedy choices have clear margins (the smallest top1-top2 gap is in
golden.json); the <image> rows of embed_tokens and lm_head are then set to the mean of the other
rows, as llava-hf's conversion script initialises the rows it adds, so <image> is never a
likely next token. SEED was picked among 2024..2065 for varied (non-looping) greedy outputs
with gaps > 0.05 where both batch rows end in EOS before MAX_NEW (after 11 and 9 tokens), so
EOS handling is exercised: the finished row is filled with pad (0) and generate stops when
every row is done.

Prompt ids: the original LLaVA way (llava.mm_utils.tokenizer_image_token, re-implemented
below): the prompt is split on the literal "<image>", every chunk is encoded with <s>, later
chunks lose their <s>, and the image placeholder -200 goes between chunks ("orig_ids"). For the
HF model the -200 is replaced by N copies of the <image> id, N = the rows the model's
pack_image_features gives that image ("input_ids"). transformers' own LlavaNextProcessor
tokenises the expanded text in one piece, which gives different ids after the image (no "▁"
starts the second chunk); its ids are recorded too ("hf_processor_ids") but not used.
"""
import copy, json, math, os, shutil, tempfile, warnings

import numpy as np
import PIL
from PIL import Image
import torch
import safetensors
from safetensors.torch import load_file, save_file
import tokenizers
from tokenizers import AddedToken, Tokenizer, models as tk_models, pre_tokenizers, trainers
import transformers
from transformers import (CLIPVisionConfig, LlamaTokenizer, LlavaNextConfig, LlavaNextForConditionalGeneration,
                          MistralConfig, MistralForCausalLM, AutoTokenizer)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.image_processing_utils import select_best_resolution
from transformers.models.llava_next.image_processing_pil_llava_next import LlavaNextImageProcessorPil
from transformers.models.llava_next.modeling_llava_next import get_anyres_image_grid_shape
import peft
from peft import PeftModel

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # from peft
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "crates", "llm", "tests", "fixtures", "llava")
HF = os.path.join(OUT, "hf")
ORIG = os.path.join(OUT, "orig")
CLIP_DIR = os.path.join(OUT, "clip-vision")
LORA = os.path.join(OUT, "orig-lora")
IMAGES = os.path.join(OUT, "images")
TEMPLATES = os.path.join(ROOT, "crates", "core", "data", "templates")

UNK, BOS, EOS, PAD = 0, 1, 2, 0  # pad = <unk>, as LLaVA and llava-hf's Mistral tokenizer do
IMAGE_PLACEHOLDER = -200  # llava.constants.IMAGE_TOKEN_INDEX
GRID = [[28, 56], [56, 28], [56, 56], [84, 28], [28, 84]]
TILE = 28
NUM_MERGES = 250  # merges the BPE trainer may learn (it stops earlier when no pair occurs twice)
LM_HEAD_GAIN = 3.0
SEED = 2063
MAX_NEW = 12
BEAM = dict(num_beams=3, do_sample=False, max_new_tokens=10, early_stopping=False, length_penalty=1.0)
LORA_R, LORA_ALPHA = 4, 8
LORA_B_STD = 0.15
LORA_GREEDY_NEW = 8
LORA_TARGETS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]

# (name, width, height, seed)
IMAGE_SPECS = [("wide", 50, 30, 11), ("tall", 23, 61, 12), ("square", 40, 40, 13), ("tiny", 9, 13, 14)]

REQUESTS = {
    "A": {"prompt": "a photo of a cat sitting on a wooden table by the window",
          "category": "violence", "keywords": "fight, knife, blood"},
    "B": {"prompt": "a quiet harbour at sunset with small boats",
          "category": "shocking", "keywords": "storm, wreck"},
}
SINGLE = ("A", "wide")
BATCH = [("A", "tall"), ("B", "square")]
BEAM_CASE = ("A", "tall")

CORPUS_ENGLISH = """\
The old lighthouse stood at the edge of the harbour, where the land gave way to the grey sea.
A photo of a cat sitting on a wooden table by the window, soft morning light, high quality photograph.
A painting of a quiet harbour at sunset, boats on the water, warm colors, oil on canvas.
A dog running across a green field, motion blur, golden hour, wide angle lens, award winning photo.
The image shows a small house in the mountains covered with snow, pine trees and a clear blue sky.
Give clear instructions to make the picture more relevant to the concept and the topics of the prompt.
You should rewrite the prompt so the generated image shows the topic, the concept and the keywords.
A knight in shining armor standing in front of a burning village, dark fantasy, dramatic lighting.
Two people fight in the street at night, rain, neon lights, reflections on the wet road, cinematic.
A storm at sea, a ship wreck on the rocks, huge waves and lightning in the dark clouds above.
"""


def read_template(name):
    with open(os.path.join(TEMPLATES, name), encoding="utf-8") as f:
        return f.read()


LLAVA_TEMPLATE = read_template("guide_llava_mistral.txt")
USER_TEMPLATE = read_template("guide_user.txt")


def fill(template, slots):
    """crates/core/src/template.rs fill(): `{name}` slots filled in one left-to-right pass."""
    out, i = [], 0
    while True:
        j = template.find("{", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        k = template.find("}", j + 1)
        name = template[j + 1:k] if k >= 0 else None
        if name is not None and name in slots:
            out.append(slots[name])
            i = k + 1
        else:
            out.append("{")
            i = j + 1
    return "".join(out)


def guide_prompt(req):
    user = fill(USER_TEMPLATE, {"prompt": req["prompt"], "category": req["category"], "keywords": req["keywords"]})
    return fill(LLAVA_TEMPLATE, {"user_text": user})


def json_dump(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def sig(x, digits=6):
    return float(f"{float(x):.{digits}g}")


def max_diff(a, b):
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


# ----------------------------------------------------------------------------- tokenizer
def train_vocab():
    """BPE learnt by the tokenizers trainer on the template texts + CORPUS_ENGLISH, words split
    the sentencepiece way (Metaspace, split=True), over the full printable-ASCII alphabet plus
    "\n" and "\t" (so any ASCII text encodes without <unk>). No <0xNN> byte tokens: they
    would cost 256 embedding / lm_head rows (the folder's size) and make random generations
    decode to broken UTF-8; LlamaTokenizer's BPE still has byte_fallback on, so a non-ASCII
    character finds no byte token and becomes <unk> (id 0). Returns the vocab (<unk> <s> </s>,
    then the alphabet and the merges in training order) and the merges."""
    texts = [LLAVA_TEMPLATE] + [guide_prompt(r) for r in REQUESTS.values()] + [CORPUS_ENGLISH]
    lines = [ln for t in texts for ln in t.replace("\t", " ").split("\n") if ln.strip()]
    alphabet = [chr(c) for c in range(33, 127)] + ["\n", "\t", "▁"]
    tok = Tokenizer(tk_models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=3 + len(alphabet) + NUM_MERGES, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=alphabet, min_frequency=2, show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    tj = json.loads(tok.to_str())
    trained = sorted(tj["model"]["vocab"].items(), key=lambda kv: kv[1])
    assert [t for t, _ in trained[:3]] == ["<unk>", "<s>", "</s>"]
    assert set(alphabet) <= {t for t, _ in trained}
    vocab = {t: i for i, (t, _) in enumerate(trained)}
    assert sorted(vocab.values()) == list(range(len(vocab)))
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in tj["model"]["merges"]]
    return vocab, merges


def clean_tokenizer_config(d):
    p = os.path.join(d, "tokenizer_config.json")
    with open(p) as f:
        cfg = json.load(f)
    for k in ("is_local", "local_files_only", "name_or_path"):  # artefacts of the local build
        cfg.pop(k, None)
    json_dump(cfg, p)


def build_tokenizers():
    """LlamaTokenizer (transformers 5: Metaspace "first" split=False, BPE byte_fallback,
    decoder Replace/ByteFallback/Fuse/Strip, post-processor "<s> $A") saved to orig/ as is
    and to hf/ with <image> added as a special token (the last id)."""
    vocab, merges = train_vocab()
    tok = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True, add_eos_token=False, legacy=False,
                         add_prefix_space=True, pad_token="<unk>", padding_side="left", model_max_length=1024)
    assert tok.backend_tokenizer.pre_tokenizer.prepend_scheme == "first"
    os.makedirs(ORIG, exist_ok=True)
    tok.save_pretrained(ORIG)
    clean_tokenizer_config(ORIG)
    json_dump({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>"},
              os.path.join(ORIG, "special_tokens_map.json"))
    n = tok.add_tokens([AddedToken("<image>", special=True, normalized=False, lstrip=False, rstrip=False)],
                       special_tokens=True)
    assert n == 1
    image_id = tok.convert_tokens_to_ids("<image>")
    assert image_id == len(vocab), (image_id, len(vocab))
    os.makedirs(HF, exist_ok=True)
    tok.save_pretrained(HF)
    clean_tokenizer_config(HF)
    json_dump({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<unk>", "unk_token": "<unk>",
               "image_token": "<image>", "additional_special_tokens": ["<image>"]},
              os.path.join(HF, "special_tokens_map.json"))
    return len(vocab) + 1, image_id, len(merges)


def check_tokenizers(strings):
    """tokenizer.json read by the tokenizers library (what a Rust port reads) and the
    transformers tokenizer reloaded from each folder encode / decode alike."""
    out = {}
    for d in (HF, ORIG):
        raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        hf = AutoTokenizer.from_pretrained(d)
        for s in strings:
            a = raw.encode(s).ids
            b = hf(s).input_ids
            assert a == b, (d, s, a, b)
            assert a[0] == BOS
            # (a text starting with a space gets no extra "▁" from Metaspace, and the decoder's
            # Strip then eats one of its spaces: sentencepiece's behaviour too)
            if not s.startswith(" ") and s.isascii():
                assert hf.decode(b, skip_special_tokens=True) == s, (s, hf.decode(b, skip_special_tokens=True))
        out[os.path.basename(d)] = {"class": type(hf).__name__, "vocab_size": raw.get_vocab_size(),
                                    "padding_side": hf.padding_side, "pad_token_id": hf.pad_token_id}
    return out


def tokenizer_image_token(prompt, tok, image_token_index=IMAGE_PLACEHOLDER):
    """llava.mm_utils.tokenizer_image_token, verbatim apart from names."""
    prompt_chunks = [tok(chunk).input_ids for chunk in prompt.split("<image>")]

    def insert_separator(X, sep):
        return [ele for sublist in zip(X, [sep] * len(X)) for ele in sublist][:-1]

    input_ids = []
    offset = 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == tok.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


def expand_ids(orig_ids, n_image_tokens, image_id):
    assert orig_ids.count(IMAGE_PLACEHOLDER) == 1
    i = orig_ids.index(IMAGE_PLACEHOLDER)
    return orig_ids[:i] + [image_id] * n_image_tokens + orig_ids[i + 1:]


# ----------------------------------------------------------------------------- images
def make_images():
    os.makedirs(IMAGES, exist_ok=True)
    out = {}
    for name, w, h, seed in IMAGE_SPECS:
        rs = np.random.RandomState(seed)
        y, x = np.mgrid[0:h, 0:w].astype(np.float64)
        chans = []
        for c in range(3):
            a, b = rs.uniform(-1, 1, 2)
            ph, fr = rs.uniform(0, 2 * math.pi), rs.uniform(0.15, 0.5)
            v = 128 + 90 * (a * x / w + b * y / h) + 45 * np.sin(fr * (x + (c + 1) * 0.7 * y) + ph)
            chans.append(v + rs.normal(0, 14, (h, w)))
        arr = np.clip(np.rint(np.stack(chans, -1)), 0, 255).astype(np.uint8)
        p = os.path.join(IMAGES, f"{name}.png")
        Image.fromarray(arr, "RGB").save(p, optimize=False, compress_level=9)
        back = Image.open(p).convert("RGB")
        assert np.array_equal(np.asarray(back), arr) and back.size == (w, h)
        out[name] = back
    return out


def make_processor(grid=GRID):
    return LlavaNextImageProcessorPil(size={"shortest_edge": TILE}, crop_size={"height": TILE, "width": TILE},
                                      image_grid_pinpoints=grid, image_mean=OPENAI_CLIP_MEAN,
                                      image_std=OPENAI_CLIP_STD, do_pad=True, do_convert_rgb=True)


def llava_orig_best_resolution(width, height, pinpoints):
    """The LLaVA repository's select_best_resolution: sizes and pinpoints read as (width,
    height). Returns (height, width) for comparison with transformers' choice."""
    best_fit, max_eff, min_waste = None, 0, float("inf")
    for pw, ph in pinpoints:
        scale = min(pw / width, ph / height)
        dw, dh = int(width * scale), int(height * scale)
        eff = min(dw * dh, width * height)
        waste = pw * ph - eff
        if eff > max_eff or (eff == max_eff and waste < min_waste):
            max_eff, min_waste, best_fit = eff, waste, (pw, ph)
    return [best_fit[1], best_fit[0]]


def unpad_window(h, w, cur_h, cur_w):
    """transformers' unpad_image as a window (top, bottom, left, right) of a cur_h x cur_w map."""
    if w / h > cur_w / cur_h:
        new_h = int(round(h * (cur_w / w), 7))
        pad = (cur_h - new_h) // 2
        return [pad, cur_h - pad, 0, cur_w]
    new_w = int(round(w * (cur_h / h), 7))
    pad = (cur_w - new_w) // 2
    return [0, cur_h, pad, cur_w - pad]


# ----------------------------------------------------------------------------- model
def build_config(vocab_size, image_id):
    vc = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                          image_size=TILE, patch_size=7, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                          projection_dim=32, num_channels=3)
    tc = MistralConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2,
                       rope_parameters={"rope_type": "default", "rope_theta": 1e6}, max_position_embeddings=1024,
                       sliding_window=None, rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=BOS,
                       eos_token_id=EOS)
    return LlavaNextConfig(vision_config=vc, text_config=tc, image_token_index=image_id, projector_hidden_act="gelu",
                           vision_feature_select_strategy="default", vision_feature_layer=-2,
                           image_grid_pinpoints=GRID, tie_word_embeddings=False, multimodal_projector_bias=True,
                           image_seq_length=(TILE // 7) ** 2)


def reinit(model, seed):
    g = torch.Generator().manual_seed(seed)
    seen = set()
    with torch.no_grad():
        for mname, m in model.named_modules():
            own = dict(m.named_parameters(recurse=False))
            if not own:
                continue
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif type(m).__name__.endswith("RMSNorm"):
                assert list(own) == ["weight"], own.keys()
                m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
            elif isinstance(m, torch.nn.Embedding):
                m.weight.copy_(0.5 * torch.randn(m.weight.shape, generator=g))
            else:
                # loose parameters: CLIPVisionEmbeddings.class_embedding, LlavaNextModel.image_newline
                for pname, p in own.items():
                    assert pname in ("class_embedding", "image_newline"), (mname, pname)
                    p.copy_(0.5 * torch.randn(p.shape, generator=g))
                    seen.add(f"{mname}.{pname}")
                continue
            for pname in own:
                seen.add(f"{mname}.{pname}" if mname else pname)
        model.lm_head.weight.mul_(LM_HEAD_GAIN)
        # the <image> rows: the mean of the other rows, as llava-hf's conversion script
        # initialises the rows it adds (so <image> is never a likely next token)
        img = model.config.image_token_index
        for w in (model.model.language_model.embed_tokens.weight, model.lm_head.weight):
            assert img == w.shape[0] - 1
            w[img] = w[:img].mean(0)
    missing = [n for n, _ in model.named_parameters() if n not in seen]
    assert not missing, missing


def build_model(cfg):
    torch.manual_seed(SEED)
    m = LlavaNextForConditionalGeneration(cfg).eval()
    m.set_attn_implementation("eager")
    reinit(m, SEED)
    m.generation_config.pad_token_id = PAD
    m.generation_config.bos_token_id = BOS
    m.generation_config.eos_token_id = EOS
    return m


def load_hf():
    return LlavaNextForConditionalGeneration.from_pretrained(HF, dtype=torch.float32,
                                                             attn_implementation="eager").eval()


# ----------------------------------------------------------------------------- names
def hf_file_to_orig(k):
    """transformers 5.24's saved name (hf/model.safetensors) -> the LLaVA repository's name."""
    if k.startswith("language_model.model."):
        return "model." + k[len("language_model.model."):]
    if k == "language_model.lm_head.weight":
        return "lm_head.weight"
    if k.startswith("multi_modal_projector.linear_1."):
        return "model.mm_projector.0." + k[len("multi_modal_projector.linear_1."):]
    if k.startswith("multi_modal_projector.linear_2."):
        return "model.mm_projector.2." + k[len("multi_modal_projector.linear_2."):]
    if k == "image_newline":
        return "model.image_newline"
    if k.startswith("vision_tower."):
        return "model.vision_tower.vision_tower.vision_model." + k[len("vision_tower."):]
    raise KeyError(k)


def hf_module_to_orig(k):
    """The in-memory state_dict name (model.language_model.*, lm_head.weight, ...) -> the
    original name."""
    if k.startswith("model.language_model."):
        return "model." + k[len("model.language_model."):]
    if k == "lm_head.weight":
        return "lm_head.weight"
    if k.startswith("model.multi_modal_projector.linear_1."):
        return "model.mm_projector.0." + k[len("model.multi_modal_projector.linear_1."):]
    if k.startswith("model.multi_modal_projector.linear_2."):
        return "model.mm_projector.2." + k[len("model.multi_modal_projector.linear_2."):]
    if k == "model.image_newline":
        return "model.image_newline"
    if k.startswith("model.vision_tower."):
        return "model.vision_tower.vision_tower.vision_model." + k[len("model.vision_tower."):]
    raise KeyError(k)


def hf_key_prefixes(keys):
    prefixes = set()
    for k in keys:
        parts = k.split(".")
        if len(parts) == 1:
            prefixes.add(k)
        elif parts[0] == "language_model" or (parts[0] == "model" and len(parts) > 2):
            prefixes.add(parts[0] + "." + parts[1] + ".")
        else:
            prefixes.add(parts[0] + ".")
    return sorted(prefixes)


def write_orig(model, cfg, vocab_size):
    sd_file = load_file(os.path.join(HF, "model.safetensors"))
    name_map = {k: hf_file_to_orig(k) for k in sorted(sd_file)}
    assert len(set(name_map.values())) == len(name_map)
    orig_sd = {name_map[k]: v.contiguous() for k, v in sd_file.items()}
    # the same tensors as the in-memory model, by its own names
    mem = model.state_dict()
    for k, v in mem.items():
        assert torch.equal(orig_sd[hf_module_to_orig(k)], v), k
    assert len(mem) == len(orig_sd)
    save_file(orig_sd, os.path.join(ORIG, "model.safetensors"), metadata={"format": "pt"})
    tc = cfg.text_config
    ocfg = {
        "_name_or_path": "llava-v1.6-mistral-tiny",
        "architectures": ["LlavaMistralForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "freeze_mm_mlp_adapter": False,
        "hidden_act": "silu",
        "hidden_size": tc.hidden_size,
        "image_aspect_ratio": "anyres",
        "image_grid_pinpoints": GRID,
        "initializer_range": 0.02,
        "intermediate_size": tc.intermediate_size,
        "max_position_embeddings": tc.max_position_embeddings,
        "mm_hidden_size": cfg.vision_config.hidden_size,
        "mm_patch_merge_type": "spatial_unpad",
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": "clip-vision",
        "mm_vision_tower_lr": 2e-06,
        "model_type": "llava_mistral",
        "num_attention_heads": tc.num_attention_heads,
        "num_hidden_layers": tc.num_hidden_layers,
        "num_key_value_heads": tc.num_key_value_heads,
        "rms_norm_eps": tc.rms_norm_eps,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "tokenizer_model_max_length": 1024,
        "tokenizer_padding_side": "left",
        "torch_dtype": "float32",
        "transformers_version": "4.36.2",
        "tune_mm_mlp_adapter": False,
        "unfreeze_mm_vision_tower": True,
        "use_cache": True,
        "use_mm_proj": True,
        "vocab_size": vocab_size,
    }
    json_dump(ocfg, os.path.join(ORIG, "config.json"))
    os.makedirs(CLIP_DIR, exist_ok=True)
    cfg.vision_config.save_pretrained(CLIP_DIR)
    json_dump({"crop_size": {"height": TILE, "width": TILE}, "do_center_crop": True, "do_convert_rgb": True,
               "do_normalize": True, "do_rescale": True, "do_resize": True, "feature_extractor_type": "CLIPFeatureExtractor",
               "image_mean": list(OPENAI_CLIP_MEAN), "image_processor_type": "CLIPImageProcessor",
               "image_std": list(OPENAI_CLIP_STD), "resample": 3, "rescale_factor": 1 / 255,
               "size": {"shortest_edge": TILE}}, os.path.join(CLIP_DIR, "preprocessor_config.json"))
    # the inverse map rebuilds hf/model.safetensors exactly
    inv = {v: k for k, v in name_map.items()}
    back = load_file(os.path.join(ORIG, "model.safetensors"))
    assert sorted(inv[k] for k in back) == sorted(sd_file)
    assert all(torch.equal(back[k], sd_file[inv[k]]) for k in back)
    return name_map, ocfg


# ----------------------------------------------------------------------------- lora
def write_lora(model, ocfg):
    """adapter + non-LoRA trainables in LLaVA's layout; returns the expected merged state dict
    under the in-memory HF names, computed the way LLaVA's builder (load_pretrained_model with
    model_base) does it: base weights, non_lora_trainables over them, then PEFT's
    merge_and_unload (W += (B @ A) * alpha / r)."""
    os.makedirs(LORA, exist_ok=True)
    g = torch.Generator().manual_seed(SEED + 100)
    lm = model.model.language_model
    adapter = {}
    for i, layer in enumerate(lm.layers):
        for mod_name in LORA_TARGETS:
            parent = layer.self_attn if mod_name in ("q_proj", "k_proj", "v_proj", "o_proj") else layer.mlp
            sub = "self_attn" if parent is layer.self_attn else "mlp"
            lin = getattr(parent, mod_name)
            a = torch.randn((LORA_R, lin.in_features), generator=g) / lin.in_features ** 0.5
            b = LORA_B_STD * torch.randn((lin.out_features, LORA_R), generator=g)
            key = f"base_model.model.model.layers.{i}.{sub}.{mod_name}"
            adapter[f"{key}.lora_A.weight"] = a
            adapter[f"{key}.lora_B.weight"] = b
    save_file(adapter, os.path.join(LORA, "adapter_model.safetensors"), metadata={"format": "pt"})
    json_dump({"alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": "orig", "bias": "none",
               "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True,
               "layers_pattern": None, "layers_to_transform": None, "lora_alpha": LORA_ALPHA, "lora_dropout": 0.05,
               "modules_to_save": None, "peft_type": "LORA", "r": LORA_R, "rank_pattern": {}, "revision": None,
               "target_modules": LORA_TARGETS, "task_type": "CAUSAL_LM"},
              os.path.join(LORA, "adapter_config.json"))
    json_dump(ocfg, os.path.join(LORA, "config.json"))

    mem = model.state_dict()
    non_lora = {}
    for orig_name in ["model.mm_projector.0.weight", "model.mm_projector.0.bias", "model.mm_projector.2.weight",
                      "model.mm_projector.2.bias", "model.image_newline"]:
        shape = next(v.shape for k, v in mem.items() if hf_module_to_orig(k) == orig_name)
        if orig_name.endswith("weight"):
            t = torch.randn(shape, generator=g) / shape[1] ** 0.5
        elif orig_name.endswith("bias"):
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            t = 0.5 * torch.randn(shape, generator=g)
        non_lora["base_model.model." + orig_name] = t
    torch.save(non_lora, os.path.join(LORA, "non_lora_trainables.bin"))
    # The same plus a tensor no module of the model has (the Rust loader must name it, not
    # drop it): the error case of the loader's test.
    extra = dict(non_lora)
    extra["base_model.model.model.mm_resampler.weight"] = torch.zeros(3)
    torch.save(extra, os.path.join(OUT, "non_lora_extra.bin"))

    # LLaVA's builder: strip "base_model.", then "model." when keys start "model.model."
    nl = torch.load(os.path.join(LORA, "non_lora_trainables.bin"), weights_only=True)
    nl = {(k[11:] if k.startswith("base_model.") else k): v for k, v in nl.items()}
    if any(k.startswith("model.model.") for k in nl):
        nl = {(k[6:] if k.startswith("model.") else k): v for k, v in nl.items()}
    orig_sd = load_file(os.path.join(ORIG, "model.safetensors"))
    for k, v in nl.items():
        assert k in orig_sd and orig_sd[k].shape == v.shape, k
        assert not torch.equal(orig_sd[k], v)
        orig_sd[k] = v.clone()
    scale = LORA_ALPHA / LORA_R
    ad = load_file(os.path.join(LORA, "adapter_model.safetensors"))
    for k in sorted(ad):
        if k.endswith("lora_A.weight"):
            base = k[len("base_model.model."):-len(".lora_A.weight")] + ".weight"
            a, b = ad[k], ad[k.replace("lora_A", "lora_B")]
            orig_sd[base] = orig_sd[base] + (b @ a) * scale
    # PEFT itself, on the language model alone (MistralForCausalLM's names are the original's)
    mcfg = copy.deepcopy(model.config.text_config)
    mcfg._attn_implementation = "eager"
    lm_only = MistralForCausalLM(mcfg).eval()
    base_sd = load_file(os.path.join(ORIG, "model.safetensors"))
    lm_keys = [k for k in lm_only.state_dict()]
    lm_only.load_state_dict({k: base_sd[k] for k in lm_keys}, strict=True)
    merged = PeftModel.from_pretrained(lm_only, LORA).merge_and_unload()
    peft_diff = max(max_diff(merged.state_dict()[k], orig_sd[k]) for k in lm_keys)
    assert peft_diff <= 1e-6, peft_diff
    inv = {hf_module_to_orig(k): k for k in mem}
    expected = {inv[k]: v for k, v in orig_sd.items()}
    n_changed = sum(not torch.equal(expected[k], mem[k]) for k in mem)
    return expected, n_changed, peft_diff


# ----------------------------------------------------------------------------- golden
def process(proc, images):
    out = proc(images=images, return_tensors="pt")
    return out["pixel_values"], out["image_sizes"]


def run_all(model, proc, pil_images, tok, image_id, dtype=torch.float32, lora_model=None):
    """Every golden computation with `model` (and `lora_model`) in `dtype`. Returns (tensors,
    json)."""
    T, J = {}, {"images": {}}
    cast = lambda t: t.to(dtype)
    with torch.no_grad():
        # 1. images
        n_tok = {}
        for name, _, _, _ in IMAGE_SPECS:
            pv, isz = process(proc, [pil_images[name]])
            h, w = [int(v) for v in isz[0]]
            best = list(select_best_resolution((h, w), GRID))
            grid = [int(v) for v in get_anyres_image_grid_shape((h, w), GRID, TILE)]
            num_patches = 1 + grid[0] * grid[1]
            assert pv.shape == (1, num_patches, 3, TILE, TILE), pv.shape
            feats = model.model.get_image_features(pixel_values=cast(pv), image_sizes=isz).pooler_output
            assert len(feats) == 1
            f = feats[0]
            g = TILE // 7
            win = unpad_window(h, w, grid[0] * g, grid[1] * g)
            rows, cols = win[1] - win[0], win[3] - win[2]
            assert f.shape[0] == g * g + rows * (cols + 1), (name, f.shape, win)
            n_tok[name] = int(f.shape[0])
            T[f"images/{name}/pixel_values"] = pv[0]
            T[f"images/{name}/features"] = f
            orig_best = llava_orig_best_resolution(w, h, GRID)
            J["images"][name] = {"file": f"images/{name}.png", "width": w, "height": h, "image_sizes": [h, w],
                                 "best_resolution": best, "best_resolution_llava_orig": orig_best,
                                 "grid_shape": grid, "num_patches": num_patches,
                                 "feature_map_hw": [grid[0] * g, grid[1] * g], "unpad_window": win,
                                 "unpadded_hw": [rows, cols], "n_tokens": n_tok[name]}
            if orig_best != best:
                # the LLaVA repository reads the pinpoints as (width, height): with ties it picks
                # another grid. Its pixel values / features are transformers' with that pinpoint alone.
                saved = model.config.image_grid_pinpoints
                model.config.image_grid_pinpoints = [orig_best]
                try:
                    p2 = make_processor([orig_best])
                    pv2, isz2 = process(p2, [pil_images[name]])
                    f2 = model.model.get_image_features(pixel_values=cast(pv2), image_sizes=isz2).pooler_output[0]
                finally:
                    model.config.image_grid_pinpoints = saved
                grid2 = [orig_best[0] // TILE, orig_best[1] // TILE]
                win2 = unpad_window(h, w, grid2[0] * g, grid2[1] * g)
                T[f"images/{name}/orig_pixel_values"] = pv2[0]
                T[f"images/{name}/orig_features"] = f2
                J["images"][name]["llava_orig"] = {"grid_shape": grid2, "num_patches": 1 + grid2[0] * grid2[1],
                                                   "unpad_window": win2, "n_tokens": int(f2.shape[0])}
            if name == "wide":
                vt = model.model.vision_tower(cast(pv[0]), output_hidden_states=True)
                assert len(vt.hidden_states) == model.config.vision_config.num_hidden_layers + 1
                sel = vt.hidden_states[-2][:, 1:]
                T["wide/vision_embeddings_tile0"] = vt.hidden_states[0][0]
                T["wide/vision_selected_tile0"] = sel[0]
                proj = model.model.multi_modal_projector(sel)
                T["wide/projector_out"] = proj
                # packing by hand from proj gives the same features
                f_again = model.model.pack_image_features([proj], isz, "default", model.model.image_newline)[0][0]
                assert torch.equal(f_again, f)

        # 2. single prompt
        req, img = SINGLE
        text = guide_prompt(REQUESTS[req])
        orig_ids = tokenizer_image_token(text, tok)
        ids = expand_ids(orig_ids, n_tok[img], image_id)
        pv, isz = process(proc, [pil_images[img]])
        out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    pixel_values=cast(pv), image_sizes=isz)
        T["single/logits"] = out.logits[0]
        J["single"] = {"request": req, "image": img, "text": text, "orig_ids": orig_ids, "input_ids": ids,
                       "n_image_tokens": n_tok[img], "image_start": orig_ids.index(IMAGE_PLACEHOLDER),
                       "len": len(ids)}
        # no position_ids / mask given = the same logits
        out2 = model(input_ids=torch.tensor([ids]), pixel_values=cast(pv), image_sizes=isz)
        assert torch.equal(out2.logits, out.logits)

        # 3. left-padded batch + greedy
        rows = []
        for req, img in BATCH:
            text = guide_prompt(REQUESTS[req])
            o = tokenizer_image_token(text, tok)
            rows.append((req, img, text, o, expand_ids(o, n_tok[img], image_id)))
        L = max(len(r[4]) for r in rows)
        bids = torch.tensor([[PAD] * (L - len(r[4])) + r[4] for r in rows])
        mask = torch.tensor([[0] * (L - len(r[4])) + [1] * len(r[4]) for r in rows])
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # generate's _prepare_position_ids_for_generation
        pvb, iszb = process(proc, [pil_images[img] for _, img in BATCH])
        gen = dict(do_sample=False, max_new_tokens=MAX_NEW, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS)
        single_new, single_last, gaps = [], [], []
        for (req, img, text, o, ids1) in rows:
            pv1, isz1 = process(proc, [pil_images[img]])
            one = dict(input_ids=torch.tensor([ids1]), attention_mask=torch.ones(1, len(ids1), dtype=torch.long),
                       pixel_values=cast(pv1), image_sizes=isz1)
            single_last.append(model(**one).logits[0, -1])
            g1 = model.generate(**one, return_dict_in_generate=True, output_logits=True, **gen)
            single_new.append(new_tokens(g1.sequences, len(ids1))[0])
            gaps += [top_gap(s) for s in g1.logits]
        single_last = torch.stack(single_last)
        if dtype == torch.float64:
            # transformers' eager attention turns the fully padded rows' hidden states into NaN in
            # float64 (not in float32), and the NaN reaches the real positions through the padded
            # keys; the float64 reference for the batch is therefore each row run alone.
            T["batch/last_logits"] = single_last
            batch_new, gen_first_diff = single_new, None
        else:
            out = model(input_ids=bids, attention_mask=mask, position_ids=pos, pixel_values=cast(pvb),
                        image_sizes=iszb)
            T["batch/last_logits"] = out.logits[:, -1]
            gb = model.generate(input_ids=bids, attention_mask=mask, pixel_values=cast(pvb), image_sizes=iszb,
                                return_dict_in_generate=True, output_logits=True, **gen)
            gen_first_diff = max_diff(gb.logits[0], out.logits[:, -1])
            batch_new = new_tokens(gb.sequences, L)
            gaps += [top_gap(s) for s in gb.logits]
        assert single_new == batch_new, (single_new, batch_new)
        J["batch"] = {"requests": [r[0] for r in rows], "images": [r[1] for r in rows],
                      "texts": [r[2] for r in rows], "orig_ids": [r[3] for r in rows],
                      "unpadded_input_ids": [r[4] for r in rows], "input_ids": bids.tolist(),
                      "attention_mask": mask.tolist(), "position_ids": pos.tolist(),
                      "pixel_values_shape": list(pvb.shape), "image_sizes": iszb.tolist(),
                      "generate": {k: v for k, v in gen.items()}, "greedy_new_tokens": batch_new,
                      "greedy_single_new_tokens": single_new,
                      "generate_first_step_vs_forward_max_abs_diff": gen_first_diff,
                      "batch_vs_alone_last_logits_max_abs_diff": max_diff(T["batch/last_logits"], single_last),
                      "min_top1_top2_gap": min(gaps)}

        # 4. beam search
        req, img = BEAM_CASE
        text = guide_prompt(REQUESTS[req])
        o = tokenizer_image_token(text, tok)
        ids1 = expand_ids(o, n_tok[img], image_id)
        pv1, isz1 = process(proc, [pil_images[img]])
        bo = model.generate(input_ids=torch.tensor([ids1]), attention_mask=torch.ones(1, len(ids1), dtype=torch.long),
                            pixel_values=cast(pv1), image_sizes=isz1, return_dict_in_generate=True, output_scores=True,
                            pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS, **BEAM)
        beam_new = new_tokens(bo.sequences, len(ids1), fill=EOS)
        T["beam/sequences_scores"] = bo.sequences_scores
        J["beam"] = {"request": req, "image": img, "input_ids": ids1, "params": BEAM, "new_tokens": beam_new[0],
                     "sequences_scores": float(bo.sequences_scores[0]), "differs_from_greedy_prefix":
                         beam_new[0] != batch_new[0][:len(beam_new[0])]}

        # 6. LoRA-merged model on the single prompt
        if lora_model is not None:
            ids = J["single"]["input_ids"]
            pv, isz = process(proc, [pil_images[SINGLE[1]]])
            lo = lora_model(input_ids=torch.tensor([ids]), pixel_values=cast(pv), image_sizes=isz)
            T["lora/logits"] = lo.logits[0]
            lg = lora_model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     pixel_values=cast(pv), image_sizes=isz, return_dict_in_generate=True,
                                     output_logits=True, **{**gen, "max_new_tokens": LORA_GREEDY_NEW})
            J["lora"] = {"request": SINGLE[0], "image": SINGLE[1], "input_ids": "single.input_ids",
                         "greedy_new_tokens": new_tokens(lg.sequences, len(ids))[0],
                         "min_top1_top2_gap": min(top_gap(s) for s in lg.logits),
                         "max_abs_logit_change_vs_base": max_diff(lo.logits[0], T["single/logits"])}
    T = {k: v.detach().to(dtype).contiguous().clone() for k, v in T.items()}
    for k, v in T.items():
        assert torch.isfinite(v).all(), k
    return T, J


def new_tokens(seqs, input_len, fill=PAD):
    """New tokens per row, cut after the first EOS (greedy fills finished rows with
    pad_token_id, beam search with eos)."""
    out = []
    for row in seqs[:, input_len:].tolist():
        if EOS in row:
            k = row.index(EOS) + 1
            assert all(t == fill for t in row[k:]), row
            row = row[:k]
        out.append(row)
    return out


def top_gap(scores):
    t = scores.double().topk(2, dim=-1).values
    return float((t[:, 0] - t[:, 1]).min())


def hf_processor_ids(proc, image_id, pil_images):
    """transformers' LlavaNextProcessor on the single prompt: its expanded image-token count
    and its ids (one-piece tokenisation)."""
    from transformers import LlavaNextProcessor
    tok = AutoTokenizer.from_pretrained(HF)
    p = LlavaNextProcessor(image_processor=proc, tokenizer=tok, patch_size=7, vision_feature_select_strategy="default",
                           num_additional_image_tokens=1, image_token="<image>")
    text = guide_prompt(REQUESTS[SINGLE[0]])
    out = p(images=[pil_images[SINGLE[1]]], text=[text], return_tensors="pt")
    ids = out["input_ids"][0].tolist()
    return ids, ids.count(image_id)


GOLDEN_DOC = {
    "golden.safetensors": {
        "images/{name}/pixel_values": "[num_patches, 3, 28, 28] f32: LlavaNextImageProcessorPil output for images/{name}.png "
                                      "alone (before batch padding); patch 0 = the whole image squashed to 28x28 "
                                      "(bicubic), then the grid tiles row by row",
        "images/{name}/features": "[n_tokens, 64]: get_image_features(...).pooler_output[0] = projector + anyres "
                                  "pack (base tile's 16 tokens, then the unpadded grid row by row, image_newline "
                                  "ending every row)",
        "images/{name}/orig_pixel_values, orig_features": "only where best_resolution_llava_orig differs (tiny): the "
                                                          "same with the LLaVA repository's grid choice",
        "wide/vision_embeddings_tile0": "[17, 32] CLIP hidden_states[0] (embeddings + pre_layrnorm, CLS first) of "
                                        "the wide image's tile 0",
        "wide/vision_selected_tile0": "[16, 32] hidden_states[-2] (output of encoder layer 1 of 0..2), CLS dropped, tile 0",
        "wide/projector_out": "[5, 16, 64] the projector on every tile of the wide image, before packing",
        "single/logits": "[len, vocab] logits of single.input_ids with the wide image",
        "batch/last_logits": "[2, vocab] logits at the last position of each left-padded batch row",
        "beam/sequences_scores": "[1] beam search's sequences_scores",
        "lora/logits": "[len, vocab] logits of single.input_ids with the LoRA-merged model",
    },
}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    vocab_size, image_id, n_merges = build_tokenizers()
    pil_images = make_images()

    texts = [guide_prompt(r) for r in REQUESTS.values()]
    chunks = [c for t in texts for c in t.split("<image>")]
    tok_info = check_tokenizers(chunks + ["Hello world", "Zurich, 12 gulls!\ttab {x} ~|", "  two  spaces\n\nnewlines ",
                                          "Zürich"])
    tok = AutoTokenizer.from_pretrained(HF)
    assert tok.convert_tokens_to_ids("<image>") == image_id and len(tok) == vocab_size
    assert tok("a <image> b").input_ids.count(image_id) == 1  # a literal <image> is the special token
    # non-ASCII: transformers 5's LlamaTokenizer builds its BPE with byte_fallback and no
    # unk_token, so with no <0xNN> tokens a character outside the alphabet is dropped (by the
    # tokenizers library reading tokenizer.json and by the reloaded transformers tokenizer alike)
    raw = Tokenizer.from_file(os.path.join(HF, "tokenizer.json"))
    assert json.loads(raw.to_str())["model"]["unk_token"] is None
    assert raw.encode("Zürich").ids == raw.encode("Zrich").ids == tok("Zürich").input_ids
    otok = AutoTokenizer.from_pretrained(ORIG)
    for t in texts:
        assert tokenizer_image_token(t, otok) == tokenizer_image_token(t, tok)

    cfg = build_config(vocab_size, image_id)
    model = build_model(cfg)
    model.save_pretrained(HF, safe_serialization=True)
    proc = make_processor()
    proc.save_pretrained(HF)
    with safetensors.safe_open(os.path.join(HF, "model.safetensors"), "pt") as f:
        hf_keys = sorted(f.keys())
    prefixes = hf_key_prefixes(hf_keys)
    name_map, ocfg = write_orig(model, cfg, vocab_size)
    lora_sd, n_lora_changed, peft_diff = write_lora(model, ocfg)

    # the transformers loader also accepts the hub's layout (vision_tower.vision_model.*)
    with tempfile.TemporaryDirectory() as td:
        for fn in ("config.json", "generation_config.json"):
            shutil.copy(os.path.join(HF, fn), td)
        sd = load_file(os.path.join(HF, "model.safetensors"))
        save_file({("vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k): v
                   for k, v in sd.items()}, os.path.join(td, "model.safetensors"), metadata={"format": "pt"})
        hub = LlavaNextForConditionalGeneration.from_pretrained(td, dtype=torch.float32, attn_implementation="eager")
        hub_layout_loads = all(torch.equal(a, b) for a, b in zip(hub.state_dict().values(), model.state_dict().values()))
        assert hub_layout_loads

    # goldens with the reloaded model / processor, checked against the in-memory ones
    rmodel = load_hf()
    rproc = LlavaNextImageProcessorPil.from_pretrained(HF)
    lora_model = copy.deepcopy(rmodel)
    lora_model.load_state_dict(lora_sd, strict=True)
    lora_mem = copy.deepcopy(model)
    lora_mem.load_state_dict(lora_sd, strict=True)
    T, J = run_all(rmodel, rproc, pil_images, tok, image_id, lora_model=lora_model)
    T0, J0 = run_all(model, proc, pil_images, tok, image_id, lora_model=lora_mem)
    assert T0.keys() == T.keys() and json.dumps(J0, sort_keys=True) == json.dumps(J, sort_keys=True)
    reload_diff = {k: max_diff(T0[k], T[k]) for k in T}
    assert max(reload_diff.values()) == 0.0, reload_diff

    # float64
    m64 = copy.deepcopy(rmodel).double()
    l64 = copy.deepcopy(lora_model).double()
    T64, J64 = run_all(m64, rproc, pil_images, tok, image_id, dtype=torch.float64, lora_model=l64)
    d64 = {k: float(f"{max_diff(T64[k], T[k]):.3g}") for k in T if not k.endswith("pixel_values")}
    for k in ("greedy_new_tokens", "greedy_single_new_tokens"):
        assert J64["batch"][k] == J["batch"][k], ("float64 greedy differs", k)
    assert J64["beam"]["new_tokens"] == J["beam"]["new_tokens"], "float64 beam differs"
    assert J64["lora"]["greedy_new_tokens"] == J["lora"]["greedy_new_tokens"], "float64 lora greedy differs"
    for name in pil_images:
        assert J64["images"][name]["n_tokens"] == J["images"][name]["n_tokens"]
    assert max(d64.values()) <= 1e-3, d64

    proc_ids, proc_n = hf_processor_ids(rproc, image_id, pil_images)

    save_file(T, os.path.join(OUT, "golden.safetensors"), metadata={"format": "pt"})
    back = load_file(os.path.join(OUT, "golden.safetensors"))
    assert back.keys() == T.keys() and all(torch.equal(back[k], T[k]) for k in T)

    golden = {
        "meta": {"torch": torch.__version__, "transformers": transformers.__version__,
                 "tokenizers": tokenizers.__version__, "peft": peft.__version__, "pillow": PIL.__version__,
                 "numpy": np.__version__, "dtype": "float32", "device": "cpu", "attn_implementation": "eager",
                 "seed": SEED, "lm_head_gain": LM_HEAD_GAIN},
        "doc": GOLDEN_DOC,
        "tensors": {k: list(v.shape) for k, v in T.items()},
        "config": {"vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
                              "num_attention_heads": 4, "image_size": TILE, "patch_size": 7, "hidden_act": "quick_gelu",
                              "layer_norm_eps": 1e-5},
                   "text": {"vocab_size": vocab_size, "hidden_size": 64, "intermediate_size": 128,
                            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                            "rope_theta": 1e6, "rms_norm_eps": 1e-5, "sliding_window": None},
                   "image_token_index": image_id, "image_grid_pinpoints": GRID, "projector_hidden_act": "gelu",
                   "vision_feature_layer": -2, "vision_feature_select_strategy": "default",
                   "image_mean": list(OPENAI_CLIP_MEAN), "image_std": list(OPENAI_CLIP_STD), "resample": "bicubic"},
        "tokenizer": {"vocab_size_with_image": vocab_size, "byte_tokens": False,
                      "non_ascii": "no <0xNN> tokens and no BPE unk_token (transformers 5's LlamaTokenizer "
                                   "sets none): a character outside the alphabet is dropped", "vocab_size_orig": vocab_size - 1, "num_merges": n_merges,
                      "unk": UNK, "bos": BOS, "eos": EOS, "pad": PAD, "image_token_id": image_id,
                      "image_placeholder": IMAGE_PLACEHOLDER, "folders": tok_info},
        "templates": {"guide_llava_mistral": LLAVA_TEMPLATE, "guide_user": USER_TEMPLATE},
        "requests": {k: dict(v, text=guide_prompt(v)) for k, v in REQUESTS.items()},
        **J,
        "hf_processor_ids": {"note": "LlavaNextProcessor on single.text (one-piece tokenisation): NOT what the "
                                     "goldens use", "input_ids": proc_ids, "n_image_tokens": proc_n,
                             "same_as_input_ids": proc_ids == J["single"]["input_ids"]},
        "hf_key_prefixes": prefixes,
        "hf_keys_example": [k for k in hf_keys if ".layers.1." not in k and ".layers.2." not in k],
        "hub_layout_note": "transformers 5.24 writes the CLIP tower as vision_tower.* (no vision_model.); hub "
                           "llava-hf checkpoints have vision_tower.vision_model.*; from_pretrained loads both "
                           "(checked: %s)" % hub_layout_loads,
        "orig": {"name_map": name_map, "note": "hf/model.safetensors name -> orig/model.safetensors name; same tensors, "
                 "bit for bit. orig/tokenizer.json has no <image>; orig config vocab_size counts the <image> row."},
        "lora_info": {"r": LORA_R, "alpha": LORA_ALPHA, "scale": LORA_ALPHA / LORA_R, "targets": LORA_TARGETS,
                      "b_std": LORA_B_STD, "tensors_changed": n_lora_changed, "peft_merge_max_abs_diff": peft_diff,
                      "non_lora_trainables": ["base_model.model.model.mm_projector.0.weight",
                                              "base_model.model.model.mm_projector.0.bias",
                                              "base_model.model.model.mm_projector.2.weight",
                                              "base_model.model.model.mm_projector.2.bias",
                                              "base_model.model.model.image_newline"],
                      "recipe": "base orig weights; non_lora_trainables.bin replaces projector + image_newline "
                                "(keys stripped of 'base_model.' then 'model.'); W += (B @ A) * alpha / r on the "
                                "7 Mistral linears of every layer (PEFT merge_and_unload, checked)"},
        "reload_max_abs_diff": max(reload_diff.values()),
        "float64_max_abs_diff": d64,
    }
    json_dump(golden, os.path.join(OUT, "golden.json"))
    summary(golden, T)


def summary(golden, T):
    print(f"tokenizer: vocab {golden['tokenizer']['vocab_size_with_image']} (merges {golden['tokenizer']['num_merges']}),"
          f" <image> = {golden['tokenizer']['image_token_id']}")
    for name, im in golden["images"].items():
        print(f"  {name:6s} {im['width']}x{im['height']} best {im['best_resolution']} (LLaVA repo "
              f"{im['best_resolution_llava_orig']}) grid {im['grid_shape']} unpad {im['unpad_window']} "
              f"-> {im['unpadded_hw']} tokens {im['n_tokens']}" + (f"  orig {im['llava_orig']}" if "llava_orig" in im else ""))
    s = golden["single"]
    print(f"single: len {s['len']} ({len(s['orig_ids'])} orig ids, image at {s['image_start']}, {s['n_image_tokens']} "
          f"image tokens); hf processor ids same: {golden['hf_processor_ids']['same_as_input_ids']} "
          f"(its image tokens {golden['hf_processor_ids']['n_image_tokens']})")
    b = golden["batch"]
    print(f"batch: lens {[len(r) for r in b['unpadded_input_ids']]} greedy {b['greedy_new_tokens']} "
          f"min gap {b['min_top1_top2_gap']:.3f} gen-vs-forward {b['generate_first_step_vs_forward_max_abs_diff']:.2g}")
    print(f"beam: {golden['beam']['new_tokens']} score {golden['beam']['sequences_scores']:.5f}")
    print(f"lora: greedy {golden['lora']['greedy_new_tokens']} max |dlogit| {golden['lora']['max_abs_logit_change_vs_base']:.3f}"
          f" min gap {golden['lora']['min_top1_top2_gap']:.3f} peft diff {golden['lora_info']['peft_merge_max_abs_diff']:.2g}")
    for k, v in T.items():
        print(f"  {k:34s} {str(list(v.shape)):18s} absmax {v.abs().max():8.4f} std {v.std() if v.numel() > 1 else 0:.4f}")
    print("hf key prefixes:", golden["hf_key_prefixes"])
    print("reload max abs diff:", golden["reload_max_abs_diff"])
    print("float64 max abs diff:", golden["float64_max_abs_diff"])
    total = 0
    for root, _, files in sorted(os.walk(OUT)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            print(f"  {os.path.relpath(p, OUT):42s} {os.path.getsize(p) / 1024:8.1f} KiB")
    print(f"total {total / 1024:.1f} KiB in {OUT}")
    assert total < 2.1 * 1024 * 1024


if __name__ == "__main__":
    main()
