"""A tiny CLIP-structured BPE vocabulary, for scripts that need a CLIP tokenizer offline.

The real CLIP BPE vocabulary is not available without the network, so tools/golden/sd.py (the
Stable Diffusion golden files) and tools/bench/sd_reference.py (the Stable Diffusion benchmark's
random-weight pipeline) learn a small one from a built-in text, laid out the way OpenAI CLIP's
simple_tokenizer lays out its vocab: the 256 bytes_to_unicode characters, the same with '</w>',
the learnt merges in order, then <|startoftext|> and <|endoftext|>. This module holds what the
two share: the byte table, the merge learner, the vocab layout and the vocab.json / merges.txt
writer. Each script keeps its own text, its own word split and its own merge settings
(learn_merges' min_count / strict), so each writes what it always wrote.

Standard library only: importing it does not pull in torch or transformers.
"""
import json
import os
from collections import Counter

BOT, EOT = "<|startoftext|>", "<|endoftext|>"


def bytes_to_unicode():
    """OpenAI CLIP's simple_tokenizer.bytes_to_unicode (same as GPT-2's): byte -> printable
    character, in CLIP's order."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def byte_encode(word, b2u=None):
    """A word's UTF-8 bytes as bytes_to_unicode characters (one character per byte)."""
    b2u = b2u or bytes_to_unicode()
    return "".join(b2u[b] for b in word.encode("utf-8"))


def base_tokens():
    """The first 512 tokens of the vocab: the 256 byte characters, then the same + '</w>'."""
    base = list(bytes_to_unicode().values())
    return base + [c + "</w>" for c in base]


def learn_merges(words, n_merges, min_count=1, strict=False):
    """Plain BPE over byte-encoded words (see byte_encode), '</w>' glued to each word's last
    symbol (CLIP's convention). Each round merges the most frequent adjacent pair (ties: the
    smallest pair in string order); pairs whose concatenation is already a token are skipped,
    so no vocab entry repeats, and so are pairs seen fewer than min_count times. When no pair
    is left before n_merges: an AssertionError if strict, else the merges so far."""
    counts = Counter()
    for w in words:
        counts[tuple(w[:-1]) + (w[-1] + "</w>",)] += 1
    known = set(base_tokens())
    merges = []
    while len(merges) < n_merges:
        pairs = Counter()
        for w, c in counts.items():
            for p in zip(w, w[1:]):
                pairs[p] += c
        cands = [(c, p) for p, c in pairs.items() if p[0] + p[1] not in known and c >= min_count]
        if not cands:
            assert not strict, f"corpus too small: only {len(merges)} merges"
            break
        _, best = min(cands, key=lambda cp: (-cp[0], cp[1]))
        merges.append(best)
        known.add(best[0] + best[1])
        new = Counter()
        for w, c in counts.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] += c
        counts = new
    return merges


def build_vocab(merges):
    """CLIP's vocab layout as {token: id}: base_tokens(), the merges in order, BOT, EOT."""
    vocab = base_tokens() + ["".join(m) for m in merges] + [BOT, EOT]
    assert len(set(vocab)) == len(vocab), "duplicate token strings"
    return {t: i for i, t in enumerate(vocab)}


def write_vocab_files(d, vocab, merges):
    """Writes d/vocab.json ({token: id}, UTF-8, not ASCII-escaped) and d/merges.txt ("#version:
    0.2" header, one "a b" line per merge) as CLIP checkpoints ship them; returns both paths."""
    os.makedirs(d, exist_ok=True)
    vocab_path = os.path.join(d, "vocab.json")
    merges_path = os.path.join(d, "merges.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a} {b}\n")
    return vocab_path, merges_path
