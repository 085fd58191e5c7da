#!/usr/bin/env python3
"""Renders the shared results file of bench/run as a Markdown table.

Results file: one row per figure, tab-separated, written by `record` in bench/run:

    label  unit  wharf  distribution  limit  target  [basis]

Empty or "-" fields are absent values. `basis`, when present, names what the `limit` field
holds if it is a baseline measured on Wharf in the same run (e.g. "anonymous" for the same
request without credentials) rather than a physical limit; it labels that column's ratio. `target` is a comma-separated list of conditions, all
of which must hold for the row to be met:

    dist>=X     Wharf / distribution >= X        (higher is better)
    limit>=X    Wharf / limit >= X               (limit or baseline)
    limit<=X    Wharf / limit <= X               (lower is better against a baseline, e.g. wall time)
    <dist       Wharf < distribution             (lower is better, e.g. latency)
    <X          Wharf < X                        (absolute bound, e.g. RSS in MiB)
"""

import sys


def num(s):
    s = (s or "").strip()
    if s in ("", "-"):
        return None
    try:
        return float(s)
    except ValueError:
        return None


def fmt(x):
    if x is None:
        return "–"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def check(cond, w, d, lim, basis=""):
    """Returns (description, met: True/False/None)."""
    cond = cond.strip()
    if cond.startswith("dist>="):
        x = float(cond[6:])
        r = ratio(w, d)
        return f"≥ {x:g}× distribution", None if r is None else r >= x
    if cond.startswith("limit>="):
        x = float(cond[7:])
        r = ratio(w, lim)
        return f"≥ {x:g}× {basis or 'limit'}", None if r is None else r >= x
    if cond.startswith("limit<="):
        x = float(cond[7:])
        r = ratio(w, lim)
        return f"≤ {x:g}× {basis or 'limit'}", None if r is None else r <= x
    if cond == "<dist":
        return "< distribution", None if w is None or d is None else w < d
    if cond.startswith("<"):
        x = float(cond[1:])
        return f"< {x:g}", None if w is None else w < x
    return cond, None


def main(path):
    rows, met_n, total_n = [], 0, 0
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            p = (line.split("\t") + [""] * 7)[:7]
            label, unit, w, d, lim, target, basis = p
            w, d, lim = num(w), num(d), num(lim)
            descs, mets = [], []
            for cond in filter(None, target.split(",")):
                desc, met = check(cond, w, d, lim, basis)
                descs.append(desc)
                mets.append(met)
            if not mets:
                met_s = ""
            elif any(m is None for m in mets):
                met_s = "n/a"
            else:
                total_n += 1
                ok = all(mets)
                met_n += ok
                met_s = "yes" if ok else "**NO**"
            rd = ratio(w, d)
            rl = ratio(w, lim)
            rows.append(
                [
                    f"{label} ({unit})" if unit else label,
                    fmt(w),
                    fmt(d),
                    "–" if rd is None else f"{rd:.2f}×",
                    (f"{basis or 'limit'} = {fmt(lim)}" if w is None and d is None and lim is not None else "–")
                    if rl is None
                    else f"{rl:.2f}× of {fmt(lim)}" + (f" ({basis})" if basis else ""),
                    ", ".join(descs),
                    met_s,
                ]
            )
    head = ["scenario", "Wharf", "distribution", "Wharf/distribution", "Wharf/limit or baseline", "target", "met?"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["--:"] * 4 + ["---", ":-:"]) + "|"]
    for r in rows:
        out.append("| " + " | ".join(r) + " |")
    out.append("")
    out.append(f"Targets met: {met_n} of {total_n} evaluated.")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
