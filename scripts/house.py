#!/usr/bin/env python3
"""The house rules, checked (run by .ci/run; issue 24.5).

1. No Rust file in src/, tests/ or benches/ over 500 lines. An exception goes in
   `.house-exemptions` at the root: one path, a space, and its reason per line.
2. README.md at most 250 lines.
3. No cycle between the crate's top-level modules (`use crate::a::…` in a file
   of module b is an edge b → a), nor between the files of one directory
   (`super::x`/`crate::m::x` from m/y.rs is an edge y → x).
4. The sync layer (src/sync/) names no rusqlite type: it talks to the store's
   domain interface.

Each failure names the file and says how to mend it; the exit code is 1.
"""

import re
import sys
from pathlib import Path

MAX_LINES = 500
MAX_README = 250
ROOT = Path(__file__).resolve().parent.parent


def exemptions():
    path = ROOT / ".house-exemptions"
    out = {}
    if path.exists():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, reason = line.partition(" ")
            if not reason.strip():
                yield_error(f".house-exemptions:{n}: {name} has no reason; give one after the path")
            out[name] = reason.strip()
    return out


errors = []


def yield_error(message):
    errors.append(message)


def check_sizes():
    exempt = exemptions()
    for top in ("src", "tests", "benches"):
        for path in sorted((ROOT / top).rglob("*.rs")):
            rel = path.relative_to(ROOT).as_posix()
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES and rel not in exempt:
                yield_error(
                    f"{rel}: {lines} lines, over {MAX_LINES}. Split it by concern into a module "
                    f"directory (tests: by behaviour), or, rarely, list it in .house-exemptions with a reason."
                )
    readme = len((ROOT / "README.md").read_text().splitlines())
    if readme > MAX_README:
        yield_error(
            f"README.md: {readme} lines, over {MAX_README}. Move reference material to docs/ "
            f"(operations.md, design.md, archive.md) and link it."
        )


def module_of(path):
    """src/store/usage.rs -> ('store', 'usage'); src/store/mod.rs -> ('store',)."""
    parts = list(path.relative_to(ROOT / "src").with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


USE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)::\{([^}]*)\}")


def code_of(text):
    """The text without comments and string literals (a doc example is not a use)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def references(module, text):
    """Absolute module paths the file refers to."""
    code = code_of(text)
    found = []
    for root, rest in USE.findall(code):
        found.append((root, rest.split("::")[1:]))
    for root, group in GROUP.findall(code):
        for item in group.split(","):
            item = item.strip().split("::")
            if item and item[0] and item[0] != "self":
                found.append((root, item))
    out = []
    for root, segs in found:
        if root == "crate":
            out.append(tuple(segs))
        else:
            # super:: from a file module is its parent; from mod.rs the same rule applies
            # to the module itself.
            base = module[:-1]
            while segs and segs[0] == "super":
                base, segs = base[:-1], segs[1:]
            out.append(tuple(base) + tuple(segs))
    return out


def find_cycle(edges):
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def check_cycles():
    files = {module_of(p): p for p in (ROOT / "src").rglob("*.rs")}
    modules = set(files)
    top = {}
    siblings = {}
    for module, path in files.items():
        if not module:
            continue
        for target in references(module, path.read_text()):
            # The longest prefix of the path that is a module file.
            while target and target not in modules:
                target = target[:-1]
            if not target:
                continue
            if target[0] != module[0]:
                top.setdefault(module[0], set()).add(target[0])
            # Files of one directory: module a/b/x and target a/b/y (or below y).
            parent = module[:-1]
            if len(target) > len(parent) and target[: len(parent)] == parent and parent:
                sib = target[: len(parent) + 1]
                if sib != module and sib != parent:
                    siblings.setdefault(module, set()).add(sib)
    cycle = find_cycle(top)
    if cycle:
        yield_error(
            "module cycle between top-level modules: " + " -> ".join(cycle)
            + ". Move what both need into the lower layer, or pass it in."
        )
    cycle = find_cycle(siblings)
    if cycle:
        yield_error(
            "module cycle between files of one directory: "
            + " -> ".join("::".join(m) for m in cycle)
            + ". Move what both need into the parent or a third file."
        )


def check_sync_is_storage_free():
    for path in sorted((ROOT / "src" / "sync").rglob("*.rs")):
        for n, line in enumerate(code_of(path.read_text()).splitlines(), 1):
            if "rusqlite" in line:
                yield_error(
                    f"{path.relative_to(ROOT)}: names rusqlite. The sync layer talks to the "
                    f"store's domain interface (store::Store methods); add a method there."
                )
                break


def main():
    check_sizes()
    check_cycles()
    check_sync_is_storage_free()
    for e in errors:
        print(f"house rule broken: {e}")
    if errors:
        return 1
    print("house rules hold: files <= 500 lines, README <= 250, no module cycle, sync free of rusqlite")
    return 0


if __name__ == "__main__":
    sys.exit(main())
