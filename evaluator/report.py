"""The printed summary of a result: one row per split (per class too where a
split has several), then the mean over splits; percentages with one decimal."""

from __future__ import annotations

from contract.names import METRIC_NAMES

UNDEFINED = "n/a"


def percent(value: float | None) -> str:
    """``0.8234`` → ``"82.3"``; ``None`` (undefined) → ``"n/a"``."""
    return UNDEFINED if value is None else f"{100.0 * value:.1f}"


def format_table(result: dict) -> str:
    """The result as a fixed-width text table (one line per row, no trailing spaces)."""
    header = ["split", *METRIC_NAMES, "images", "anomalous"]
    rows: list[list[str]] = []
    for sid, block in result["splits"].items():
        classes = block.get("classes", {})
        if len(classes) > 1:
            for cls, cb in classes.items():
                rows.append([f"  {sid}/{cls}", *(percent(cb.get(m)) for m in METRIC_NAMES),
                             str(cb.get("n_images", "")), str(cb.get("n_anomalous", ""))])
        rows.append([sid, *(percent(block.get(m)) for m in METRIC_NAMES),
                     str(block["n_images"]), str(block["n_anomalous"])])
    if len(result["splits"]) > 1:
        rows.append(["mean", *(percent(result["mean"].get(m)) for m in METRIC_NAMES), "", ""])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest]).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def format_summary(result: dict, out_path: str | None = None) -> str:
    """Title line, the table, warnings, and where the result went."""
    ev, bench, sub = result["evaluator"], result["benchmark"], result["submission"]
    pool = f", pool {ev['pool']}" if ev.get("pool") else ""
    if ev.get("aupro_steps") and ev["profile"] != "exact":
        pool += f", AUPRO {ev['aupro_steps']} {'strips' if ev['profile'] == 'ader-bench' else 'steps'}"
    lines = [
        f"{sub['method'].get('name', sub['name'])} ({sub['name']}) on {bench['name']} v{bench['version']}"
        f"{'' if result.get('complete', True) else ' (partial: not every split)'}, "
        f"profile {ev['profile']}{pool}, evaluator {ev['version']} (values in %)",
        "",
        format_table(result),
    ]
    if result.get("warnings"):
        lines += ["", f"{len(result['warnings'])} warning(s):"] + [f"  {w}" for w in result["warnings"]]
    if out_path is not None:
        extra = f" and {len(result['panels'])} panel(s)" if result.get("panels") else ""
        lines += ["", f"wrote {out_path}{extra} ({result['seconds']:.1f} s)"]
    return "\n".join(lines)
