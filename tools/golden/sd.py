#!/usr/bin/env python3
"""Golden files for art-diffusion' Stable Diffusion port: tiny random-weight SD1-, SD2- and
SDXL-style diffusers pipelines, the CLIP BPE tokenizer as SD checkpoints ship it, and the
PNDM / DDIM / Euler / Euler-ancestral schedulers, all made with the PyTorch reference (torch +
transformers + diffusers). No network and no downloaded weights: the tokenizer is learnt from
CORPUS below and every weight is drawn from fixed seeds. Not run in CI; rerun when the
reference or the fixtures change:

    python -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers diffusers safetensors \
        numpy regex
    /tmp/tv/bin/python tools/golden/sd.py

Everything is deterministic (fixed torch seeds, CPU, one thread, f32, eager attention: the
transformers "eager" attention in the text encoders, diffusers' plain AttnProcessor in the
UNet and VAE); rerunning with the same library versions rewrites byte-identical files. The
goldens are computed with the pipelines reloaded by from_pretrained from the written folders
and must equal those of the in-memory pipelines (reload_max_abs_diff, 0 in practice); the
whole computation is also redone in float64 and every output must stay within 1e-4 of the f32
one (float64_max_abs_diff in each variant's json: ~1e-5 at most), so a correct f32 port can be
held to 1e-3.

Writes crates/diffusion/tests/fixtures/sd/:
  sd1/    StableDiffusionPipeline (no safety checker / feature extractor), saved with
          save_pretrained(safe_serialization=True): model_index.json, scheduler/ (PNDM, SD 1.5's
          scheduler_config.json values), text_encoder/ (CLIPTextModel, hidden 32, 3 layers,
          4 heads, intermediate 64, quick_gelu), tokenizer/ (vocab.json, merges.txt,
          tokenizer_config.json, special_tokens_map.json; no tokenizer.json, like the hub),
          unet/ (block_out_channels (8, 16, 16), layers_per_block 2, CrossAttn x2 + plain,
          attention_head_dim 2 = 2 heads per block, conv proj_in/proj_out), vae/
          (AutoencoderKL, block_out_channels (8, 16, 16, 16): vae_scale_factor 8,
          scaling_factor 0.18215).
  sd2/    the same pipeline class with SD 2.x choices: gelu text encoder, UNet
          attention_head_dim [2, 4, 4] (diffusers reads it as heads per block), linear
          proj_in/proj_out, upcast_attention True; the tokenizer pads with "!" and keeps
          tokenizer.json (next to vocab.json/merges.txt).
  sdxl/   StableDiffusionXLPipeline: text_encoder (CLIPTextModel, hidden 32, 3 layers,
          quick_gelu), text_encoder_2 (CLIPTextModelWithProjection, hidden 40, 3 layers,
          4 heads, gelu, projection_dim 32), tokenizer (pads with <|endoftext|>) and
          tokenizer_2 (pads with "!"), both without tokenizer.json; UNet with plain + CrossAttn
          x2 blocks, transformer_layers_per_block (1, 1, 2), heads (2, 4, 4),
          cross_attention_dim 72 (32 + 40), addition_embed_type "text_time"; Euler scheduler
          (SDXL base's config); VAE scaling_factor 0.13025, force_upcast True.
  golden/tokens.json                 PROMPTS as each tokenizer of each variant encodes them
                                     (padding max_length 77, truncation): ids, untruncated
                                     ids/len, truncated_text (decode of ids[1:76] when the
                                     prompt has > 75 content tokens, else null), decoded.
  golden/{sd1,sd2,sdxl}.safetensors  encode_prompt outputs, one UNet call, one VAE decode, a
  golden/{sd1,sd2,sdxl}.json         full 4-step render (image and final latents) + metadata.
  golden/schedulers.safetensors      step-by-step scale_model_input / step outputs of the
  golden/schedulers.json             scheduler cases in SCHED_CASES, with their configs,
                                     timesteps, sigmas and init_noise_sigma.

Sizes are far below the brief's first guess (UNet channels (32, 64, 64), VAE (16, 32, 32, 32))
because those weigh ~30 MB in f32 for the three pipelines; everything here is < 6 MB.

Weights: every Linear/Conv weight N(0, 1/fan_in), every bias 0.1*N(0, 1), every Layer/Group
norm weight 1 + 0.1*N(0, 1) and bias 0.1*N(0, 1), token/position embeddings 0.5*N(0, 1); then
the UNet's conv_out is scaled by UNET_OUT_GAIN and the VAE decoder's conv_out by VAE_OUT_GAIN so
that noise predictions are O(1) and decoded images mostly inside [-1, 1] (the summary prints
the clamped fraction of each render).

Tokenizer: the vocab is built the way OpenAI CLIP's simple_tokenizer builds it (256 byte
characters, the same + "</w>", the NUM_MERGES merges learnt from CORPUS in order,
<|startoftext|>, <|endoftext|>: 914 ids, bos 912, eos 913, "!" 0), by clip_vocab.py (shared
with tools/bench/sd_reference.py). transformers 5's save_pretrained writes only tokenizer.json
+ tokenizer_config.json, so vocab.json, merges.txt ("#version: 0.2" header) and
special_tokens_map.json are written by the script. Where "!" is the pad token (sd2/tokenizer,
sdxl/tokenizer_2) transformers registers it as a special added token, so every "!" in a prompt
is split out before BPE as id 0 (never "!</w>" = 256) and is dropped by
decode(skip_special_tokens=True); a literal <|endoftext|> in a prompt is likewise encoded as
the eos id. PROMPTS pin both.

Text encoder keys: transformers 5 saves CLIPTextModel *without* the "text_model." prefix that
every hub SD checkpoint has (CLIPTextModelWithProjection keeps it). To test both layouts,
sd1/text_encoder and sdxl/text_encoder are rewritten with the prefix (the hub layout; the
script checks transformers loads them back bit-identically), sd2/text_encoder is left as
transformers 5 writes it. HUB_PREFIX below says which.
"""
import html, json, os, shutil

import numpy as np
import regex
import torch
import safetensors
from safetensors.torch import load_file, save_file
import transformers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
import diffusers
from diffusers import (AutoencoderKL, DDIMScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler,
                       PNDMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline, UNet2DConditionModel)
import diffusers.schedulers.scheduling_euler_ancestral_discrete as euler_a_module

from clip_vocab import BOT, EOT, build_vocab, byte_encode, bytes_to_unicode, learn_merges, write_vocab_files

transformers.utils.logging.disable_progress_bar()
transformers.utils.logging.set_verbosity_error()
diffusers.utils.logging.disable_progress_bar()
diffusers.utils.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "crates", "diffusion", "tests", "fixtures", "sd")
GOLDEN = os.path.join(OUT, "golden")
NEGATIVE_PATH = os.path.join(ROOT, "crates", "core", "data", "templates", "negative_prompt_paper.txt")

NUM_MERGES = 400
MAX_LEN = 77
UNET_OUT_GAIN = 0.5
VAE_OUT_GAIN = 0.5
# variant/component whose text encoder safetensors get the hub's "text_model." key prefix
HUB_PREFIX = {"sd1/text_encoder", "sdxl/text_encoder"}

SD15_SCHEDULER = {"beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                  "num_train_timesteps": 1000, "set_alpha_to_one": False, "skip_prk_steps": True,
                  "steps_offset": 1, "trained_betas": None, "clip_sample": False}
SD21_SCHEDULER = dict(SD15_SCHEDULER, prediction_type="epsilon")
SDXL_SCHEDULER = {"beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
                  "clip_sample": False, "interpolation_type": "linear", "num_train_timesteps": 1000,
                  "prediction_type": "epsilon", "sample_max_value": 1.0, "set_alpha_to_one": False,
                  "skip_prk_steps": True, "steps_offset": 1, "timestep_spacing": "leading",
                  "trained_betas": None, "use_karras_sigmas": False}

CORPUS = """\
A photo of a cat sitting on a wooden table by the window, soft morning light, high quality photograph.
A portrait of an old fisherman with a grey beard, dramatic lighting, detailed face, sharp focus.
A painting of a quiet harbour at sunset, boats on the water, warm colors, oil on canvas.
A dog running across a green field, motion blur, golden hour, wide angle lens, award winning photo.
A cute black cat sleeping on a red sofa, cozy living room, digital art, trending on artstation.
A castle on a hill above a misty forest, fantasy landscape, concept art, highly detailed, epic scene.
A bowl of fresh fruit on a kitchen table, still life, natural light, realistic painting, soft shadows.
A city street at night in the rain, neon lights, reflections on the wet road, cinematic photo.
A small house in the mountains covered with snow, pine trees, clear blue sky, winter landscape.
An astronaut riding a horse on the moon, science fiction, digital painting, dramatic light.
A close up photo of a flower with drops of water, macro lens, shallow depth of field, bokeh.
A group of people walking on the beach, long shadows, summer evening, film photo, grain.
A robot reading a book in a library, warm lamp light, detailed illustration, children's book style.
A bird sitting on a branch in the garden, spring morning, photo taken with a telephoto lens.
The old lighthouse stood at the edge of the sea, waves breaking on the rocks, storm clouds above.
Two cats playing with a ball of wool on the floor, funny, candid photo, indoor lighting.
A watercolor painting of a village by the river, bridges and boats, soft pastel colors.
A car driving on a mountain road, aerial photo, drone shot, autumn trees, orange and yellow leaves.
A woman reading in a cafe, film grain, candid street photography, black and white photo.
A huge dragon flying over the mountains, fantasy art, epic, dramatic sky, highly detailed scales.
A photo of a dog and a cat sleeping together, warm blanket, soft light, cute animals, high quality.
Best quality, masterpiece, ultra detailed, sharp focus, professional photo, studio lighting, 8k.
Worst quality, low quality, normal quality, low resolution, blurry, jpeg artifacts, watermark,
text, logo, signature, username, error, cropped, out of frame, ugly, duplicate, deformed,
disfigured, bad anatomy, bad hands, extra fingers, missing fingers, fused fingers, too many fingers,
long neck, mutated hands, poorly drawn hands, poorly drawn face, poorly drawn feet, mutation, extra
limbs, missing limbs, bad art, sketch, monochrome, horror, geometry, disgusting, weird, banner.
The picture shows a pic of a cat, the photo shows a picture of a dog, the painting shows the sea.
It's a dog's life, isn't it? They're sure we've seen what you'll do, and I'm sure he'd agree.
A photo of the city in the evening, the streets are full of people and the lights are warm.
A drawing of a tree in the middle of a field, pencil sketch, simple lines, white background.
A beautiful landscape with a lake and mountains, reflections in the water, clear morning light.
A portrait of a young woman with red hair and green eyes, freckles, natural skin, studio portrait.
A train crossing a stone bridge over a deep valley, steam and smoke, vintage postcard, sepia tones.
A spaceship landing in a desert, two suns in the sky, sand dunes, cinematic science fiction scene.
A cup of coffee and a croissant on a marble table, morning breakfast, food photography, top view.
An underwater scene with colorful fish and coral, sunlight rays through the water, vivid colors.
A knight in shining armor standing in front of a burning village, dark fantasy, oil painting.
A children's drawing of a house, a sun and a family, crayons on paper, simple and happy picture.
A busy market in an old town, fruit and vegetables, colorful umbrellas, travel photography.
A snowy owl flying over a frozen lake at night, full moon, stars, long exposure photograph.
A cozy bedroom with plants and books, warm fairy lights, interior design, architectural photo.
A race car speeding through the rain, spray of water, motion blur, dramatic sports photography.
A panda eating bamboo in the forest, wildlife photography, soft green light, detailed fur.
An abstract painting with bold shapes and bright colors, modern art, acrylic on canvas, texture.
A sailing ship in a storm, huge waves, lightning in the dark clouds, classic maritime painting.
A temple in the jungle covered with vines, ancient ruins, mysterious light, adventure concept art.
A family of ducks swimming in a pond, spring flowers on the shore, peaceful countryside scene.
A glass of red wine on a wooden barrel, candle light, dark background, moody still life photo.
A futuristic city with flying cars and tall towers, sunset, digital art, ultra wide, detailed.
A puppy playing in the snow, shallow depth of field, winter morning, cute and happy animal photo.
"""

LONG_PROMPT = (
    "A highly detailed photograph of a small black cat sitting on a wooden table next to an old "
    "window in a quiet house in the mountains, soft morning light coming through the glass, a bowl "
    "of fresh fruit and a cup of coffee beside it, a book lying open on the table, the pages moving "
    "slightly in the wind, dust floating in the warm light, a garden with flowers and trees outside, "
    "birds sitting on the branches, snow on the peaks far away, clear blue sky with a few white "
    "clouds, shallow depth of field, sharp focus on the eyes of the cat, film grain, natural colors, "
    "professional photo taken with a fifty millimeter lens, award winning picture, masterpiece, best "
    "quality, ultra detailed, trending on artstation, cinematic composition, golden hour, and a "
    "second cat sleeping on the red sofa in the background of the room")

NEG = open(NEGATIVE_PATH, encoding="utf-8").read()
if NEG.endswith("\n"):
    NEG = NEG[:-1]

PROMPTS = [
    "a pic of cat",
    "A Photo, of: the CAT!!",
    "1234 cats in 2024",
    "  a \t red   car\n\non  the\r\nroad   ",
    "café cafe\u0301 naïve 東京 🙂",
    "it's a dog's life, isn't it?",
    "fish &amp; chips, 3.5 stars :)",
    "",
    "wow!amazing, a cat!",
    "a cat <|endoftext|> a dog",
    LONG_PROMPT,
    NEG,
]
ENCODE_PROMPTS = [PROMPTS[0], PROMPTS[1], LONG_PROMPT]
RENDER_PROMPTS = ENCODE_PROMPTS[:2]
UNET_TIMESTEP = 421
RENDER_STEPS = 4
GUIDANCE = 7.5
SIZE = 64


def sig(x):
    return float(x)


def size_kb(path):
    return os.path.getsize(path) / 1024


def json_dump(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def jsonable_config(cfg):
    out = {}
    for k, v in dict(cfg).items():
        if k.startswith("_"):
            continue
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, np.ndarray):
            v = v.tolist()
        out[k] = v
    return out


# ----------------------------------------------------------------------------- tokenizer
# bytes_to_unicode, the BPE learner, the vocab layout and the vocab.json / merges.txt writer are
# shared with tools/bench/sd_reference.py: clip_vocab.py, next to this file.
CLIP_PAT = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                         regex.IGNORECASE)


def clip_words(text):
    """CLIP's basic_clean (without ftfy, which the ASCII corpus does not need) + whitespace_clean
    + lower, then its regex word split, each word byte-encoded."""
    b2u = bytes_to_unicode()
    text = html.unescape(html.unescape(text)).strip()
    text = regex.sub(r"\s+", " ", text).strip().lower()
    return [byte_encode(w, b2u) for w in CLIP_PAT.findall(text)]


def learn_bpe(corpus, num_merges):
    """clip_vocab.learn_merges over clip_words(corpus), counting only pairs seen at least twice
    and failing if the corpus gives fewer than num_merges merges; returns ({token: id}, merges)."""
    merges = learn_merges(clip_words(corpus), num_merges, min_count=2, strict=True)
    return build_vocab(merges), merges


def save_tokenizer(d, vocab, merges, pad_token, keep_tokenizer_json):
    """CLIPTokenizer(vocab_file, merges_file) + save_pretrained. transformers 5 writes only
    tokenizer.json + tokenizer_config.json, so vocab.json, merges.txt and
    special_tokens_map.json (what hub SD tokenizers ship) are written by hand next to them."""
    write_vocab_files(d, vocab, merges)
    tok = CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"),
                        pad_token=pad_token, model_max_length=MAX_LEN)
    tok.save_pretrained(d)
    write_vocab_files(d, vocab, merges)  # in case save_pretrained rewrote them
    cfg_path = os.path.join(d, "tokenizer_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    for k in ("is_local", "local_files_only", "name_or_path"):  # artefacts of the local build
        cfg.pop(k, None)
    json_dump(cfg, cfg_path)
    json_dump({"bos_token": BOT, "eos_token": EOT, "pad_token": pad_token, "unk_token": EOT},
              os.path.join(d, "special_tokens_map.json"))
    if not keep_tokenizer_json:
        os.remove(os.path.join(d, "tokenizer.json"))
    return tok


# ----------------------------------------------------------------------------- weights
def reinit(model, seed, out_gains=()):
    g = torch.Generator().manual_seed(seed)
    seen = set()
    with torch.no_grad():
        for mname, m in model.named_modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.copy_(1.0 + 0.1 * torch.randn(m.weight.shape, generator=g))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            elif isinstance(m, torch.nn.Embedding):
                m.weight.copy_(0.5 * torch.randn(m.weight.shape, generator=g))
            else:
                continue
            for pname, _ in m.named_parameters(recurse=False):
                seen.add(f"{mname}.{pname}" if mname else pname)
        for name, gain in out_gains:
            mod = model.get_submodule(name)
            mod.weight.mul_(gain)
            mod.bias.mul_(gain)
    missing = [n for n, _ in model.named_parameters() if n not in seen]
    assert not missing, missing


def text_config(vocab, pad_token, hidden, heads, inter, act, proj):
    return CLIPTextConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=inter,
                          num_hidden_layers=3, num_attention_heads=heads, max_position_embeddings=MAX_LEN,
                          hidden_act=act, projection_dim=proj, layer_norm_eps=1e-5,
                          bos_token_id=vocab[BOT], eos_token_id=vocab[EOT], pad_token_id=vocab[pad_token])


def make_text_encoder(cls, cfg, seed):
    torch.manual_seed(seed)
    m = cls(cfg).eval()
    reinit(m, seed)
    return m


def make_unet(seed, **kw):
    torch.manual_seed(seed)
    u = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16, 16),
                             layers_per_block=2, norm_num_groups=4, **kw).eval()
    reinit(u, seed, [("conv_out", UNET_OUT_GAIN)])
    return u


def make_vae(seed, **kw):
    torch.manual_seed(seed)
    v = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                      up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(8, 16, 16, 16),
                      layers_per_block=1, latent_channels=4, norm_num_groups=4, sample_size=SIZE, **kw).eval()
    reinit(v, seed, [("decoder.conv_out", VAE_OUT_GAIN)])
    return v


def add_hub_prefix(path):
    """Rewrite a CLIPTextModel safetensors file with the hub's 'text_model.' key prefix."""
    sd = load_file(path)
    assert not any(k.startswith("text_model.") for k in sd)
    save_file({"text_model." + k: v for k, v in sd.items()}, path, metadata={"format": "pt"})


def build_pipelines(vocab, merges):
    d = os.path.join(OUT, "sd1")
    te = make_text_encoder(CLIPTextModel, text_config(vocab, EOT, 32, 4, 64, "quick_gelu", 32), 101)
    unet = make_unet(102, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                     cross_attention_dim=32, attention_head_dim=2, use_linear_projection=False)
    vae = make_vae(103, scaling_factor=0.18215)
    tok = save_tokenizer(os.path.join(d, "tokenizer"), vocab, merges, EOT, keep_tokenizer_json=False)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                   scheduler=PNDMScheduler.from_config(SD15_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    save_pipe(pipe, d, tokenizers=("tokenizer",))
    built = {"sd1": pipe}

    d = os.path.join(OUT, "sd2")
    te = make_text_encoder(CLIPTextModel, text_config(vocab, "!", 32, 4, 64, "gelu", 32), 201)
    unet = make_unet(202, down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                     cross_attention_dim=32, attention_head_dim=[2, 4, 4], use_linear_projection=True,
                     upcast_attention=True)
    vae = make_vae(203, scaling_factor=0.18215)
    tok = save_tokenizer(os.path.join(d, "tokenizer"), vocab, merges, "!", keep_tokenizer_json=True)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                   scheduler=PNDMScheduler.from_config(SD21_SCHEDULER), safety_checker=None,
                                   feature_extractor=None, image_encoder=None, requires_safety_checker=False)
    save_pipe(pipe, d, tokenizers=("tokenizer",))
    built["sd2"] = pipe

    d = os.path.join(OUT, "sdxl")
    te = make_text_encoder(CLIPTextModel, text_config(vocab, EOT, 32, 4, 64, "quick_gelu", 32), 301)
    te2 = make_text_encoder(CLIPTextModelWithProjection, text_config(vocab, "!", 40, 4, 80, "gelu", 32), 302)
    unet = make_unet(303, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                     up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                     transformer_layers_per_block=(1, 1, 2), attention_head_dim=(2, 4, 4),
                     use_linear_projection=True, cross_attention_dim=32 + 40, addition_embed_type="text_time",
                     addition_time_embed_dim=8, projection_class_embeddings_input_dim=32 + 6 * 8)
    vae = make_vae(304, scaling_factor=0.13025, force_upcast=True)
    tok = save_tokenizer(os.path.join(d, "tokenizer"), vocab, merges, EOT, keep_tokenizer_json=False)
    tok2 = save_tokenizer(os.path.join(d, "tokenizer_2"), vocab, merges, "!", keep_tokenizer_json=False)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=te, text_encoder_2=te2, tokenizer=tok, tokenizer_2=tok2,
                                     unet=unet, scheduler=EulerDiscreteScheduler.from_config(SDXL_SCHEDULER),
                                     image_encoder=None, feature_extractor=None, force_zeros_for_empty_prompt=True,
                                     add_watermarker=False)
    save_pipe(pipe, d, tokenizers=("tokenizer", "tokenizer_2"))
    built["sdxl"] = pipe
    return built


def save_pipe(pipe, d, tokenizers):
    # save_pretrained would rewrite the tokenizer folders (and put tokenizer.json back): keep ours
    keep = os.path.join(OUT, "_tok_keep")
    for t in tokenizers:
        shutil.copytree(os.path.join(d, t), os.path.join(keep, t))
    pipe.save_pretrained(d, safe_serialization=True)
    for t in tokenizers:
        shutil.rmtree(os.path.join(d, t))
        shutil.copytree(os.path.join(keep, t), os.path.join(d, t))
    shutil.rmtree(keep)
    name = os.path.basename(d)
    for comp in ("text_encoder", "text_encoder_2"):
        if f"{name}/{comp}" in HUB_PREFIX:
            add_hub_prefix(os.path.join(d, comp, "model.safetensors"))


def load_pipe(name):
    d = os.path.join(OUT, name)
    if name == "sdxl":
        return StableDiffusionXLPipeline.from_pretrained(d, dtype=torch.float32, add_watermarker=False)
    return StableDiffusionPipeline.from_pretrained(d, dtype=torch.float32)


def make_eager(pipe):
    pipe.set_progress_bar_config(disable=True)
    pipe.unet.set_default_attn_processor()
    pipe.vae.set_default_attn_processor()
    for te in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)):
        if te is not None:
            te.set_attn_implementation("eager")
            te.eval()
    pipe.unet.eval()
    pipe.vae.eval()
    return pipe


# ----------------------------------------------------------------------------- golden: tokens
def tokenizer_golden(tok, rel_dir):
    ids = tok(PROMPTS, padding="max_length", max_length=MAX_LEN, truncation=True).input_ids
    full = [tok(p).input_ids for p in PROMPTS]
    trunc_text = []
    for i, p in enumerate(PROMPTS):
        assert len(ids[i]) == MAX_LEN
        assert ids[i][0] == tok.bos_token_id
        n = len(full[i])
        if n > MAX_LEN:
            assert ids[i][:MAX_LEN - 1] == full[i][:MAX_LEN - 1] and ids[i][-1] == tok.eos_token_id
            trunc_text.append(tok.batch_decode([ids[i][1:MAX_LEN - 1]], skip_special_tokens=True)[0])
        else:
            assert ids[i][:n] == full[i] and all(t == tok.pad_token_id for t in ids[i][n:])
            trunc_text.append(None)
    return {"dir": rel_dir,
            "has_tokenizer_json": os.path.exists(os.path.join(OUT, rel_dir, "tokenizer.json")),
            "vocab_size": len(tok), "model_max_length": tok.model_max_length,
            "bos_token": tok.bos_token, "bos_token_id": tok.bos_token_id,
            "eos_token": tok.eos_token, "eos_token_id": tok.eos_token_id,
            "pad_token": tok.pad_token, "pad_token_id": tok.pad_token_id,
            "unk_token": tok.unk_token, "unk_token_id": tok.unk_token_id,
            "ids": ids, "untruncated_len": [len(f) for f in full], "untruncated_ids": full,
            "truncated_text": trunc_text,
            "decoded": [tok.decode(f, skip_special_tokens=True) for f in full]}


# ----------------------------------------------------------------------------- golden: pipelines
def fixed_randn(seed, shape):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


class UnetRecorder:
    """Forward pre-hook on the UNet: records the timestep and (SDXL) time_ids of each call."""

    def __init__(self, unet):
        self.calls = []
        self.handle = unet.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs):
        t = args[1] if len(args) > 1 else kwargs["timestep"]
        ack = kwargs.get("added_cond_kwargs") or {}
        self.calls.append({"timestep": t.item() if torch.is_tensor(t) else t,
                           "batch": int((args[0] if args else kwargs["sample"]).shape[0]),
                           "time_ids": ack["time_ids"].clone() if "time_ids" in ack else None})

    def remove(self):
        self.handle.remove()


def run_variant(name, pipe, dtype=torch.float32):
    """The golden tensors and metadata of one pipeline; dtype is that of the fixed inputs (the
    float64 rerun that checks the conditioning of every output passes torch.float64)."""
    xl = name == "sdxl"
    T, J = {}, {"variant": name, "pipeline_class": type(pipe).__name__,
                "scheduler_class": type(pipe.scheduler).__name__}
    negs = [NEG] * len(ENCODE_PROMPTS)
    with torch.no_grad():
        # 1. text conditioning
        if xl:
            pe, npe, pooled, npooled = pipe.encode_prompt(prompt=ENCODE_PROMPTS, device="cpu", num_images_per_prompt=1,
                                                          do_classifier_free_guidance=True, negative_prompt=negs)
            T.update(prompt_embeds=pe, negative_prompt_embeds=npe, pooled_prompt_embeds=pooled,
                     negative_pooled_prompt_embeds=npooled)
            _, zpe, _, zpooled = pipe.encode_prompt(prompt=ENCODE_PROMPTS, device="cpu", num_images_per_prompt=1,
                                                    do_classifier_free_guidance=True, negative_prompt=None)
            assert not zpe.any() and not zpooled.any()
            T.update(zero_negative_prompt_embeds=zpe, zero_negative_pooled=zpooled)
            add_time_ids = pipe._get_add_time_ids((SIZE, SIZE), (0, 0), (SIZE, SIZE), dtype=dtype,
                                                  text_encoder_projection_dim=pipe.text_encoder_2.config.projection_dim)
            T["add_time_ids"] = add_time_ids
            J["add_time_ids"] = add_time_ids[0].tolist()
            J.update(original_size=[SIZE, SIZE], crops_coords_top_left=[0, 0], target_size=[SIZE, SIZE])
            J["force_zeros_for_empty_prompt"] = pipe.config.force_zeros_for_empty_prompt
        else:
            pe, npe = pipe.encode_prompt(prompt=ENCODE_PROMPTS, device="cpu", num_images_per_prompt=1,
                                         do_classifier_free_guidance=True, negative_prompt=negs)
            T.update(prompt_embeds=pe, negative_prompt_embeds=npe)
        J["encode_prompt"] = {"prompt": ENCODE_PROMPTS, "negative_prompt": negs, "do_classifier_free_guidance": True,
                              "num_images_per_prompt": 1, "clip_skip": None}

        # 2. one UNet call
        sample = fixed_randn(11, (2, 4, 8, 8)).to(dtype)
        ehs = pe[:2]
        kw = {}
        if xl:
            kw["added_cond_kwargs"] = {"text_embeds": pooled[:2], "time_ids": add_time_ids.repeat(2, 1)}
            T.update(unet_text_embeds=pooled[:2], unet_time_ids=add_time_ids.repeat(2, 1))
        T.update(unet_sample=sample, unet_encoder_hidden_states=ehs)
        T["unet_out"] = pipe.unet(sample, UNET_TIMESTEP, encoder_hidden_states=ehs, **kw).sample
        J["unet_timestep"] = UNET_TIMESTEP

        # 3. one VAE decode
        lat = fixed_randn(12, (1, 4, 8, 8)).to(dtype)
        sf = pipe.vae.config.scaling_factor
        T["vae_latents"] = lat
        T["vae_decoded"] = pipe.vae.decode(lat / sf).sample
        J["vae_scaling_factor"] = sf
        J["vae_scale_factor"] = pipe.vae_scale_factor

        # 4. full renders
        rl = fixed_randn(13, (2, 4, 8, 8)).to(dtype)
        T["render_latents"] = rl
        cases = [("", GUIDANCE)] + ([("_nocfg", 1.0)] if name == "sd2" else [])
        for suffix, gs in cases:
            args = dict(prompt=RENDER_PROMPTS, negative_prompt=[NEG] * len(RENDER_PROMPTS), height=SIZE, width=SIZE,
                        num_inference_steps=RENDER_STEPS, guidance_scale=gs)
            rec = UnetRecorder(pipe.unet)
            img = pipe(**args, latents=rl.clone(), output_type="np").images
            rec.remove()
            timesteps = pipe.scheduler.timesteps
            fin = pipe(**args, latents=rl.clone(), output_type="latent").images
            assert isinstance(img, np.ndarray) and img.dtype == np.float32, (type(img), getattr(img, "dtype", None))
            T["render_image" + suffix] = torch.from_numpy(img.copy())
            T["render_final_latents" + suffix] = fin
            # the image is the final latents decoded: check it (same ops, so exact)
            re_img = pipe.image_processor.postprocess(pipe.vae.decode(fin / sf).sample, output_type="np")
            assert np.abs(re_img - img).max() <= 1e-6
            if xl:
                T["render_add_time_ids" + suffix] = rec.calls[0]["time_ids"]
            J["render" + suffix] = {
                **{k: v for k, v in args.items()}, "output_type": "np",
                "latents": "render_latents (multiplied by scheduler.init_noise_sigma inside the pipeline)",
                "init_noise_sigma": float(pipe.scheduler.init_noise_sigma),
                "do_classifier_free_guidance": gs > 1.0,
                "timesteps": timesteps.tolist(),
                "timesteps_dtype": str(timesteps.dtype).replace("torch.", ""),
                "unet_calls": [{"timestep": c["timestep"], "batch": c["batch"]} for c in rec.calls],
                "clamped_fraction": float(((img <= 0.0) | (img >= 1.0)).mean()),
            }
    T = {k: v.detach().to(dtype).contiguous().clone() for k, v in T.items()}
    for k, v in T.items():
        assert torch.isfinite(v).all(), k
    return T, J


# ----------------------------------------------------------------------------- golden: schedulers
SCHED_CASES = [
    # name, class, config, num_inference_steps, store the steps
    ("pndm_skip_prk", PNDMScheduler, SD15_SCHEDULER, 10, True),
    ("pndm_skip_prk_50", PNDMScheduler, SD15_SCHEDULER, 50, False),
    ("pndm_prk", PNDMScheduler, dict(SD15_SCHEDULER, skip_prk_steps=False), 10, True),
    ("pndm_v", PNDMScheduler, dict(SD15_SCHEDULER, prediction_type="v_prediction"), 10, True),
    ("euler_leading", EulerDiscreteScheduler, SDXL_SCHEDULER, 10, True),
    ("euler_leading_50", EulerDiscreteScheduler, SDXL_SCHEDULER, 50, False),
    ("euler_trailing", EulerDiscreteScheduler, dict(SDXL_SCHEDULER, timestep_spacing="trailing"), 4, True),
    ("euler_linspace", EulerDiscreteScheduler, dict(SDXL_SCHEDULER, timestep_spacing="linspace"), 10, True),
    ("euler_v", EulerDiscreteScheduler, dict(SDXL_SCHEDULER, prediction_type="v_prediction"), 10, True),
    ("euler_ancestral_trailing", EulerAncestralDiscreteScheduler, dict(SDXL_SCHEDULER, timestep_spacing="trailing"),
     4, True),
    ("euler_ancestral_leading", EulerAncestralDiscreteScheduler, SDXL_SCHEDULER, 10, True),
    ("ddim", DDIMScheduler, SD15_SCHEDULER, 10, True),
    ("ddim_trailing_v", DDIMScheduler, dict(SD15_SCHEDULER, timestep_spacing="trailing",
                                            prediction_type="v_prediction"), 10, True),
]


def run_schedulers():
    T, J = {}, {}
    orig_randn = euler_a_module.randn_tensor
    for ci, (case, cls, cfg, steps, store) in enumerate(SCHED_CASES):
        s = cls.from_config(cfg)
        s.set_timesteps(steps, device="cpu")
        if hasattr(s, "set_begin_index"):
            s.set_begin_index(0)  # as the pipelines do before their loops
        ts = s.timesteps
        sigmas = getattr(s, "sigmas", None)
        init = float(s.init_noise_sigma)
        entry = {"class": cls.__name__, "config_given": cfg, "config": jsonable_config(s.config),
                 "num_inference_steps": steps, "order": s.order,
                 "timesteps": ts.tolist(), "timesteps_dtype": str(ts.dtype).replace("torch.", ""),
                 "sigmas": sigmas.tolist() if sigmas is not None else None, "init_noise_sigma": init,
                 "num_step_calls": len(ts) if store else 0, "step_kwargs": {"eta": 0.0} if cls is DDIMScheduler else {}}
        J[case] = entry
        if not store:
            continue
        g = torch.Generator().manual_seed(5000 + ci)
        sample = torch.randn((2, 4, 4, 4), generator=g) * init
        T[f"{case}/sample0"] = sample
        noises = []

        def fake_randn(shape, generator=None, device=None, dtype=None, layout=None):
            n = torch.randn(tuple(shape), generator=g).to(dtype or torch.float32)
            noises.append(n)
            return n

        euler_a_module.randn_tensor = fake_randn
        try:
            for i, t in enumerate(ts):
                mo = torch.randn((2, 4, 4, 4), generator=g)
                scaled = s.scale_model_input(sample, t)
                n_before = len(noises)
                prev = s.step(mo, t, sample, **entry["step_kwargs"]).prev_sample
                T[f"{case}/model_output_{i}"] = mo
                T[f"{case}/scaled_input_{i}"] = scaled
                T[f"{case}/prev_sample_{i}"] = prev
                if len(noises) > n_before:
                    assert len(noises) == n_before + 1
                    T[f"{case}/noise_{i}"] = noises[-1]
                sample = prev
        finally:
            euler_a_module.randn_tensor = orig_randn
        entry["has_noise"] = bool(noises)
        assert (cls is EulerAncestralDiscreteScheduler) == bool(noises), case
    T = {k: v.to(torch.float32).contiguous().clone() for k, v in T.items()}
    for k, v in T.items():
        assert torch.isfinite(v).all(), k
    return T, J


# ----------------------------------------------------------------------------- checks
def check_tokenizers(vocab, merges):
    """Each saved tokenizer folder (with or without tokenizer.json) encodes PROMPTS like an
    in-memory CLIPTokenizer built from vocab.json + merges.txt."""
    for rel, pad in [("sd1/tokenizer", EOT), ("sd2/tokenizer", "!"), ("sdxl/tokenizer", EOT), ("sdxl/tokenizer_2", "!")]:
        d = os.path.join(OUT, rel)
        a = CLIPTokenizer.from_pretrained(d)
        b = CLIPTokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"), pad_token=pad,
                          model_max_length=MAX_LEN)
        assert a.pad_token == pad and a.model_max_length == MAX_LEN, (rel, a.pad_token, a.model_max_length)
        for p in PROMPTS:
            ea = a(p, padding="max_length", max_length=MAX_LEN, truncation=True).input_ids
            eb = b(p, padding="max_length", max_length=MAX_LEN, truncation=True).input_ids
            assert ea == eb, (rel, p)
    # the vocab is exactly CLIP's construction
    b2u = list(bytes_to_unicode().values())
    inv = sorted(vocab, key=vocab.get)
    assert inv[:256] == b2u and inv[256:512] == [c + "</w>" for c in b2u]
    assert inv[512:-2] == ["".join(m) for m in merges] and inv[-2:] == [BOT, EOT]


def max_diff(a, b):
    return float((a - b).abs().max()) if a.numel() else 0.0


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(GOLDEN)
    vocab, merges = learn_bpe(CORPUS, NUM_MERGES)
    built = build_pipelines(vocab, merges)
    check_tokenizers(vocab, merges)

    # text encoder key layouts
    layouts = {}
    for rel in ["sd1/text_encoder", "sd2/text_encoder", "sdxl/text_encoder", "sdxl/text_encoder_2"]:
        with safetensors.safe_open(os.path.join(OUT, rel, "model.safetensors"), "pt") as f:
            keys = list(f.keys())
        layouts[rel] = "text_model." if any(k.startswith("text_model.") for k in keys) else ""
        # CLIPTextModelWithProjection's text_projection sits outside text_model in both layouts
        assert all(k.startswith(layouts[rel]) or k == "text_projection.weight" for k in keys), rel
        assert layouts[rel] or not any(k.startswith("text_model.") for k in keys)

    tokens = {"meta": meta(), "prompts": PROMPTS, "negative_prompt_paper_index": PROMPTS.index(NEG),
              "long_prompt_index": PROMPTS.index(LONG_PROMPT), "num_merges": len(merges), "vocab_size": len(vocab),
              "call": {"padding": "max_length", "max_length": MAX_LEN, "truncation": True},
              "variants": {}}
    summary = []
    for name in ["sd1", "sd2", "sdxl"]:
        pipe = make_eager(load_pipe(name))
        toks = {"tokenizer": pipe.tokenizer}
        if name == "sdxl":
            toks["tokenizer_2"] = pipe.tokenizer_2
        tokens["variants"][name] = {k: tokenizer_golden(t, f"{name}/{k}") for k, t in toks.items()}
        T, J = run_variant(name, pipe)
        # the in-memory pipeline (before save) gives the same numbers
        T0, J0 = run_variant(name, make_eager(built[name]))
        assert T0.keys() == T.keys()
        diffs = {k: max_diff(T0[k], T[k]) for k in T}
        assert max(diffs.values()) <= 1e-6, {k: v for k, v in diffs.items() if v > 1e-6}
        J["meta"] = meta()
        J["text_encoder_key_prefix"] = {k.split("/")[1]: v for k, v in layouts.items() if k.startswith(name + "/")}
        J["reload_max_abs_diff"] = max(diffs.values())
        # the same computation in float64: how far f32 rounding alone moves each output
        T64, _ = run_variant(name, make_eager(load_pipe(name)).to(torch.float64), dtype=torch.float64)
        d64 = {k: max_diff(T64[k].double(), T[k].double()) for k in T}
        assert max(d64.values()) <= 1e-4, d64
        J["float64_max_abs_diff"] = {k: float(f"{v:.3g}") for k, v in d64.items()}
        save_file(T, os.path.join(GOLDEN, f"{name}.safetensors"), metadata={"format": "pt"})
        json_dump(J, os.path.join(GOLDEN, f"{name}.json"))
        summary.append((name, T, J))
    json_dump(tokens, os.path.join(GOLDEN, "tokens.json"))

    ST, SJ = run_schedulers()
    save_file(ST, os.path.join(GOLDEN, "schedulers.safetensors"), metadata={"format": "pt"})
    json_dump({"meta": meta(), "cases": SJ}, os.path.join(GOLDEN, "schedulers.json"))

    # read everything back
    for name, T, _ in summary:
        back = load_file(os.path.join(GOLDEN, f"{name}.safetensors"))
        assert back.keys() == T.keys() and all(torch.equal(back[k], T[k]) for k in T)
    back = load_file(os.path.join(GOLDEN, "schedulers.safetensors"))
    assert back.keys() == ST.keys() and all(torch.equal(back[k], ST[k]) for k in ST)

    print_summary(tokens, summary, ST, SJ, vocab, merges, layouts)


def meta():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "diffusers": diffusers.__version__, "dtype": "float32", "device": "cpu",
            "attention": "eager (transformers eager, diffusers AttnProcessor)"}


def print_summary(tokens, summary, ST, SJ, vocab, merges, layouts):
    print(f"tokenizer: {len(merges)} merges, vocab {len(vocab)} (bos {vocab[BOT]}, eos {vocab[EOT]}, '!' {vocab['!']})")
    print("first merges:", merges[:12])
    for name, v in tokens["variants"].items():
        for k, t in v.items():
            print(f"  {name}/{k}: pad {t['pad_token']!r}={t['pad_token_id']} tokenizer.json {t['has_tokenizer_json']} "
                  f"lens {t['untruncated_len']}")
    t = tokens["variants"]["sd1"]["tokenizer"]
    for p, d in zip(PROMPTS[:8], t["decoded"]):
        print(f"    {p!r:40} -> {d!r}")
    print("text encoder key prefixes:", layouts)
    for name, T, J in summary:
        print(f"{name}:")
        for k, v in T.items():
            print(f"  {k:32s} {str(list(v.shape)):18s} mean {v.mean():+.4f} std {v.std() if v.numel() > 1 else 0:.4f} "
                  f"absmax {v.abs().max():.4f}")
        for key in ("render", "render_nocfg"):
            if key in J:
                print(f"  {key}: timesteps {J[key]['timesteps']} init_noise_sigma {J[key]['init_noise_sigma']:.4f} "
                      f"clamped {J[key]['clamped_fraction']:.3f}")
    print("schedulers:")
    for case, e in SJ.items():
        last = ST.get(f"{case}/prev_sample_{e['num_step_calls'] - 1}")
        ts = e["timesteps"]
        print(f"  {case:26s} {e['class']:32s} steps {e['num_inference_steps']:2d} calls {e['num_step_calls']:2d} "
              f"init_sigma {e['init_noise_sigma']:.4f} timesteps {ts[:6]}{'...' if len(ts) > 6 else ''} "
              + (f"final std {last.std():.4f}" if last is not None else ""))
    total = 0
    for root, _, files in sorted(os.walk(OUT)):
        for fn in sorted(files):
            p = os.path.join(root, fn)
            total += os.path.getsize(p)
            print(f"  {os.path.relpath(p, OUT):50s} {size_kb(p):8.1f} KiB")
    print(f"total {total / 1024:.1f} KiB in {OUT}")
    assert total < 6 * 1024 * 1024


if __name__ == "__main__":
    main()
