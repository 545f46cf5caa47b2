#!/usr/bin/env python3
"""Checks the workspace layout rules that docs/architecture.md states:

* no `.rs` file under `crates/*/src` is over 800 lines;
* within each crate, the files do not import each other in a circle: a file's references to
  `crate::a::b`, `super::x` and `self::x` paths (in `use` lines and in code) are resolved to the
  module file they name, and the graph of those edges has no cycle. A module's `mod x;`
  declaration and its re-exports of its own children (`pub use x::Item;`) are not edges: they
  say where a name lives, they do not use it.

Run from anywhere: `python3 tools/layout_check.py`; exit 1 with the offending files named.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MAX_LINES = 800


def module_of(crate_src, path):
    """The module path (a tuple) of a source file."""
    rel = os.path.relpath(path, crate_src)[:-3].split(os.sep)
    if rel[-1] in ("lib", "main", "mod"):
        rel = rel[:-1]
    return tuple(rel)


def strip_tests_and_comments(text):
    # Unit tests inside a file see their parent by design; only the file's own code counts.
    i = text.find("#[cfg(test)]\nmod tests")
    if i >= 0:
        text = text[:i]
    text = re.sub(r"//[^\n]*", "", text)
    # A module's re-exports of its children (`pub use child::Item;`) are its interface, like
    # `mod child;`: they say where a name lives, they do not use it.
    text = re.sub(r"(?m)^pub(\([a-z]+\))? use (self::)?[a-z_][a-z0-9_]*::[^;]*;", "", text)
    return text


def inline_mods(text):
    """For each inline `mod name { ... }` of a file: (start, end, name), nested ones too."""
    out = []
    for m in re.finditer(r"\bmod\s+([a-z_][a-z0-9_]*)\s*\{", text):
        depth, j = 0, m.end() - 1
        while j < len(text):
            depth += text[j] == "{"
            depth -= text[j] == "}"
            if depth == 0:
                break
            j += 1
        out.append((m.end(), j, m.group(1)))
    return out


def path_items(text, i):
    """The paths that start at `text[i:]` (after `crate::` and the like): `a::b::C` is one,
    `a::{b, c::D}` is two; each a list of segments."""
    segs = []
    while True:
        m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*|\*|\{)", text[i:])
        if not m:
            return [segs] if segs else []
        tok = m.group(1)
        i += m.end()
        if tok == "{":
            out, depth, start = [], 1, i
            j = i
            while j < len(text) and depth:
                depth += text[j] == "{"
                depth -= text[j] == "}"
                j += 1
            inner = text[start:j - 1]
            # Split the group at top-level commas.
            parts, depth, cur = [], 0, ""
            for ch in inner:
                if ch == "," and depth == 0:
                    parts.append(cur)
                    cur = ""
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                cur += ch
            parts.append(cur)
            for part in parts:
                part = part.strip()
                if not part or part == "self":
                    out.append(segs)
                    continue
                for sub in path_items(part, 0) or [[]]:
                    out.append(segs + sub)
            return out
        if tok == "*":
            return [segs]
        segs.append(tok)
        if text[i:i + 2] != "::":
            return [segs]
        i += 2


def refs(text, here, modules):
    """The modules `text` (the file of module `here`) refers to."""
    out = set()
    inl = inline_mods(text)

    def nesting(pos):
        return tuple(name for (a, b, name) in inl if a <= pos < b)

    # A child module named by its bare name (`tokenizer::load`, `use backbone::X`).
    for child in [m for m in modules if len(m) == len(here) + 1 and m[:-1] == here]:
        for m in re.finditer(r"(?<![:\w])" + child[-1] + r"::", text):
            if not nesting(m.start()):
                out.add(child)
    for m in re.finditer(r"\b(crate|super|self)::", text):
        head = m.group(1)
        inner = here + nesting(m.start())
        for rest in path_items(text, m.end()):
            if head == "crate":
                base = ()
            elif head == "super":
                base = inner[:-1]
                while rest and rest[0] == "super":
                    base, rest = base[:-1], rest[1:]
            else:
                base = inner
            path = base + tuple(rest)
            # The longest prefix that is a module file of this crate.
            while path and path not in modules:
                path = path[:-1]
            if path in modules and path != here:
                out.add(path)
    return out


def check_crate(crate_dir):
    src = os.path.join(crate_dir, "src")
    files = {}
    for d, _, fs in os.walk(src):
        for f in fs:
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                files[module_of(src, p)] = p
    problems = []
    for mod, p in sorted(files.items()):
        n = sum(1 for _ in open(p, encoding="utf-8"))
        if n > MAX_LINES:
            problems.append(f"{os.path.relpath(p, ROOT)}: {n} lines (at most {MAX_LINES})")
    graph = {}
    for mod, p in files.items():
        raw = open(p, encoding="utf-8").read()
        text = strip_tests_and_comments(raw)
        graph[mod] = refs(text, mod, files) - {mod}
        code = re.sub(r"(?m)^\s*(pub(\([a-z]+\))? )?mod [a-z_][a-z0-9_]*;", "", text)
        # A name the module re-exports from a child and then uses itself is a use of the child.
        for m in re.finditer(r"(?m)^pub(?:\([a-z]+\))? use (?:self::)?([a-z_][a-z0-9_]*)::([^;]*);", raw):
            child = mod + (m.group(1),)
            if child not in files:
                continue
            for seg in path_items(m.group(2), 0):
                if seg and re.search(r"(?<![:\w])" + re.escape(seg[-1]) + r"\b", code):
                    graph[mod].add(child)
    # Cycles: Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for comp in sccs:
        names = sorted(os.path.relpath(files[m], ROOT) for m in comp)
        problems.append("import circle: " + " <-> ".join(names))
    return problems


def main():
    crates = os.path.join(ROOT, "crates")
    problems = []
    for c in sorted(os.listdir(crates)):
        if os.path.isdir(os.path.join(crates, c, "src")):
            problems += check_crate(os.path.join(crates, c))
    for p in problems:
        print(p)
    if problems:
        print(f"layout check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("layout check: no file over 800 lines, no import circle between files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
