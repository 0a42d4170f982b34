"""The efficiency benchmark's report: ratios against our model, memory growth with the side, the markdown
table and the log-log figures, from the rows ``efficiency.run`` measured."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..paths import atomic_path

TILE_VARIANTS = ("tiles_naive", "tiles_chunked", "tiles_checkpointed")
# Each baseline's accuracy on the same task (identification at 2528²) at the same training budget as ours,
# from the time-to-accuracy benchmark (results/benchmarks/time_to_accuracy.json): variant → its case.
ACCURACY_CASES = {"saccade": "identification_2528", "proxy_cnn": "identification_2528_proxy_cnn",
                  "resnet18_downsampled": "identification_2528_resnet18_downsampled"}
MIN_TIME_S = 2.0  # a configuration is timed for at least this long: a few-ms case gets hundreds of runs


def _find(rows, variant, side, phase, batch, source="lazy"):
    for row in rows:
        if (row["variant"], row["side"], row["phase"], row["batch"], row["source"]) == (variant, side, phase, batch, source) \
                and "error" not in row:
            return row
    return None


def _peak_mib(row: dict) -> float | None:
    return row.get("peak_allocated_mib") or row.get("peak_rss_mib")


def ratios(rows: list[dict]) -> list[dict]:
    """Baseline ÷ model for time, work memory and the whole process's peak memory, at each side and case
    both were measured in. ``tiles (strongest)`` is, per case, the fastest of the tile settings for time
    and the leanest for memory: the headline compares against it, not against the naive one."""
    out = []
    for row in rows:
        if row["variant"] == "saccade" or "error" in row:
            continue
        ours = _find(rows, "saccade", row["side"], row["phase"], row["batch"], row["source"])
        if ours is not None:
            out.append(_ratio(row["variant"], row, row, ours))
    cases = {(r["side"], r["phase"], r["batch"], r["source"]) for r in rows if r["variant"] in TILE_VARIANTS}
    for side, phase, batch, source in sorted(cases):
        tiles = [t for t in (_find(rows, v, side, phase, batch, source) for v in TILE_VARIANTS) if t]
        ours = _find(rows, "saccade", side, phase, batch, source)
        if tiles and ours:
            fastest = min(tiles, key=lambda r: r["median_s"])
            leanest = min(tiles, key=lambda r: r.get("work_mib") or float("inf"))
            out.append(_ratio("tiles (strongest)", fastest, leanest, ours))
    return out


def _ratio(label: str, timed: dict, weighed: dict, ours: dict) -> dict:
    work = weighed["work_mib"] / ours["work_mib"] if ours.get("work_mib") and weighed.get("work_mib") else None
    peak = _peak_mib(weighed) / _peak_mib(ours) if _peak_mib(ours) and _peak_mib(weighed) else None
    return {"baseline": label, "source": timed["source"], "side": timed["side"], "phase": timed["phase"],
            "batch": timed["batch"], "time_ratio": timed["median_s"] / ours["median_s"], "memory_ratio": work,
            "peak_ratio": peak, "timed_variant": timed["variant"], "weighed_variant": weighed["variant"]}


def memory_growth(rows: list[dict]) -> list[dict]:
    """Our model's memory at each side relative to the first side (target: ≤ +10% up to 10112²)."""
    out = []
    for source in ("lazy", "file"):
        for phase, batch in (("infer", 1), ("infer", 16), ("train", 16)):
            found = [r for r in rows if r["variant"] == "saccade" and r["source"] == source and r["phase"] == phase
                     and r["batch"] == batch and "error" not in r and r.get("work_mib")]
            found.sort(key=lambda r: r["side"])
            if len(found) >= 2:
                out.append({"source": source, "phase": phase, "batch": batch,
                            "sides": [r["side"] for r in found], "work_mib": [r["work_mib"] for r in found],
                            "growth": found[-1]["work_mib"] / found[0]["work_mib"] - 1,
                            "peak_growth": (found[-1].get("peak_allocated_mib") or found[-1]["peak_rss_mib"])
                            / (found[0].get("peak_allocated_mib") or found[0]["peak_rss_mib"]) - 1})
    return out


def markdown(result: dict) -> str:
    rows = result["rows"]
    gpu = result["device"].startswith("cuda")
    memory_label = "peak allocated MiB" if gpu else "work MiB (peak RSS − bare process)"
    lines = [f"# Efficiency on {result['device_name']} ({result['device_tag']})", "",
             f"Commit {result['git_commit']}, torch {result['torch']}, "
             f"{'' if gpu else str(rows[0]['threads']) + ' threads, ' if rows else ''}float32, median of "
             f"{rows[0]['repeats'] if rows else '?'} runs after a warm-up, or of as many as fill "
             f"{MIN_TIME_S:g} s (fast cases), each configuration in a fresh process"
             f"{'' if gpu or result.get('quick') else ' (ours in three, its row the median of their times and peaks)'}. "
             f"Written by `python -m saccadelib bench --device {result['device']}` in {result['wall_s']:.0f} s.", "",
             f"| variant | source | side | phase | batch | median ms | images/s | {memory_label} | "
             f"whole-process peak MiB | GMAC/image | params M |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['source']} | {r['side']} | {r['phase']} | {r['batch']} | "
                         f"failed: {r['error']} | | | | | |")
            continue
        macs = f"{r['macs_per_image'] / 1e9:.3g}" if r.get("macs_per_image") else ""
        lines.append(f"| {r['variant']} | {r['source']} | {r['side']} | {r['phase']} | {r['batch']} | "
                     f"{r['median_s'] * 1000:.1f} | {r['images_per_s']:.3g} | {r['work_mib']:.0f} | "
                     f"{_peak_mib(r):.0f} | {macs} | {r['parameters'] / 1e6:.2f} |")
    lines += ["", "## Ratios (baseline ÷ our model, same run)", "",
              "`tiles (strongest)`: per case the fastest tile setting for time and the leanest for memory. Work "
              "memory leaves out what every PyTorch process holds; the whole-process peak includes it.", "",
              "| baseline | source | side | phase | batch | time × | work memory × | whole-process peak × |",
              "|---|---|---|---|---|---|---|---|"]
    for q in ratios(rows):
        mem = f"{q['memory_ratio']:.1f}" if q["memory_ratio"] else ""
        peak = f"{q['peak_ratio']:.2f}" if q["peak_ratio"] else ""
        label = q["baseline"]
        if label == "tiles (strongest)":
            label += f" ({q['timed_variant']}; {q['weighed_variant']})"
        lines.append(f"| {label} | {q['source']} | {q['side']} | {q['phase']} | {q['batch']} | "
                     f"{q['time_ratio']:.3g} | {mem} | {peak} |")
    lines += _accuracy_lines(result)
    growth = memory_growth(rows)
    if growth:
        lines += ["", "## Our model's memory against the image side", "",
                  "| source | phase | batch | sides | memory MiB | growth of that | growth of the whole process's peak |",
                  "|---|---|---|---|---|---|---|"]
        for g in growth:
            lines.append(f"| {g['source']} | {g['phase']} | {g['batch']} | {', '.join(map(str, g['sides']))} | "
                         f"{', '.join(f'{m:.0f}' for m in g['work_mib'])} | {g['growth']:+.1%} | {g['peak_growth']:+.1%} |")
    if result.get("photo"):
        p = result["photo"]
        lines += ["", f"## One {p['size'][0]}×{p['size'][1]} JPEG photo, end to end on the CPU "
                      f"({p['threads']} threads, median of {p['repeats']})", "",
                  "| step | ms | share of end to end |", "|---|---|---|"]
        total = p["median_s"]["end_to_end"]
        for k, v in p["median_s"].items():
            share = f"{v / total:.0%}" if k not in ("end_to_end", "full_decode_for_reference") else ""
            lines.append(f"| {k.replace('_', ' ')} | {v * 1000:.1f} | {share} |")
        lines += ["", f"The crops were decoded at {p['crop_decode_size']} (JPEG DCT-domain reduction)."]
    lines += ["", "Not measured: " + result["not_measured"], ""]
    if result.get("memory_note"):
        lines += ["Memory note: " + result["memory_note"], ""]
    return "\n".join(lines)


def _accuracy_lines(result: dict) -> list[str]:
    """Cost and accuracy side by side for the models trained on the same task at the same budget."""
    accuracy = result.get("accuracy") or {}
    if not accuracy:
        return []
    rows = result["rows"]
    lines = ["", "## Cost beside accuracy (identification at 2528², the same training budget)", "",
             "| model | test accuracy | trained minutes | inference ms per image (batch 1) | "
             "training images/s (batch 16) | whole-process peak MiB (inference) |", "|---|---|---|---|---|---|"]
    side = min(r["side"] for r in rows)
    for variant, acc in accuracy.items():
        infer = _find(rows, variant, side, "infer", 1)
        train = _find(rows, variant, side, "train", 16)
        cells = [variant, f"{100 * acc['test_accuracy']:.1f}%", f"{acc['minutes']:.0f}",
                 f"{infer['median_s'] * 1000:.1f}" if infer else "",
                 f"{train['images_per_s']:.0f}" if train else "",
                 f"{_peak_mib(infer):.0f}" if infer else ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The tile and full-side ResNet-18 were not trained at this budget: on 2 CPU cores a 144-tile "
                  "training step takes 12-13 s, so 30 minutes are 150 steps."]
    return lines


def accuracy_from(path: Path) -> dict:
    """Variant → its time-to-accuracy row (mean over seeds) for the variants in ACCURACY_CASES."""
    if not path.exists():
        return {}
    rows = json.loads(path.read_text())["rows"]
    out = {}
    for variant, case in ACCURACY_CASES.items():
        found = [r for r in rows if r["case"] == case]
        if found:
            out[variant] = {"case": case, "seeds": [r["seed"] for r in found],
                            "test_accuracy": statistics.mean(r["test_accuracy"] for r in found),
                            "minutes": statistics.mean(r["minutes"] for r in found)}
    return out


def plot(rows: list[dict], out_dir: Path, tag: str) -> None:
    """Latency and memory against the image side, log-log, one line per (variant, source, case)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415 (the study extra)

    good = [r for r in rows if "error" not in r]
    keys = sorted({f"{r['variant']} {r['source']} b{r['batch']}" for r in good})
    colour = {key: plt.get_cmap("tab20")(i % 20) for i, key in enumerate(keys)}  # one colour per line, both panels
    for metric, label, name in (("median_s", "seconds per call", "latency"),
                                ("work_mib", "memory (MiB)", "memory")):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, phase in zip(axes, ("infer", "train")):
            lines = {}
            for r in good:
                if r["phase"] == phase and r.get(metric):
                    lines.setdefault(f"{r['variant']} {r['source']} b{r['batch']}", []).append((r["side"], r[metric]))
            for key, points in sorted(lines.items()):
                points.sort()
                ax.plot(*zip(*points), marker="o", label=key, color=colour[key],
                        linestyle="-" if key.startswith("saccade") else "--")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("image side (px)")
            ax.set_ylabel(label)
            ax.set_title(f"{'inference' if phase == 'infer' else 'one training step'} ({tag})")
            ax.grid(True, which="both", alpha=0.3)
            if lines:
                ax.legend(fontsize=7)
        fig.tight_layout()
        with atomic_path(out_dir / f"{name}_{tag}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=110)
        plt.close(fig)
