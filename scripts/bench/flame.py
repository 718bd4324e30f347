#!/usr/bin/env python3
"""Folds `perf script` output into a flame graph (SVG) and a text summary.

    perf script -i perf.data | python3 flame.py OUT_PREFIX [TITLE]

writes OUT_PREFIX.folded (one "process;frame;...;leaf count" line per stack, the format
flame graph tools read), OUT_PREFIX.svg (a flame graph, widths proportional to samples,
one tower per process group) and OUT_PREFIX.txt (each group's share of the samples and
its hottest functions, self and inclusive). Process groups: the API server (`crm` and its
threads), PostgreSQL (`postgres`), the load generator (`wrk`, `pgbench`, `loadgen`),
the kernel's idle and everything else. Used by `make bench` with BENCH_PROFILE set
(scripts/bench.sh); see docs/benchmarks.md.
"""

import collections
import html
import re
import sys

GROUPS = [
    ("crm server", re.compile(r"^(crm|actix|tokio|sqlx)")),
    ("postgres", re.compile(r"^(postgres|postmaster)")),
    ("load generator", re.compile(r"^(wrk|pgbench|loadgen)")),
    ("idle", re.compile(r"^swapper")),
]
HEADER = re.compile(r"^(\S.*?)\s+(\d+)(?:/(\d+))?\s+")
FRAME = re.compile(r"^\s+[0-9a-f]+\s+(.*?)(?:\s+\((.*)\))?$")


def group_of(comm):
    for name, pattern in GROUPS:
        if pattern.search(comm):
            return name
    return "other"


def clean(symbol, dso):
    if symbol in ("[unknown]", ""):
        base = dso.rsplit("/", 1)[-1] if dso else "?"
        return f"[{base}]"
    symbol = re.sub(r"\+0x[0-9a-f]+$", "", symbol)
    # Rust's legacy mangling leaves a hash suffix: ::h0123456789abcdef
    symbol = re.sub(r"::h[0-9a-f]{16}$", "", symbol)
    return symbol.replace(";", ":")


def read_stacks(lines):
    stacks = collections.Counter()
    comm, frames = None, []

    def flush():
        if comm is not None:
            path = [group_of(comm)] + list(reversed(frames))
            stacks[tuple(path)] += 1

    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            flush()
            comm, frames = None, []
            continue
        if not line[0].isspace():
            flush()
            match = HEADER.match(line)
            comm, frames = (match.group(1) if match else line.split()[0]), []
            continue
        match = FRAME.match(line)
        if match and comm is not None:
            frames.append(clean(match.group(1), match.group(2) or ""))
    flush()
    return stacks


def summary(stacks, title):
    total = sum(stacks.values()) or 1
    by_group = collections.Counter()
    self_time = collections.defaultdict(collections.Counter)
    inclusive = collections.defaultdict(collections.Counter)
    for path, count in stacks.items():
        group = path[0]
        by_group[group] += count
        self_time[group][path[-1] if len(path) > 1 else "(no frames)"] += count
        for frame in set(path[1:]):
            inclusive[group][frame] += count
    out = [f"{title}: {total} samples", ""]
    for group, count in by_group.most_common():
        out.append(f"## {group}: {count} samples, {100 * count / total:.1f}% of all")
        out.append("self:")
        for frame, n in self_time[group].most_common(15):
            out.append(f"  {100 * n / count:5.1f}%  {frame[:140]}")
        out.append("inclusive:")
        for frame, n in inclusive[group].most_common(25):
            out.append(f"  {100 * n / count:5.1f}%  {frame[:140]}")
        out.append("")
    return "\n".join(out)


def tree_of(stacks):
    root = {"name": "all", "count": 0, "children": {}}
    for path, count in stacks.items():
        root["count"] += count
        node = root
        for frame in path:
            node = node["children"].setdefault(
                frame, {"name": frame, "count": 0, "children": {}}
            )
            node["count"] += count
    return root


def colour(name, depth):
    if depth == 1:
        return "rgb(120,120,200)"
    seed = sum(ord(c) for c in name) % 60
    if "postgres" in name or name.startswith("Exec") or name.startswith("pg"):
        return f"rgb({200 + seed // 2},{120 + seed},{60})"
    return f"rgb({220 + seed // 3},{90 + seed * 2},{50 + seed})"


def svg(stacks, title, width=1600, row=16):
    root = tree_of(stacks)
    total = root["count"] or 1
    rects = []
    max_depth = 0

    def walk(node, x, depth):
        nonlocal max_depth
        max_depth = max(max_depth, depth)
        w = width * node["count"] / total
        if w < 0.3:
            return
        rects.append((x, depth, w, node["name"], node["count"]))
        child_x = x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            walk(child, child_x, depth + 1)
            child_x += width * child["count"] / total

    walk(root, 0.0, 0)
    height = (max_depth + 3) * row
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">',
        f'<rect width="100%" height="100%" fill="#fdfdf5"/>',
        f'<text x="6" y="{row - 3}" font-size="13">{html.escape(title)}</text>',
    ]
    for x, depth, w, name, count in rects:
        y = height - (depth + 1) * row
        label = f"{name} ({count} samples, {100 * count / total:.1f}%)"
        parts.append(
            f'<g><title>{html.escape(label)}</title><rect x="{x:.1f}" y="{y}" '
            f'width="{max(w - 0.5, 0.1):.1f}" height="{row - 1}" '
            f'fill="{colour(name, depth)}"/>'
        )
        chars = int(w / 6.6)
        if chars >= 4:
            text = name if len(name) <= chars else name[: chars - 2] + ".."
            parts.append(
                f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(text)}</text>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: perf script | flame.py OUT_PREFIX [TITLE]")
    prefix = sys.argv[1]
    title = sys.argv[2] if len(sys.argv) > 2 else "CPU samples"
    stacks = read_stacks(sys.stdin)
    if not stacks:
        sys.exit("flame.py: no samples in the input")
    with open(prefix + ".folded", "w") as f:
        for path, count in sorted(stacks.items()):
            f.write(";".join(path) + f" {count}\n")
    with open(prefix + ".svg", "w") as f:
        f.write(svg(stacks, title))
    text = summary(stacks, title)
    with open(prefix + ".txt", "w") as f:
        f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
