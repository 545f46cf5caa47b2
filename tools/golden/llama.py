#!/usr/bin/env python3
"""Golden files for art-llm' Llama-family causal LMs (Llama, Mistral with grouped KV heads
and a sliding window, Llama-3 rope scaling), PEFT LoRA adapters, Hugging Face generation
(greedy, beam search), HF logits processors and GGUF export, all made with the PyTorch
reference (torch + transformers + peft + tokenizers + gguf). Not run in CI; rerun when the
reference or the fixtures change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers peft safetensors \
        numpy gguf tokenizers
    /tmp/tv/bin/python tools/golden/llama.py

Everything is deterministic (fixed torch seeds, CPU, f32, eager attention); rerunning with the
same library versions rewrites byte-identical model files and JSON.

Writes crates/llm/tests/fixtures/llama/:
  llama/              LlamaForCausalLM (vocab 320, hidden 32, 2 layers, 4 heads, 4 KV heads),
                      tiny random weights (every matrix N(0, 0.2), every norm 1 + 0.1*N(0, 1)),
                      config.json + generation_config.json + model.safetensors as
                      save_pretrained writes them, plus tokenizer.json;
  mistral/            MistralForCausalLM, same sizes, 2 KV heads (grouped), sliding_window 6;
  llama3/             LlamaForCausalLM with rope_theta 500000 and llama3 rope scaling
                      (factor 8, low 1, high 4, original_max_position_embeddings 16);
  lora/               PEFT LoRA adapter on llama/ (r 4, alpha 8, all 7 projections),
                      adapter_config.json + adapter_model.safetensors, random A and B;
  lora_rs_bin/        PEFT LoRA adapter on llama/ (r 2, alpha 6, use_rslora, q/v/down only),
                      saved as adapter_model.bin (torch zip pickle);
  golden.json         prompts, and per variant (llama, llama+lora, llama+lora_rs_bin, mistral,
                      llama3) the left-padded batch logits at the real positions, greedy and
                      beam-search (5 beams) continuations, batched and one prompt at a time;
                      the "+lora" variants are PEFT's own *unmerged* forward; and
                      "beam_variants": a list of {"variant" (llama or mistral), "params" (the
                      generate kwargs: BEAM_VARIANTS' case merged over {num_beams 5,
                      max_new_tokens 12}; do_sample False, pad 0, eos 2 as everywhere),
                      "tokens" (per prompt the new tokens of the same left-padded batch, cut
                      after the first EOS, EOS kept), "scores" (per prompt sequences_scores),
                      "differs_from_default" (tokens != that variant's "beam")}, for
                      BEAM_VARIANTS' cases 1-8 on llama and 1, 3, 6 on mistral;
  processors.json     transformers' own logits processors/warpers applied step by step to
                      fixed score rows (-inf written as null);
  llama.gguf          llama/ converted to GGUF the way llama.cpp's convert_hf_to_gguf.py does
                      (q/k rows permuted, F32 tensors, gpt2 BPE tokenizer metadata);
  llama-q8_0.gguf     the same with every 2-D matrix in Q8_0 (norms stay F32).

EOS: with the plain N(0, 0.2) weights no greedy or beam output of llama/ ended in EOS within
12 new tokens, so after the random init the script adds EOS_BIAS = 0.45 to every element of
row 2 (EOS) of lm_head.weight (in llama/, mistral/ and llama3/ alike). With it llama's batched
greedy run finishes prompt 3 at its first new token while the others run to 12, and its beam
runs finish after 6, 9 and 1 tokens. The script asserts that some llama output ends in EOS.
Every greedy/beam output is also recomputed, one prompt at a time, with the model in float64
and must be the same (so the token choices are not at the mercy of f32 rounding); for
beam_variants the float64 runs must match float32 one-prompt-at-a-time runs (which are not
written; the summary prints whether they equal the batched "tokens"). early_stopping True and
"never" give llama's and mistral's default beam output; the other cases all differ from it.
"""
import copy, json, math, os, shutil

import numpy as np
import torch
import tokenizers
from tokenizers import Tokenizer, models as tk_models, pre_tokenizers, decoders, processors, trainers
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM
from transformers.generation.logits_process import (
    RepetitionPenaltyLogitsProcessor, MinNewTokensLengthLogitsProcessor, TemperatureLogitsWarper,
    TopKLogitsWarper, TopPLogitsWarper)
import peft
from peft import LoraConfig, PeftModel, get_peft_model
import gguf

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "crates", "llm", "tests", "fixtures", "llama"))
VOCAB = 320
PAD, BOS, EOS = 0, 1, 2
MAX_NEW = 12
# Added to lm_head.weight[EOS] (a constant on every element of the row) after the random init,
# so that EOS is reachable within MAX_NEW tokens and early finishing is exercised.
EOS_BIAS = 0.45

CORPUS = """\
The old lighthouse stood at the edge of the harbour, where the land gave way to the grey and
restless sea. Every evening the keeper climbed the narrow stairs, one hundred and twelve of
them, to light the great lamp that warned the ships away from the rocks. He had done this for
thirty years, through summer storms and winter fog, and he knew the sound of every wave that
broke against the stones below. The people of the town said that he talked to the gulls, and
perhaps he did, for there was no one else to talk to in the long hours before the dawn. In the
mornings he walked down to the market to buy bread, cheese and apples, and he listened to the
fishermen as they argued about the weather, the price of fish and the strange lights that some
of them had seen far out on the water. The children followed him along the street and asked him
for stories, and he told them about the ships that had passed in the night, about the whales
that rose beside the boats in spring, and about the great storm that had torn the roof from the
church when he was a young man. When the new electric light was finally installed, the town
council thanked him for his years of service and gave him a small house near the school. He
still climbed the hill every evening to watch the beam turn slowly over the dark water, and he
still counted the stairs in his head, one hundred and twelve, as if he were climbing them again.
Some nights he brought a book and read by the light of the moon; other nights he simply sat on
the bench and listened to the sea, which was never quiet and never the same, and which had
taught him patience, kindness and a quiet kind of courage that the town would remember long
after the lighthouse itself had fallen silent. The quick brown fox jumps over the lazy dog, and
the cat sleeps on the warm sofa while the rain falls gently on the garden outside the window.
"""
TEXTS = [
    "The keeper climbed the narrow stairs to light the lamp.",
    "A quick brown fox in the rain.",
    "Hello world",
]
PROMPT_LENS = [9, 5, 2]


def sig6(x):
    """Round to 6 significant digits; -inf/+inf/NaN become None (JSON null)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def sig6_list(t):
    if isinstance(t, torch.Tensor):
        t = t.tolist()
    if isinstance(t, list):
        return [sig6_list(v) for v in t]
    return sig6(t)


def size_kb(path):
    return os.path.getsize(path) / 1024


# ----------------------------------------------------------------------------- tokenizer
def build_tokenizer():
    tok = Tokenizer(tk_models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False, min_frequency=2)
    tok.train_from_iterator([CORPUS], trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS)])
    vocab = tok.get_vocab()
    assert len(vocab) == VOCAB, len(vocab)
    assert tok.get_vocab_size() == VOCAB
    assert [tok.id_to_token(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    assert {tok.id_to_token(i) for i in range(3, 259)} == alphabet and len(alphabet) == 256
    s = "The keeper climbed the stairs; Zürich, 12 gulls!"
    enc = tok.encode(s)
    assert enc.ids[0] == BOS, enc.ids
    assert tok.decode(enc.ids, skip_special_tokens=True) == s, tok.decode(enc.ids)
    return tok


# ----------------------------------------------------------------------------- models
COMMON = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=128, rms_norm_eps=1e-5,
              tie_word_embeddings=False, bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD,
              initializer_range=0.2)


def reinit(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
        model.lm_head.weight[EOS] += EOS_BIAS


def make_models(tok):
    specs = {
        "llama": (LlamaForCausalLM, LlamaConfig(num_key_value_heads=4,
                                                rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                                **COMMON), 1),
        "mistral": (MistralForCausalLM, MistralConfig(num_key_value_heads=2, sliding_window=6,
                                                      rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                                                      **COMMON), 2),
        "llama3": (LlamaForCausalLM, LlamaConfig(num_key_value_heads=4, rope_parameters={
            "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 16}, **COMMON), 3),
    }
    for name, (cls, cfg, seed) in specs.items():
        torch.manual_seed(seed)
        m = cls(cfg).eval()
        reinit(m, seed)
        d = os.path.join(OUT, name)
        m.save_pretrained(d, safe_serialization=True)
        tok.save(os.path.join(d, "tokenizer.json"))


def load(name):
    cls = MistralForCausalLM if name == "mistral" else LlamaForCausalLM
    return cls.from_pretrained(os.path.join(OUT, name), dtype=torch.float32,
                               attn_implementation="eager").eval()


def make_adapter(dirname, seed, safe, **lora_kw):
    base = load("llama")
    cfg = LoraConfig(lora_dropout=0.0, bias="none", task_type="CAUSAL_LM", **lora_kw)
    pm = get_peft_model(base, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    d = os.path.join(OUT, dirname)
    pm.save_pretrained(d, safe_serialization=safe)
    pc = os.path.join(d, "adapter_config.json")
    with open(pc) as f:
        ac = json.load(f)
    ac["base_model_name_or_path"] = "tiny-llama"
    ac["target_modules"] = sorted(ac["target_modules"])  # PEFT writes a set: fix its order
    with open(pc, "w") as f:
        json.dump(ac, f, indent=2, sort_keys=True)
        f.write("\n")
    readme = os.path.join(d, "README.md")  # PEFT's model-card boilerplate: not needed
    if os.path.exists(readme):
        os.remove(readme)


def load_variant(name):
    if "+" not in name:
        return load(name)
    base, adapter = name.split("+")
    return PeftModel.from_pretrained(load(base), os.path.join(OUT, adapter)).eval()


# ----------------------------------------------------------------------------- golden
def left_pad(prompts):
    L = max(len(p) for p in prompts)
    ids = torch.tensor([[PAD] * (L - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (L - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


def new_tokens(seqs, input_len, fill=PAD):
    """New tokens per row, cut after the first EOS. Greedy fills finished rows with pad_token_id;
    beam search fills them with `pad_token_id or eos_token_id[0]` (transformers' _beam_search),
    which is EOS here because pad_token_id is 0."""
    out = []
    for row in seqs[:, input_len:].tolist():
        if EOS in row:
            k = row.index(EOS) + 1
            assert all(t == fill for t in row[k:]), row
            row = row[:k]
        out.append(row)
    return out


def f64_agrees(model, prompts, res):
    """One prompt at a time (transformers' batched, left-padded beam search gives NaN scores in
    float64 on this version, so the batched runs are not redone in float64)."""
    m = copy.deepcopy(model).double()
    gen = dict(do_sample=False, max_new_tokens=MAX_NEW, pad_token_id=PAD, eos_token_id=EOS)
    g, b = [], []
    with torch.no_grad():
        for p in prompts:
            ids = torch.tensor([p])
            g.append(new_tokens(m.generate(input_ids=ids, **gen), len(p))[0])
            b.append(new_tokens(m.generate(input_ids=ids, num_beams=5, **gen), len(p), fill=EOS)[0])
    return g == res["greedy_single"] and b == res["beam_single"]


def run_variant(model, prompts):
    ids, mask = left_pad(prompts)
    L = ids.shape[1]
    pos = mask.long().cumsum(-1) - 1
    pos.masked_fill_(mask == 0, 1)
    res = {}
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    res["logits"] = [sig6_list(logits[i, L - len(p):]) for i, p in enumerate(prompts)]
    # smallest top1-top2 gap over all real positions (how robust greedy choices are)
    top2 = torch.cat([logits[i, L - len(p):] for i, p in enumerate(prompts)]).topk(2, dim=-1).values
    gap = float((top2[:, 0] - top2[:, 1]).min())

    gen = dict(do_sample=False, max_new_tokens=MAX_NEW, pad_token_id=PAD, eos_token_id=EOS)
    with torch.no_grad():
        g = model.generate(input_ids=ids, attention_mask=mask, **gen)
        res["greedy"] = new_tokens(g, L)
        res["greedy_single"] = [new_tokens(model.generate(input_ids=torch.tensor([p]),
                                                          attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                                          **gen), len(p))[0] for p in prompts]
        b = model.generate(input_ids=ids, attention_mask=mask, num_beams=5,
                           return_dict_in_generate=True, output_scores=True, **gen)
        res["beam"] = new_tokens(b.sequences, L, fill=EOS)
        res["beam_scores"] = sig6_list(b.sequences_scores)
        bs, bss = [], []
        for p in prompts:
            o = model.generate(input_ids=torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                               num_beams=5, return_dict_in_generate=True, output_scores=True, **gen)
            bs.append(new_tokens(o.sequences, len(p), fill=EOS)[0])
            bss.append(sig6(o.sequences_scores[0]))
        res["beam_single"] = bs
        res["beam_single_scores"] = bss
    return res, gap


# generate kwargs of the beam_variants cases, each merged over {num_beams: 5, max_new_tokens: 12}
BEAM_VARIANTS = [
    {"early_stopping": True},
    {"early_stopping": "never"},
    {"length_penalty": 0.5},
    {"length_penalty": 2.0, "early_stopping": "never"},
    {"num_beams": 3},
    {"min_new_tokens": 6},
    {"repetition_penalty": 1.5},
    {"num_beams": 4, "length_penalty": -1.0},
]
BEAM_VARIANT_RUNS = {"llama": [1, 2, 3, 4, 5, 6, 7, 8], "mistral": [1, 3, 6]}  # 1-based cases


def run_beam_variants(golden):
    """The beam_variants cases on the left-padded batch of the prompts. Returns the cases and,
    per case, whether running each prompt alone (f32) gives the same tokens and scores."""
    prompts = golden["prompts"]
    ids, mask = left_pad(prompts)
    L = ids.shape[1]
    fixed = dict(do_sample=False, pad_token_id=PAD, eos_token_id=EOS)
    cases, same_single = [], []
    for variant, nums in BEAM_VARIANT_RUNS.items():
        model = load(variant)
        m64 = copy.deepcopy(model).double()
        for n in nums:
            params = {"num_beams": 5, "max_new_tokens": MAX_NEW, **BEAM_VARIANTS[n - 1]}
            with torch.no_grad():
                o = model.generate(input_ids=ids, attention_mask=mask, return_dict_in_generate=True,
                                   output_scores=True, **params, **fixed)
                tokens = new_tokens(o.sequences, L, fill=EOS)
                scores = sig6_list(o.sequences_scores)
                st, ss, s64 = [], [], []
                for p in prompts:
                    one = torch.tensor([p])
                    o1 = model.generate(input_ids=one, attention_mask=torch.ones_like(one),
                                        return_dict_in_generate=True, output_scores=True, **params, **fixed)
                    st.append(new_tokens(o1.sequences, len(p), fill=EOS)[0])
                    ss.append(sig6(o1.sequences_scores[0]))
                    s64.append(new_tokens(m64.generate(input_ids=one, attention_mask=torch.ones_like(one),
                                                       **params, **fixed), len(p), fill=EOS)[0])
            assert s64 == st, f"{variant} {params}: float64 generation differs from float32"
            cases.append({"variant": variant, "params": params, "tokens": tokens, "scores": scores,
                          "differs_from_default": tokens != golden["variants"][variant]["beam"]})
            same_single.append((st == tokens, ss == scores))
    return cases, same_single


# ----------------------------------------------------------------------------- processors
def check_tie_invariant(proc, input_ids, scores):
    """The output must not depend on how sort/topk order tied scores: apply the processor to the
    vocab-reversed scores and reverse back."""
    a = proc(input_ids, scores.clone())
    perm = torch.arange(scores.shape[-1] - 1, -1, -1)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    b = proc(perm[input_ids], scores[:, perm].clone())[:, inv]
    assert torch.equal(a, b), (proc, a, b)
    return a


def proc_case(name, scores, input_ids, prompt_len, chain):
    scores = torch.tensor(sig6_list(scores), dtype=torch.float32)
    case = {"name": name, "scores": sig6_list(scores), "input_ids": input_ids.tolist(),
            "prompt_len": prompt_len, "steps": []}
    cur = scores
    for step_name, params, proc in chain:
        cur = check_tie_invariant(proc, input_ids, cur) if step_name in ("top_k", "top_p") \
            else proc(input_ids, cur.clone())
        case["steps"].append({"name": step_name, "params": params, "scores": sig6_list(cur)})
    return case


def make_processors():
    g = torch.Generator().manual_seed(1234)
    V = 40

    def raw_scores():
        s = torch.randn(3, V, generator=g) * 2.0
        # exact ties: duplicate some values (incl. the row maximum and values near the top)
        s[0, 7] = s[0, 3]
        top = s[1].argmax()
        s[1, (top + 1) % V] = s[1, top]
        s[2, 11] = s[2, 12] = s[2, 13] = 0.75
        s[2, 20] = -0.75
        return s

    input_ids = torch.tensor([[5, 3, 9, 5, 12, 3],
                              [0, 1, 1, 39, 22, 0],
                              [13, 20, 13, 7, 7, 7]])
    prompt_len = 4
    cases = []

    s1 = raw_scores()
    cases.append(proc_case("sampling", s1, input_ids, prompt_len, [
        ("repetition_penalty", {"penalty": 1.5}, RepetitionPenaltyLogitsProcessor(1.5)),
        ("min_new_tokens", {"prompt_length_to_skip": prompt_len, "min_new_tokens": 5, "eos_token_id": 3},
         MinNewTokensLengthLogitsProcessor(prompt_len, 5, 3)),
        ("temperature", {"temperature": 3.5}, TemperatureLogitsWarper(3.5)),
        ("top_k", {"top_k": 5, "min_tokens_to_keep": 1}, TopKLogitsWarper(5, min_tokens_to_keep=1)),
    ]))

    s2 = torch.log_softmax(torch.tensor(sig6_list(raw_scores())), dim=-1)
    cases.append(proc_case("beam_sample", s2, input_ids, prompt_len, [
        ("repetition_penalty", {"penalty": 1.5}, RepetitionPenaltyLogitsProcessor(1.5)),
        ("temperature", {"temperature": 3.0}, TemperatureLogitsWarper(3.0)),
        ("top_k", {"top_k": 50, "min_tokens_to_keep": 2}, TopKLogitsWarper(50, min_tokens_to_keep=2)),
    ]))

    s3 = raw_scores()
    cases.append(proc_case("nucleus", s3, input_ids, prompt_len, [
        ("temperature", {"temperature": 0.7}, TemperatureLogitsWarper(0.7)),
        ("top_k", {"top_k": 10, "min_tokens_to_keep": 1}, TopKLogitsWarper(10, min_tokens_to_keep=1)),
        ("top_p", {"top_p": 0.8, "min_tokens_to_keep": 1}, TopPLogitsWarper(0.8, min_tokens_to_keep=1)),
    ]))

    s4 = raw_scores()
    cases.append(proc_case("top_p_small", s4, input_ids, prompt_len, [
        ("top_p", {"top_p": 0.05, "min_tokens_to_keep": 2}, TopPLogitsWarper(0.05, min_tokens_to_keep=2)),
    ]))

    s5 = raw_scores()
    cases.append(proc_case("greedy", s5, input_ids, prompt_len, [
        ("repetition_penalty", {"penalty": 1.3}, RepetitionPenaltyLogitsProcessor(1.3)),
    ]))
    return {"meta": {"vocab_size": V, "null_means": "-inf",
                     "note": "transformers' own processor classes, applied in generate's order; "
                             "`scores` are the inputs (already rounded to 6 significant digits), each "
                             "step's `scores` the output of that step fed the previous step's unrounded "
                             "output. repetition_penalty is the standalone processor "
                             "(prompt_ignore_length None: every id in input_ids counts)."},
            "cases": cases}


# ----------------------------------------------------------------------------- gguf
def permute(w, n_head, n_head_kv=None):
    # llama.cpp convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def write_gguf(path, tok, q8):
    from safetensors.numpy import load_file
    cfg = json.load(open(os.path.join(OUT, "llama", "config.json")))
    sd = load_file(os.path.join(OUT, "llama", "model.safetensors"))
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg["hidden_size"] // n_head

    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama")
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if q8 else gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])

    vocab = tok.get_vocab()
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    tj = json.loads(tok.to_str())
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL if i < 3 else gguf.TokenType.NORMAL
                       for i in range(len(tokens))])
    w.add_token_merges(merges)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_pad_token_id(PAD)
    w.add_add_bos_token(True)

    names = [("model.embed_tokens.weight", "token_embd.weight")]
    for i in range(cfg["num_hidden_layers"]):
        hf, gg = f"model.layers.{i}.", f"blk.{i}."
        names += [(hf + "self_attn.q_proj.weight", gg + "attn_q.weight"),
                  (hf + "self_attn.k_proj.weight", gg + "attn_k.weight"),
                  (hf + "self_attn.v_proj.weight", gg + "attn_v.weight"),
                  (hf + "self_attn.o_proj.weight", gg + "attn_output.weight"),
                  (hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight"),
                  (hf + "mlp.up_proj.weight", gg + "ffn_up.weight"),
                  (hf + "mlp.down_proj.weight", gg + "ffn_down.weight"),
                  (hf + "input_layernorm.weight", gg + "attn_norm.weight"),
                  (hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight")]
    names += [("model.norm.weight", "output_norm.weight"), ("lm_head.weight", "output.weight")]
    assert sorted(h for h, _ in names) == sorted(sd), "unmapped tensors"
    written = {}
    for hf, gg in names:
        t = sd[hf].astype(np.float32)
        if hf.endswith("q_proj.weight"):
            t = permute(t, n_head, n_head)
        elif hf.endswith("k_proj.weight"):
            t = permute(t, n_head, n_kv)
        t = np.ascontiguousarray(t)
        written[gg] = t
        if q8 and t.ndim == 2 and t.shape[-1] % 32 == 0:
            q = gguf.quants.quantize(t, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(gg, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(gg, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return written


def verify_gguf(path, written, q8):
    r = gguf.GGUFReader(path)
    assert r.fields["general.architecture"].contents() == "llama"
    assert r.fields["llama.attention.head_count_kv"].contents() == 4
    assert r.fields["tokenizer.ggml.tokens"].contents()[:3] == ["<unk>", "<s>", "</s>"]
    assert len(r.fields["tokenizer.ggml.tokens"].contents()) == VOCAB
    got = {t.name: t for t in r.tensors}
    assert sorted(got) == sorted(written)
    for name, ref in written.items():
        t = got[name]
        if t.tensor_type == gguf.GGMLQuantizationType.F32:
            arr = np.asarray(t.data).reshape(ref.shape)
            assert np.array_equal(arr, ref), name
        else:
            assert q8 and t.tensor_type == gguf.GGMLQuantizationType.Q8_0
            arr = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(ref.shape)
            assert np.abs(arr - ref).max() <= np.abs(ref).max() / 127 + 1e-6, name
    return r


# ----------------------------------------------------------------------------- main
def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    tok = build_tokenizer()
    make_models(tok)
    make_adapter("lora", 11, True, r=4, lora_alpha=8,
                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    make_adapter("lora_rs_bin", 12, False, r=2, lora_alpha=6, use_rslora=True,
                 target_modules=["q_proj", "v_proj", "down_proj"])

    prompts = []
    for text, n in zip(TEXTS, PROMPT_LENS):
        ids = tok.encode(text, add_special_tokens=True).ids
        assert ids[0] == BOS and len(ids) >= n, (text, ids)
        prompts.append(ids[:n])

    golden = {"meta": {"torch": torch.__version__, "transformers": transformers.__version__,
                       "peft": peft.__version__, "tokenizers": tokenizers.__version__,
                       "gguf": getattr(gguf, "__version__", None) or _dist_version("gguf"),
                       "max_new_tokens": MAX_NEW, "num_beams": 5, "pad_token_id": PAD,
                       "eos_token_id": EOS, "eos_bias": EOS_BIAS, "attn_implementation": "eager"},
              "texts": TEXTS, "prompts": prompts, "variants": {}}
    summary = []
    for name in ["llama", "llama+lora", "llama+lora_rs_bin", "mistral", "llama3"]:
        model = load_variant(name)
        res, gap = run_variant(model, prompts)
        assert f64_agrees(model, prompts, res), f"{name}: float64 generation differs from float32"
        golden["variants"][name] = res
        eos = {k: [i for i, s in enumerate(res[k]) if s and s[-1] == EOS]
               for k in ["greedy", "greedy_single", "beam", "beam_single"]}
        summary.append((name, gap, res["greedy"] == res["greedy_single"], res["beam"] == res["beam_single"], eos))
    golden["beam_variants"], bv_single = run_beam_variants(golden)

    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(OUT, "processors.json"), "w") as f:
        json.dump(make_processors(), f, separators=(",", ":"))
        f.write("\n")

    written = write_gguf(os.path.join(OUT, "llama.gguf"), tok, q8=False)
    verify_gguf(os.path.join(OUT, "llama.gguf"), written, q8=False)
    write_gguf(os.path.join(OUT, "llama-q8_0.gguf"), tok, q8=True)
    verify_gguf(os.path.join(OUT, "llama-q8_0.gguf"), written, q8=True)

    print("prompts:", prompts)
    for name, gap, ge, be, eos in summary:
        print(f"{name:18s} min top1-top2 logit gap {gap:.4f}  greedy==single {ge}  beam==single {be}  "
              f"EOS-ended rows {eos}")
        v = golden["variants"][name]
        print(f"{'':18s} greedy {v['greedy']}\n{'':18s} beam   {v['beam']} {v['beam_scores']}")
    for c, (st, ss) in zip(golden["beam_variants"], bv_single):
        print(f"beam_variants {c['variant']:8s} {json.dumps(c['params'])}  differs_from_default "
              f"{c['differs_from_default']}  single==batch tokens {st} scores {ss}\n{'':14s}"
              f"{c['tokens']} {c['scores']}")
    n_diff = sum(c["differs_from_default"] for c in golden["beam_variants"])
    print(f"beam_variants: {n_diff} of {len(golden['beam_variants'])} differ from the default beam output")
    total = 0
    for root, _, files in sorted(os.walk(OUT)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            print(f"  {os.path.relpath(p, OUT):40s} {size_kb(p):8.1f} KiB")
    print(f"total {total / 1024:.1f} KiB in {OUT}")
    llama_eos = summary[0][4]
    assert llama_eos["greedy"] or llama_eos["beam"], "no llama output ends in EOS: raise EOS_BIAS"


def _dist_version(name):
    from importlib.metadata import version
    return version(name)


if __name__ == "__main__":
    main()
