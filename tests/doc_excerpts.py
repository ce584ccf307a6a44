"""Checks that every ```cpp and ```c code block of a guide is an excerpt of
one of the given source files: its lines, in order, each with one common
indentation added (so a block may come from inside a function). The sources
are built and run by their own tests, so the guide shows code that compiles
and works.

usage: doc_excerpts.py GUIDE MIN_BLOCKS SOURCE...
"""
import sys


def blocks_of(text):
    out = []
    for lang in ("cpp", "c"):
        for part in text.split("```" + lang + "\n")[1:]:
            out.append(part.split("\n```", 1)[0].split("\n"))
    return out


def is_excerpt(block, lines):
    first = block[0]
    for i, line in enumerate(lines):
        if not line.endswith(first):
            continue
        indent = line[: len(line) - len(first)]
        if indent.strip():
            continue
        ok = True
        for k, want in enumerate(block):
            if i + k >= len(lines):
                ok = False
                break
            got = lines[i + k]
            if want == "" and got.strip() == "":
                continue
            if got != indent + want:
                ok = False
                break
        if ok:
            return True
    return False


def main():
    guide, min_blocks, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    blocks = blocks_of(open(guide).read())
    lines = [open(s).read().split("\n") for s in sources]
    bad = [b for b in blocks if not any(is_excerpt(b, l) for l in lines)]
    for b in bad:
        print("%s shows code that is not in %s:\n%s\n" % (guide, " or ".join(sources), "\n".join(b)))
    if len(blocks) < min_blocks:
        print("%s has %d code blocks, expected at least %d" % (guide, len(blocks), min_blocks))
    return 1 if bad or len(blocks) < min_blocks else 0


sys.exit(main())
