#!/usr/bin/env python3
"""Fails when docs/ARCHITECTURE.md no longer matches the source tree.

Every source file of both crates must be named in the code map (a file
`x.rs` as `x.rs`, a directory module `x/mod.rs` as `x/`, a file `d/x.rs`
may also be named `x` in the entry of its directory `d/`), and every file
or directory the map names in bold (`**`name.rs`**`, `**`dir/`**`) must
exist. So a file added without a line in the map, or a file the map
describes after it was moved or deleted, stops CI.

Standard library only.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["crates/tsstore/src", "crates/tsstore-server/src"]
# Test and bench files are named in the map too (their top level: shared
# helpers in subfolders are named by folder).
SUITES = [
    "crates/tsstore/tests",
    "crates/tsstore/benches",
    "crates/tsstore-server/tests",
    "crates/tsstore-server/benches",
]


def entry(doc, directory):
    """The code map's entry of `directory/`: from its bold name to the next entry."""
    m = re.search(rf"\*\*`{re.escape(directory)}/`\*\*", doc)
    if not m:
        return ""
    rest = doc[m.end():]
    end = re.search(r"\n(?:- )?\*\*`|\n#", rest)
    return rest[: end.start() if end else len(rest)]


def main():
    doc = open(os.path.join(ROOT, "docs", "ARCHITECTURE.md"), encoding="utf-8").read()
    problems = []
    names = set()
    for crate in CRATES:
        src = os.path.join(ROOT, crate)
        for root, dirs, files in os.walk(src):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.normpath(os.path.relpath(root, src))
            for d in dirs:
                names.add(d + "/")
            for f in files:
                if not f.endswith(".rs"):
                    continue
                names.add(f)
                if f in ("lib.rs", "main.rs"):
                    shown = f
                elif f == "mod.rs":
                    shown = os.path.basename(root) + "/"
                else:
                    shown = f
                named = f"`{shown}`" in doc or re.search(rf"[`/(]{re.escape(shown)}[`),]", doc)
                if not named and rel != ".":
                    named = f"`{f[:-3]}`" in entry(doc, os.path.basename(root))
                if not named:
                    problems.append(f"{crate}/{os.path.normpath(os.path.join(rel, f))}: not in docs/ARCHITECTURE.md's code map")
    for suite in SUITES:
        for f in sorted(os.listdir(os.path.join(ROOT, suite))):
            kind = os.path.basename(suite)
            if f.endswith(".rs") and f"`{f}`" not in doc and f"`{kind}/{f}`" not in doc:
                problems.append(f"{suite}/{f}: not in docs/ARCHITECTURE.md")
    for m in re.finditer(r"\*\*`([\w./-]+(?:\.rs|/))`\*\*", doc):
        named = m.group(1)
        if os.path.basename(named.rstrip("/")) + ("/" if named.endswith("/") else "") not in names:
            if named.rstrip("/") in ("tests", "benches", "fuzz") or os.path.exists(os.path.join(ROOT, named)):
                continue
            problems.append(f"docs/ARCHITECTURE.md names {named}, which is not in the tree")
    for p in problems:
        print(p)
    if not problems:
        print("docs/ARCHITECTURE.md names every source file, and only files that exist")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
