#!/usr/bin/env python3
"""Fails when a crate's files import each other in a cycle.

The rule (docs/ARCHITECTURE.md, "Module graph"): draw an edge from file A
to file B when A names an item that lives in B, and B is not A's ancestor
module (a child may always use what its parents define: that is how Rust
modules nest). Re-exports and `use` aliases are followed to the file that
defines the item, so `use crate::Store` counts as an edge to the file
where `Store` is written, not to `lib.rs`. The graph must have no cycle.

Usage: scripts/check-cycles.py [crate-src-dir ...]   (default: both crates)
       scripts/check-cycles.py --self-test           (plants a cycle, must fail)

Standard library only, so CI needs nothing installed for it.
"""

import os
import re
import sys
import tempfile

ITEM_KINDS = r"(?:fn|struct|enum|const|static|type|trait|union|mod|macro_rules!)"


def strip_code(text):
    """Removes comments, strings and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif c == "r" and re.match(r'r#*"', text[i:i + 20]) and not re.match(r"\w", text[i - 1:i] or " "):
            m = re.match(r'r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path tuple -> file path
        for root, _, names in os.walk(src):
            for name in names:
                if not name.endswith(".rs"):
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, src)[:-3].split(os.sep)
                if rel in (["lib"], ["main"]):
                    mod = ()
                elif rel[-1] == "mod":
                    mod = tuple(rel[:-1])
                else:
                    mod = tuple(rel)
                if rel == ["main"] and () in self.files:
                    continue  # a binary beside a library: the library is the crate
                self.files[mod] = path
        self.code = {m: strip_code(open(p, encoding="utf-8").read()) for m, p in self.files.items()}
        # Per module (file or inline): name -> absolute-or-relative path it imports, and globs.
        self.uses = {}
        self.globs = {}
        self.refs = {}  # file module -> list of (context module, segments)
        for mod, code in self.code.items():
            self.scan(mod, code)

    def scan(self, mod, code):
        """Finds use trees and inline paths, with the inline module each sits in."""
        spans = []  # (start, end, inline module path)
        for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
            depth, j = 1, m.end()
            while j < len(code) and depth:
                depth += {"{": 1, "}": -1}.get(code[j], 0)
                j += 1
            spans.append((m.start(), j, m.group(1)))

        def context(pos):
            ctx = list(mod)
            for start, end, name in spans:
                if start <= pos < end:
                    ctx.append(name)
            return tuple(ctx)

        refs = self.refs.setdefault(mod, [])
        for m in re.finditer(r"\buse\s+([^;]+);", code):
            ctx = context(m.start())
            for segs, alias in expand_tree(m.group(1)):
                if segs[-1] == "*":
                    self.globs.setdefault(ctx, []).append(segs[:-1])
                    continue
                if segs[-1] == "self":
                    segs = segs[:-1]
                name = alias or segs[-1]
                if name != "_":
                    self.uses.setdefault(ctx, {})[name] = segs
                refs.append((ctx, segs))
        body = re.sub(r"\buse\s+[^;]+;", " ", code)
        for m in re.finditer(r"\b(\w+)((?:\s*::\s*\w+)+)", body):
            segs = [m.group(1)] + [s for s in re.split(r"\s*::\s*", m.group(2)) if s]
            refs.append((context(m.start()), segs))

    def absolute(self, segs, ctx, depth=0):
        """The absolute path a path means in `ctx`, or None if outside the crate."""
        if not segs or depth > 20:
            return None
        head = segs[0]
        if head == "crate":
            return list(segs[1:])
        if head in ("super", "self"):
            base = list(ctx)
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    if not base:
                        return None
                    base.pop()
                segs = segs[1:]
            return base + list(segs)
        # A child module of the context, or a name the context imported.
        if tuple(ctx) + (head,) in self.files:
            return list(ctx) + list(segs)
        for scope in [tuple(ctx[:k]) for k in range(len(ctx), -1, -1)][:1]:
            target = self.uses.get(scope, {}).get(head)
            if target is not None and target != segs[:len(target)]:
                resolved = self.absolute(target, scope, depth + 1)
                if resolved is not None:
                    return resolved + list(segs[1:])
        return None

    def defines(self, mod, name):
        code = self.code.get(mod, "")
        return re.search(rf"\b{ITEM_KINDS}\s+{re.escape(name)}\b", code) is not None

    def locate(self, path, depth=0):
        """The file module where the item an absolute path names is written."""
        cur = ()
        i = 0
        while i < len(path) and cur + (path[i],) in self.files:
            cur += (path[i],)
            i += 1
        rest = path[i:]
        if not rest or depth > 20:
            return cur
        # Inline modules: `a::inline::Item` lives in a's file.
        name = rest[0]
        target = self.uses.get(cur, {}).get(name)
        if target is not None and not self.defines(cur, name):
            resolved = self.absolute(target, cur, depth + 1)
            if resolved is not None and resolved != list(path):
                return self.locate(resolved + list(rest[1:]), depth + 1)
        if not self.defines(cur, name):
            for base in self.globs.get(cur, []):
                resolved = self.absolute(base, cur, depth + 1)
                if resolved is None:
                    continue
                there = self.locate(resolved + [name], depth + 1)
                if there != cur and self.defines(there, name):
                    return there
        return cur

    def edges(self):
        graph = {m: set() for m in self.files}
        for mod, refs in self.refs.items():
            for ctx, segs in refs:
                path = self.absolute(segs, ctx)
                if path is None:
                    continue
                target = self.locate(path)
                if target == mod or mod[:len(target)] == target:
                    continue  # itself, or an ancestor
                graph[mod].add(target)
        return graph


def expand_tree(tree):
    """`a::{b, c::{d as e, *}}` -> [(['a','b'], None), (['a','c','d'], 'e'), (['a','c','*'], None)]."""
    tree = re.sub(r"\s+", " ", tree).strip()
    tree = re.sub(r"^pub(\([^)]*\))?\s+", "", tree)
    results = []

    def walk(prefix, text):
        text = text.strip()
        if not text:
            return
        if "{" in text:
            head, _, inner = text.partition("{")
            inner = inner[:inner.rfind("}")]
            base = prefix + [s for s in head.strip().rstrip(":").split("::") if s.strip()]
            base = [s.strip() for s in base]
            for part in split_top(inner):
                walk(base, part)
            return
        alias = None
        m = re.match(r"(.*?)\s+as\s+(\w+)$", text)
        if m:
            text, alias = m.group(1), m.group(2)
        segs = prefix + [s.strip() for s in text.split("::") if s.strip()]
        if segs and segs[0] == "":
            segs = segs[1:]
        results.append((segs, alias))

    walk([], tree)
    return results


def split_top(text):
    parts, depth, cur = [], 0, []
    for c in text:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(src, quiet=False):
    crate = Crate(src)
    graph = crate.edges()
    name = lambda m: os.path.relpath(crate.files[m], src)
    found = cycles(graph)
    for comp in [] if quiet else found:
        print(f"{src}: import cycle through {len(comp)} files:")
        members = set(comp)
        for m in comp:
            for t in sorted(graph[m] & members):
                print(f"  {name(m)} -> {name(t)}")
    return not found


def self_test():
    """Plants a back edge in a tiny crate; the check must find it, and pass without it."""
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "store"))
        files = {
            "lib.rs": "mod store; mod query; pub use store::Store;\n",
            "store/mod.rs": "mod read;\npub struct Store;\nfn g() { read::f(None) }\n",
            "store/read.rs": "use crate::query::Query;\npub fn f(_: Option<Query>) {}\n",
            "query.rs": "pub struct Query;\n",
        }
        for rel, text in files.items():
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        if not check(tmp):
            print("self-test: a crate without cycles was reported")
            return False
        with open(os.path.join(tmp, "query.rs"), "a") as f:
            f.write("// planted\nfn g(_: crate::Store) {}\n")
        if check(tmp, quiet=True):
            print("self-test: the planted cycle query -> store -> read -> query was not found")
            return False
    print("self-test: the planted cycle was found")
    return True


def main():
    args = sys.argv[1:]
    if args == ["--self-test"]:
        return 0 if self_test() else 1
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = args or [os.path.join(root, "crates", c, "src") for c in ("tsstore", "tsstore-server")]
    ok = all([check(d) for d in dirs])
    if ok:
        print("no import cycles in " + ", ".join(os.path.relpath(d, root) for d in dirs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
