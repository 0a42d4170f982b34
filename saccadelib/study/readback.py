"""Reading an experiment's finished runs back: one row per run (``collect``), means over seeds
(``summarize``), curves, trained models, the noisy-proxy scores, and saving tables and configs."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from .. import inference  # inference.load, looked up when called (tests replace it)
from ..config import to_dict
from ..datasets.twodigit import digit_overlap
from ..evaluation import evaluate
from ..paths import atomic_path, write_text_atomic
from ..plots import read_history
from ..registry import build, parameter_count
from ..runinfo import write_json
from .experiments import dataset_name, resolution_label
from .runs import RunSpec, run_folder


def configuration(spec: RunSpec) -> str:
    """What a table says a run was: a glimpse model's recipe by its decisive settings, else the defaults."""
    settings = spec.model_overrides
    if "classifier_reads" not in settings:
        return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
    text = f"{settings.get('glimpses')} glimpses, classifier reads {settings['classifier_reads']}"
    if settings.get("posterior_head") == "cells":
        text += f", cells posterior on a {settings.get('proxy_size', 32)}² proxy"
    return text


def count_parameters(spec: RunSpec) -> int:
    return parameter_count(build(spec.model, spec.resolved().model_cfg))


def collect(specs: list[RunSpec], runs_dir: str | Path, out_dir: str | Path,
            per_epoch: Callable[[RunSpec], int] | None = None) -> "pd.DataFrame":
    """One row per run (its test scores, epochs, canvases seen, minutes, seconds per epoch, parameters),
    written to ``out_dir/runs.csv``; each run's history.csv, metrics.json and config.json are copied to
    ``out_dir/runs/<folder>/`` so results/ keeps them. ``per_epoch`` gives the canvases a run's epoch
    reads where that is not its ``train_size`` (a stored training split smaller than it)."""
    # a run without train_size (FiveK: its prepared training split) leaves canvases seen unknown
    per_epoch = per_epoch or (lambda spec: spec.train_overrides.get("train_size"))
    out_dir = Path(out_dir)
    rows = []
    for spec in specs:
        folder = run_folder(runs_dir, spec)
        metrics = json.loads((folder / "metrics.json").read_text())
        keep = out_dir / "runs" / spec.folder()
        for name in ("history.csv", "metrics.json", "config.json"):
            with atomic_path(keep / name) as tmp:
                shutil.copyfile(folder / name, tmp)
        test, canvases = metrics.get("test", {}), per_epoch(spec)
        rows.append({
            "label": spec.label, "model": spec.model, "task": spec.task, "seed": spec.seed,
            "test_accuracy": test.get("accuracy"), "test_n": test.get("n"),
            "step_accuracy": json.dumps(test.get("step_accuracy")) if "step_accuracy" in test else "",
            "hit_rate": json.dumps(test.get("hit_rate")) if "hit_rate" in test else "",
            "both_digits_hit": test.get("both_digits_hit"),
            **window_columns(test.get("windows")),
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
            # why it stopped: its epochs, its time budget (a cap) or the plateau rule
            "stopped": metrics.get("stopped", {}).get("reason", ""),
            "epochs_planned": spec.train_overrides["epochs"],
            "canvases_seen": metrics["epochs_run"] * canvases if canvases else None,
            "configuration": configuration(spec),
            "train_min": round(metrics["train_s"] / 60, 2),
            "val_min": round(metrics["val_s"] / 60, 2),
            "test_min": round(metrics.get("test_s", 0.0) / 60, 2),
            "s_per_epoch": round(metrics["train_s"] / metrics["epochs_run"], 2),
            "parameters": count_parameters(spec),
            "device": metrics.get("run", {}).get("device", ""),
            "test_sha256": metrics.get("test_dataset", {}).get("sha256", ""),
            "run_folder": spec.folder(),
        })
    frame = pd.DataFrame(rows)
    with atomic_path(out_dir / "runs.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def window_columns(stats: dict | None) -> dict:
    """A run's window statistics (``saccadelib.window_stats``, scored on the test set) as runs.csv columns:
    over all its glimpses the mean window side in canvas pixels, the detail it is read at, the share at the
    cap, the distance to the nearest digit and the strict hit rate; per glimpse step the side (JSON); and the
    share of canvases whose every digit some glimpse frames. Empty for runs without windows."""
    if not stats:
        return {}
    every = stats["all"]
    return {"window_side_px": every["side_px"]["mean"], "window_side_p10_p90": f"{every['side_px']['p10']:g}-"
            f"{every['side_px']['p90']:g}", "window_detail": every["detail"], "window_at_cap": every["at_cap"],
            "window_to_digit_px": every["centre_to_object_px"]["mean"], "strict_hit": every["strict_hit"],
            "all_strictly_held": stats["all_strictly_held"], "windows_on_digit": every.get("on_object"),
            "windows_on_decoy": every.get("on_decoy"),
            "window_side_px_per_step": json.dumps([step["side_px"]["mean"] for step in stats["steps"]])}


def mean_std(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.1f}"
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.1f} ± {std:.1f}"


def summarize(frame: "pd.DataFrame", by: str = "label") -> "pd.DataFrame":
    """Mean ± std of test exact match over seeds, per ``by``, in the frame's order."""
    out = []
    for key, group in frame.groupby(by, sort=False):
        acc = group["test_accuracy"].astype(float) * 100
        out.append({by: key, "seeds": len(group), "test_exact_match_%": mean_std(acc),
                    "mean": acc.mean(), "std": acc.std(ddof=1) if len(acc) > 1 else float("nan"),
                    "train_min": group["train_min"].mean(), "epochs": group["epochs_run"].mean(),
                    "canvases_seen": int(group["canvases_seen"].mean())
                    if "canvases_seen" in group and group["canvases_seen"].notna().all() else None,
                    "s_per_epoch": group["s_per_epoch"].mean(), "parameters": int(group["parameters"].iloc[0]),
                    **_on_decoys(frame, group)})
    return pd.DataFrame(out)


def _on_decoys(frame: "pd.DataFrame", group: "pd.DataFrame") -> dict:
    """Where the frame has sets with decoys: the share of a run's windows on a digit and on a decoy (%, mean
    over seeds; blank for runs without windows or without decoys)."""
    if "windows_on_decoy" not in frame or frame["windows_on_decoy"].isna().all():
        return {}
    return {f"windows_on_{kind}_%": round(100 * group[f"windows_on_{kind}"].astype(float).mean(), 1)
            if group[f"windows_on_{kind}"].notna().any() else None for kind in ("digit", "decoy")}


def label_table(table: "pd.DataFrame", config) -> "pd.DataFrame":
    """06's Megapixel MNIST labels side by side (the four IPS reports): a row per label model, a column per
    label, each its test accuracy in % from ``summarize``'s table (multi: every one of the ten flags right);
    blank where the model did not train on that label."""
    accuracy = table.set_index("label")["test_exact_match_%"]
    names = [config.run_name(model) for model in config.label_models]
    return pd.DataFrame([{"model": name, **{label: accuracy.get(resolution_label(f"megapixel_{label}", name))
                                            for label in ("majority", *config.labels)}} for name in names])


def policy_over_prior(table: "pd.DataFrame", config) -> "pd.DataFrame":
    """06 per data set: what the learnt policy (the cells variant) adds over its prior (salient windows: the
    same classifier, windows where the ink prior puts them, nothing learnt), with oracle and random windows
    beside them, and where the two put their windows (% on a digit; on a decoy where the set has decoys).
    Accuracies from ``summarize``'s table; a data set without both runs is left out."""
    runs = table.set_index("label")
    rows = []
    for task in config.tasks:
        name = dataset_name(task)
        learnt, prior = f"{name}/saccade_cells", f"{name}/salient_glimpses"
        if learnt not in runs.index or prior not in runs.index:
            continue
        row = {"data set": name, "learnt_%": runs.at[learnt, "test_exact_match_%"],
               "prior_%": runs.at[prior, "test_exact_match_%"],
               "learnt_minus_prior_points": round(runs.at[learnt, "mean"] - runs.at[prior, "mean"], 1)}
        for control in ("oracle_glimpses", "random_glimpses"):
            label = f"{name}/{control}"
            row[f"{control.split('_')[0]}_%"] = runs.at[label, "test_exact_match_%"] if label in runs.index else None
        for kind in ("digit", "decoy"):
            column = f"windows_on_{kind}_%"
            if column in runs:
                row[f"learnt_on_{kind}_%"], row[f"prior_on_{kind}_%"] = runs.at[learnt, column], runs.at[prior, column]
        rows.append(row)
    return pd.DataFrame(rows)


def save_config(config, out_dir: str | Path, extra: dict | None = None) -> Path:
    """The resolved experiment config (and its run list) beside the results."""
    path = Path(out_dir) / "config.json"
    write_json(path, {"config": to_dict(config), **(extra or {})})
    return path


def save_table(frame, out_dir: str | Path, name: str) -> None:
    """``name``.csv and ``name``.md (pipe table) side by side, atomically."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / f"{name}.csv") as tmp:
        frame.to_csv(tmp, index=False)
    write_text_atomic(out_dir / f"{name}.md", frame.to_markdown(index=False) + "\n")


def histories(specs: list[RunSpec], runs_dir: str | Path, by_seed: bool = False) -> dict[str, list[dict]]:
    """label (with the seed when there are several, or ``by_seed``) → that run's history rows."""
    several = by_seed or len({s.seed for s in specs}) > 1
    return {(f"{s.label} (seed {s.seed})" if several else s.label): read_history(run_folder(runs_dir, s) / "history.csv")
            for s in specs}


def first_run(specs: list[RunSpec], model: str = "saccade") -> RunSpec | None:
    """The first run (lowest seed listed first) of ``model``, or None when the experiment has none."""
    return next((s for s in specs if s.model == model), None)


def load_trained(spec: RunSpec, runs_dir: str | Path):
    """The best-on-validation weights of a finished glimpse-model run, as (model, meta)."""
    return inference.load_model(run_folder(runs_dir, spec) / "best.pt")


def noise_robustness(specs: list[RunSpec], runs_dir: str | Path, levels, dataset,
                     limit: int | None = None) -> "pd.DataFrame":
    """Each noise-free run (σ 0, keep 1) scored on ``dataset`` with its proxy noised at each of ``levels``:
    what a noisy proxy costs a policy that never saw noise, beside the runs retrained at a level. One row
    per (seed, level): test accuracy and the share of images whose digits a glimpse hit."""
    rows = []
    for spec in specs:
        if (spec.model_overrides["proxy_noise"], spec.model_overrides["proxy_keep"]) != (0.0, 1.0):
            continue
        model, _ = load_trained(spec, runs_dir)
        clean = model.cfg
        for sigma, keep in levels:
            model.cfg = dataclasses.replace(clean, proxy_noise=sigma, proxy_keep=keep)
            metrics = evaluate(model, dataset, limit=limit, seed=spec.seed)
            rows.append({"seed": spec.seed, "sigma": sigma, "keep": keep, "test_accuracy": metrics["accuracy"],
                         "both_digits_hit": metrics.get("both_digits_hit")})
        model.cfg = clean
    return pd.DataFrame(rows, columns=["seed", "sigma", "keep", "test_accuracy", "both_digits_hit"])


def robustness_summary(robustness: "pd.DataFrame") -> "pd.DataFrame":
    """Per scored level of ``noise_robustness``: test accuracy over seeds, and its change from the same
    seed's noise-free score. The same models are scored at every level, so the change is paired: a
    level's cost shows against the seed-to-seed spread of what the models reach without noise."""
    frame = robustness.assign(test_pct=robustness["test_accuracy"].astype(float) * 100)
    clean = frame[(frame["sigma"] == 0.0) & (frame["keep"] == 1.0)].set_index("seed")["test_pct"]
    frame = frame.assign(change=frame["test_pct"] - frame["seed"].map(clean))
    rows = []
    for (sigma, keep), level in frame.groupby(["sigma", "keep"], sort=False):
        rows.append({"sigma": sigma, "keep": keep, "seeds": len(level), "test_exact_match_%": mean_std(level["test_pct"]),
                     "change_from_noise_free_points": mean_std(level["change"]),
                     "seeds_that_lost": int((level["change"] < 0).sum())})
    return pd.DataFrame(rows)


# how much of one digit's box the other's covers (twodigit.digit_overlap): upper edges and names
OVERLAP_BANDS = ((0.0, "apart"), (0.25, "up to 1/4"), (0.5, "1/4 to 1/2"), (1.0, "over 1/2"))


def accuracy_by_digit_overlap(specs: list[RunSpec], runs_dir: str | Path, dataset) -> "pd.DataFrame":
    """Each run's best-on-validation weights scored again on ``dataset`` (a two-digit set: its boxes), each
    canvas filed by how much the two digits' boxes overlap (``OVERLAP_BANDS``): where a model's errors are,
    on canvases any reader finds hard or on clear ones. One row per (run, band), ``all`` first, with the
    canvases of the band and the share read right; a run is scored on the test canvases it was scored on."""
    rows = []
    for spec in specs:
        model = inference.load(run_folder(runs_dir, spec) / "best.pt")
        right = evaluate(model, dataset, limit=spec.train_overrides.get("test_size"), seed=spec.seed,
                         per_canvas=True)["correct"]
        rows += [{"label": spec.label, "seed": spec.seed, **band} for band in by_overlap_band(right, dataset.boxes)]
    return pd.DataFrame(rows, columns=["label", "seed", "overlap", "canvases", "accuracy"])


def by_overlap_band(correct, boxes) -> list[dict]:
    """Whether each canvas was read right ([n] bool, the first n of ``boxes``) as the share read right in
    all of them, then in each of ``OVERLAP_BANDS``: rows of overlap, canvases, accuracy."""
    correct = correct.cpu()
    band = torch.bucketize(digit_overlap(boxes[:len(correct)]), torch.tensor([edge for edge, _ in OVERLAP_BANDS]))
    groups = [("all", torch.ones_like(correct))] + [(name, band == i) for i, (_, name) in enumerate(OVERLAP_BANDS)]
    return [{"overlap": name, "canvases": int(member.sum()),
             "accuracy": correct[member].double().mean().item() if member.any() else float("nan")}
            for name, member in groups]


def overlap_summary(scores: "pd.DataFrame") -> "pd.DataFrame":
    """``accuracy_by_digit_overlap`` as one row per label: test exact match in % (mean ± std over seeds)
    in every band, each band's header with its share of the scored canvases."""
    total = scores.loc[scores["overlap"] == "all"].groupby("label", sort=False)["canvases"].first()
    rows = []
    for label, runs in scores.groupby("label", sort=False):
        row = {"label": label, "seeds": runs["seed"].nunique()}
        for name, band in runs.groupby("overlap", sort=False):
            share = band["canvases"].iloc[0] / total[label] * 100
            header = "all canvases" if name == "all" else f"{name} ({share:.0f}% of canvases)"
            row[header] = mean_std(band["accuracy"] * 100) if band["canvases"].iloc[0] else "–"
        rows.append(row)
    return pd.DataFrame(rows)


def datasets_used(frame) -> dict:
    """The test sets' content hashes that the runs in ``frame`` were scored on."""
    return {"test_sha256": sorted(set(frame["test_sha256"].dropna()))}
