#!/usr/bin/env python3
"""Golden Self-BLEU values for art-report's diversity metric, computed by NLTK.

art-report's `self_bleu` (crates/report/src/metrics/bleu.rs) scores each prompt with NLTK's
`sentence_bleu` against all the other prompts of the set (uniform 4-gram weights, smoothing
method1 with epsilon 0.1) and averages; this script is the reference it is pinned against.
Not run in CI; rerun when the cases or the reference change:

    python -m venv /tmp/nltk && /tmp/nltk/bin/pip install nltk==3.10.4
    /tmp/nltk/bin/python tools/golden/self_bleu.py

Writes crates/report/tests/fixtures/self_bleu.json: {"nltk": version, "cases": [{"prompts":
[...], "self_bleu": value or null}]}, null where the metric is undefined (fewer than two
prompts). The tokenizer below is the one art-report uses (lower case, curly apostrophes made
straight, runs of letters/digits joined by inner apostrophes).
"""
import json, os, re

import nltk
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

OUT = os.path.join(os.path.dirname(__file__), "../../crates/report/tests/fixtures/self_bleu.json")

CASES = [
    ["a cat sits on the mat", "a cat sat on the mat", "the dog runs in the park"],
    # Duplicates count; an empty prompt and one sharing nothing score 0.
    ["red apple on a table", "red apple on a table", "", "Green pear!"],
    [
        "Don't paint the cat's tail",
        "don't PAINT the dog\u2019s tail, please",
        "a b c d e f g",
        "b c d e",
    ],
    # Three tokens: no 4-gram, smoothed to 0.1.
    ["same words here", "same words here"],
    ["alpha beta", "gamma delta"],
    [
        "A photo of a woman in a red dress walking on a beach at sunset, highly detailed",
        "A photo of a man in a blue suit walking in a city at night, highly detailed",
        "An oil painting of a woman in a red dress dancing in the rain",
        "a close-up photo of a red dress on a mannequin, studio lighting",
        "A photo of a woman walking on a beach, 35mm, film grain",
        "the the the the the the the",
    ],
    # Unicode letters and digits are word characters; underscores and punctuation split.
    ["Café naïve 3d_render", "cafe naive 3d render", "CAFÉ NAÏVE render 3d"],
    # Longer shared runs: the 3- and 4-gram precisions matter.
    [
        "a portrait of an old man with a long white beard in the rain",
        "a portrait of an old man with a long grey beard in the snow",
        "a portrait of a young woman with long white hair in the rain",
    ],
    [],
    ["only one"],
]


def tok(s):
    s = s.lower().replace("\u2019", "'")
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", s)


def self_bleu(prompts):
    if len(prompts) < 2:
        return None
    toks = [tok(p) for p in prompts]
    sm = SmoothingFunction().method1
    scores = [
        sentence_bleu(toks[:i] + toks[i + 1 :], h, smoothing_function=sm)
        for i, h in enumerate(toks)
    ]
    return sum(scores) / len(scores)


def main():
    cases = [{"prompts": p, "self_bleu": self_bleu(p)} for p in CASES]
    with open(OUT, "w") as f:
        json.dump({"nltk": nltk.__version__, "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for c in cases:
        print(c["self_bleu"], c["prompts"][:1])


if __name__ == "__main__":
    main()
