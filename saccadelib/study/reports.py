"""What the study reports: Table 1 with the paper's numbers beside ours, and what the study cost."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..paths import results_dir
from ..plots import read_history
from ..recipes import LARGE_SIDE
from .gpu_records import GPU_PLATEAU_LABEL, GPU_PLATEAU_RUNS, GPU_PLATEAU_SYSTEM, gpu_plateau_runs, tile_costs
from .plan import EXPERIMENTS, TABLE1_EXPERIMENTS
from .readback import mean_std
from .runs import results_root
from .verdicts import STOP_NAMES, curve_rises, cut_while_rising, paper_value, verdict

# The paper's Table 1 (test exact match, %), for the side-by-side tables (docs/tasks.md lists the sources).
PAPER = {
    ("sum", 100, "saccade"): "97.2 ± 0.04", ("sum", 100, "resnet18"): "99.86 ± 0.01", ("sum", 100, "ram"): "91",
    ("sum", 100, "dram"): "97.5",
    ("identification", 100, "saccade"): "95.42 ± 0.002", ("identification", 100, "resnet18"): "97.4 ± 0.003",
    ("identification", 100, "ram"): "93", ("identification", 100, "dram"): "95",
    ("identification", LARGE_SIDE, "saccade"): "95.23 ± 0.03",
    ("identification", LARGE_SIDE, "resnet18_tiles"): "97.3 ± 0.006",
    ("fivek", LARGE_SIDE, "saccade"): "62.7 ± 0.03", ("fivek", LARGE_SIDE, "resnet18_tiles"): "63.6 ± 0.03",
}


SYSTEM_NAMES = {"saccade": "variational saccading (the paper's method)",
                "saccade_cells": "variational saccading, cells variant (ours: places drawn among cells, REINFORCE)",
                "resnet18": "resnet18 - full image",
                "resnet18_tiles": "resnet18 - 144 crops", "ram": "RAM", "dram": "DRAM",
                "random_glimpses": "random glimpses (our classifier; beyond the paper)",
                "grid_glimpses": "grid glimpses (our classifier; beyond the paper)",
                "oracle_glimpses": "oracle glimpses on the digits (our classifier; the ceiling for a policy)",
                "deterministic_glimpses": "ours without KL, decoder or sampling (ablation)",
                "proxy_cnn": "proxy-only CNN (32² proxy alone; beyond the paper)"}


def _read_runs(results_root: Path, experiment: str):
    path = results_root / experiment / "runs.csv"
    if not path.exists():
        return None, None
    config = results_root / experiment / "config.json"
    return pd.read_csv(path), (json.loads(config.read_text()) if config.exists() else {})


def _budget_text(cfg: dict, frame) -> str:
    training = cfg.get("config", {}).get("training", {})
    profile = cfg.get("config", {}).get("profile", "?")
    epochs = int(frame["epochs_run"].mean())
    epochs = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    size = training.get("train", {}).get("train_size", training.get("train_size", 20_000))  # older configs: flat
    if size != 20_000:
        epochs += f" of {size:,}"
    device = frame["device"].iloc[0] if "device" in frame and len(frame) else "?"
    if training.get("budget_min") is not None:  # the budget sized the epochs; say what they really took
        minutes = _run_minutes(frame).dropna()
        measured = f", {minutes.mean():.1f} min measured" if len(minutes) else ""
        return f"{profile}: {training['budget_min']:g} min on {device} ({epochs}{measured})"
    return f"{profile}: {epochs} on {device}"


def _run_minutes(frame) -> "pd.Series":  # noqa: F821
    """Each run's measured minutes: training, plus validation where the run timed it (the budget pays both)."""
    if "train_min" not in frame:
        return pd.Series([], dtype=float)
    return frame["train_min"] + frame["val_min"].fillna(0.0)


def table1_roots(root: str | Path, profile: str) -> tuple[Path, Path]:
    """(the cpu profile's results, the plateau profile's) that Table 1 reads, for a summary of ``profile``
    whose results are in ``root``: the plateau profile's summary reads the committed cpu results beside its
    own; the others read the plateau results kept under their root (results/plateau/ for cpu)."""
    root = Path(root)
    return (results_root("cpu"), root) if profile == "plateau" else (root, root / "plateau")


def _plateau_cell(part, paper: str) -> dict:
    """The plateau columns of one cell from its runs (``runs.csv`` rows of the plateau profile, with the path
    of each run's ``history``)."""
    acc = part["test_accuracy"].astype(float) * 100
    stopped = [str(r) for r in part["stopped"]] if "stopped" in part else []
    histories = list(part["history"]) if "history" in part else []
    rises, cut_rising = [curve_rises(h) for h in histories], [cut_while_rising(h) for h in histories]
    return {"plateau_%": mean_std(acc), "plateau_verdict": verdict(float(acc.mean()), paper, stopped, rises, cut_rising),
            "plateau_stopped": ", ".join(dict.fromkeys(STOP_NAMES.get(r, r or "?") for r in stopped)) or "?",
            "plateau_seeds": len(part), "plateau_epochs": int(part["epochs_run"].max()),
            "plateau_canvases": int(part["canvases_seen"].mean()) if part["canvases_seen"].notna().all() else None,
            "plateau_hours": round(float(_run_minutes(part).mean()) / 60, 2),
            "plateau_windows": _windows_text(part)}


def _windows_text(part) -> str:
    """A cell's windows as its runs measured them on the test set (runs.csv's window columns): the mean
    side in canvas pixels, the detail it is read at, the share at the cap; "–" for runs without windows."""
    if "window_side_px" not in part or not part["window_side_px"].notna().all():
        return "–"
    text = f"{part['window_side_px'].mean():.0f} px read at {part['window_detail'].mean():.2f}"
    if "window_at_cap" in part and part["window_at_cap"].notna().all():
        text += f", {100 * part['window_at_cap'].mean():.0f}% at the cap"
    return text


def _with_histories(frame, folder: Path):
    """``frame`` (an experiment's runs.csv) with each run's history path, or None."""
    if frame is None:
        return None
    return frame.assign(history=[folder / "runs" / str(run) / "history.csv" for run in frame["run_folder"]]) \
        if "run_folder" in frame else frame


def table1(results_root: str | Path | None = None, plateau_root: str | Path | None = None) -> "pd.DataFrame":
    """Every cell of the paper's Table 1 with our number beside it (long form: one row per cell).

    Ours = mean ± std of test exact match over the seeds that ran, with the profile and budget it was
    obtained at; cells we did not run say why. Where the plateau profile trained a cell (its results in
    ``plateau_root``, default ``results_root/plateau``), the row also holds its number there, why each run
    stopped, its epochs, canvases seen, hours and the verdict against the paper."""
    root = Path(results_root) if results_root else results_dir()
    plateau_root = Path(plateau_root) if plateau_root else root / "plateau"
    plateau = {key: _with_histories(_read_runs(plateau_root, name)[0], plateau_root / name)
               for key, name in TABLE1_EXPERIMENTS.items() if key[0] != "fivek"}
    columns = [("sum", 100), ("identification", 100), ("identification", LARGE_SIDE), ("fivek", LARGE_SIDE)]
    systems = {100: ["resnet18", "ram", "dram", "saccade", "deterministic_glimpses", "random_glimpses",
                     "grid_glimpses", "oracle_glimpses", "proxy_cnn"],
               LARGE_SIDE: ["resnet18_tiles", "saccade"]}
    loaded = {key: _read_runs(root, name) for key, name in TABLE1_EXPERIMENTS.items()}
    fivek_frame, fivek_cfg = loaded[("fivek", LARGE_SIDE)]
    fivek_check_only = fivek_frame is not None and fivek_cfg.get("config", {}).get("miniature")
    rows = []
    for side in (LARGE_SIDE, 100):
        for system in systems[side]:
            for task, col_side in columns:
                if col_side != side:
                    continue
                paper = PAPER.get((task, side, system), "–")
                ours, budget, seeds, params, spe = "", "", 0, None, None
                configuration, canvases, minutes = "", None, None
                if task == "fivek" and fivek_frame is None:
                    ours = "not run: FiveK not prepared (04_fivek says how to get it)"
                elif task == "fivek" and fivek_check_only:
                    ours = ("not run: FiveK is not on this machine (the synthetic miniature ran as a pipeline "
                            "check; no number)")
                elif system == "dram":
                    ours = "not reimplemented (quoted)"
                elif system == "resnet18_tiles" and task != "fivek":
                    ours, params = tile_costs(root)
                else:
                    frame, cfg = loaded[(task, side)]
                    part = None if frame is None else frame[frame["label"] == system]
                    if part is None:
                        ours = f"not run yet ({TABLE1_EXPERIMENTS[(task, side)]})"
                    elif part.empty and task == "fivek" and system == "resnet18_tiles":
                        ours = "not in this profile (needs a GPU at 2528²)"
                    elif part.empty:
                        ours = "not in this profile"
                    else:
                        acc = part["test_accuracy"].astype(float) * 100
                        ours, seeds = mean_std(acc), len(part)
                        budget = _budget_text(cfg, part)
                        params, spe = int(part["parameters"].iloc[0]), float(part["s_per_epoch"].mean())
                        configuration = str(part["configuration"].iloc[0]) if "configuration" in part else ""
                        known = "canvases_seen" in part and part["canvases_seen"].notna().all()
                        canvases = int(part["canvases_seen"].mean()) if known else None
                        minutes = round(float(_run_minutes(part).mean()), 1) if "train_min" in part else None
                row = {"image_size": f"{side}²", "system": SYSTEM_NAMES[system], "column": task,
                       "ours_%": ours, "seeds": seeds, "budget": budget, "paper_%": paper,
                       "parameters": params, "train_s_per_epoch": spe, "configuration": configuration,
                       "canvases_seen": canvases, "train_min": minutes}
                trained = plateau.get((task, side))
                part = None if trained is None else trained[trained["label"] == system]
                if part is not None and len(part):
                    row.update(_plateau_cell(part, paper))
                gpu = gpu_plateau_runs(task) if (system, side) == (GPU_PLATEAU_SYSTEM, 100) else None
                if gpu is not None:
                    row.update({f"gpu_{key}": value for key, value in _plateau_cell(gpu, paper).items()})
                rows.append(row)
    return pd.DataFrame(rows)


def profile_time(results_root: str | Path | None = None) -> "pd.DataFrame":
    """What the study's experiments cost, all measured: per experiment, its training runs' minutes of
    training, validation and test scoring by their own clocks (which a resumed run carries over), and the
    rest of the notebook attempt that finished it (kernel, data sets, figures, benchmarks: its wall time
    less what its runs clocked during it). Then a total row."""
    root = Path(results_root) if results_root else results_dir()
    rows = []
    for exp in EXPERIMENTS:
        record_path = root / exp.name / "run.json"
        if exp.always or not record_path.exists():
            continue
        record = json.loads(record_path.read_text())
        runs = root / exp.name / "runs.csv"
        frame = pd.read_csv(runs) if runs.exists() else pd.DataFrame({"train_min": [], "val_min": []})
        test_min = float(frame["test_min"].sum()) if "test_min" in frame else 0.0
        other = record.get("other_s", record.get("wall_s", float("nan"))) / 60
        row = {"experiment": exp.name, "profile": record.get("profile"), "status": record.get("status"),
               "runs": len(frame), "training_min": float(frame["train_min"].sum()),
               "validation_min": float(frame["val_min"].sum()), "test_min": test_min, "other_min": other}
        row["total_min"] = row["training_min"] + row["validation_min"] + test_min + other
        rows.append(row)
    minutes = ["training_min", "validation_min", "test_min", "other_min", "total_min"]
    table = pd.DataFrame(rows, columns=["experiment", "profile", "status", "runs", *minutes])
    if len(table):
        total = {"experiment": "total", "profile": ",".join(dict.fromkeys(table["profile"].astype(str))),
                 "status": "", "runs": int(table["runs"].sum()), **{c: float(table[c].sum()) for c in minutes}}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
        table[minutes] = table[minutes].round(1)
    return table


COST_EXPERIMENTS = ("01_two_digit_sum", "02_two_digit_identification_100", "02_two_digit_identification_2528",
                    "06_resolution")


def cost_curves(results_root: str | Path | None = None) -> dict[str, list[dict]]:
    """Per data set (an experiment, or one of 06's two), per model: the first seed's validation curve
    against canvases seen and against minutes of training and validation, and the test accuracy over
    its seeds; read from the experiments' ``runs.csv`` and the runs' kept ``history.csv``."""
    root = Path(results_root) if results_root else results_dir()
    panels: dict[str, list[dict]] = {}
    for name in COST_EXPERIMENTS:
        path = root / name / "runs.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        for label, group in frame.groupby("label", sort=False):
            first = group.sort_values("seed").iloc[0]
            rows = read_history(root / name / "runs" / first["run_folder"] / "history.csv")
            per_epoch = float(first["canvases_seen"]) / float(first["epochs_run"]) if "canvases_seen" in first else float("nan")
            seconds = pd.Series([r["train_s"] + r.get("val_s", 0.0) for r in rows]).cumsum()
            test = group["test_accuracy"].astype(float) * 100
            panel = f"{name.split('_', 1)[1]}/{label.split('/')[0]}" if "/" in label else name.split("_", 1)[1]
            panels.setdefault(panel, []).append({
                "label": label.split("/")[-1], "canvases": [r["epoch"] * per_epoch for r in rows],
                "minutes": (seconds / 60).tolist(), "val": [r["val_accuracy"] * 100 for r in rows],
                "test_mean": float(test.mean()), "test_std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
                "seeds": len(test)})
    return panels


def table1_markdown(frame) -> str:
    """The paper's layout (a row per image size and system, ours and the paper's per column), then every
    cell we trained on its own line: its configuration, seeds, canvases seen, training minutes, and the
    parameters and seconds per epoch of that very model."""
    names = {"sum": "sum", "identification": "identification", "fivek": "FiveK"}
    lines = []
    has_plateau = "plateau_%" in frame
    for side in (f"{LARGE_SIDE}²", "100²"):
        part = frame[frame["image_size"] == side]
        cols = list(dict.fromkeys(part["column"]))
        plateau_cols = [c for c in cols if has_plateau and _at_plateau(part[part["column"] == c]).any()]
        header = (["system"] + [f"{names[c]}: ours (cpu)" for c in cols]
                  + [f"{names[c]}: ours at its plateau" for c in plateau_cols] + [f"{names[c]}: paper" for c in cols])
        lines += [f"**{side}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, rows in part.groupby("system", sort=False):
            by_col = {r["column"]: r for _, r in rows.iterrows()}
            ours = [str(by_col[c]["ours_%"]) if c in by_col else "" for c in cols]
            at_plateau = [_plateau_text(by_col.get(c)) for c in plateau_cols]
            paper = [str(by_col[c]["paper_%"]) if c in by_col else "" for c in cols]
            lines.append("| " + " | ".join([rows.iloc[0]["system"], *ours, *at_plateau, *paper]) + " |")
        lines.append("")
    if has_plateau and _at_plateau(frame).any():
        header = ["image size", "column", "system", "at its plateau %", "paper %", "verdict", "stopped by", "seeds",
                  "epochs (longest run)", "canvases seen (per run)", "hours (per run)", "windows (side, detail)"]
        lines += ["**At the plateau** (the plateau profile: the learning rate divided by 10 at each plateau of "
                  "validation accuracy, twice, then a stop at the next; or the run's cap in minutes)", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, r in frame[_at_plateau(frame)].iterrows():
            for prefix, system in (("", r["system"]), ("gpu_", f"{r['system']}, {GPU_PLATEAU_LABEL} "
                                                                f"({GPU_PLATEAU_RUNS.as_posix()})")):
                if not _known(r.get(f"{prefix}plateau_%")):
                    continue
                at = lambda key: r[f"{prefix}plateau_{key}"]  # noqa: E731
                cells = [r["image_size"], names[r["column"]], system, at("%"), r["paper_%"], at("verdict"),
                         at("stopped"), str(int(at("seeds"))), str(int(at("epochs"))), _count(at("canvases")),
                         _number(at("hours"), "{:.2f}"), r.get(f"{prefix}plateau_windows", "–")]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    trained = frame[frame["seeds"] > 0]
    if len(trained):
        header = ["image size", "column", "system", "ours %", "paper %", "seeds", "configuration", "canvases seen",
                  "training min", "parameters", "s/epoch", "budget"]
        lines += ["**Each trained cell**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for _, r in trained.iterrows():
            cells = [r["image_size"], names[r["column"]], r["system"], r["ours_%"], r["paper_%"], str(r["seeds"]),
                     r.get("configuration") or "–", _count(r.get("canvases_seen")), _number(r.get("train_min"), "{:.1f}"),
                     _number(r["parameters"] / 1e6 if _known(r["parameters"]) else None, "{:.2f} M"),
                     _number(r["train_s_per_epoch"], "{:.0f}"), r["budget"] or "–"]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _at_plateau(frame) -> "pd.Series":
    """Which of Table 1's rows have a plateau run: ours, or one recorded on a GPU."""
    gpu = frame["gpu_plateau_%"].notna() if "gpu_plateau_%" in frame else False
    return frame["plateau_%"].notna() | gpu


def _plateau_text(row) -> str:
    """A Table 1 cell at the plateau: our run's, and the run recorded on a GPU where there is one."""
    if row is None:
        return ""
    texts = []
    if _known(row.get("plateau_%")):
        texts.append(f"{row['plateau_%']} ({row['plateau_verdict']})")
    if _known(row.get("gpu_plateau_%")):
        texts.append(f"{GPU_PLATEAU_LABEL}: {row['gpu_plateau_%']} ({row['gpu_plateau_verdict']})")
    return "; ".join(texts)


def plateau_curves(plateau_root: str | Path) -> list[dict]:
    """Per cell the plateau profile trained (a model on a task and side): each seed's validation curve
    against canvases seen and against hours of training and validation, its test accuracy, why it
    stopped, and the paper's number (None where the paper has none). ResNet-18's 100² cells also hold the
    runs recorded on one GPU without the cap (``gpu_plateau_runs``), each with its ``device``."""
    cells = []
    for (task, side), name in TABLE1_EXPERIMENTS.items():
        path = Path(plateau_root) / name / "runs.csv"
        if not path.exists():
            continue
        frame = pd.read_csv(path)
        for label, group in frame.groupby("label", sort=False):
            runs = [_curve(run, Path(plateau_root) / name / "runs" / run["run_folder"] / "history.csv")
                    for _, run in group.sort_values("seed").iterrows()]
            gpu = gpu_plateau_runs(task) if (label, side) == (GPU_PLATEAU_SYSTEM, 100) else None
            if gpu is not None:  # where the curve goes on past the cap: against canvases only (its hours are a GPU's)
                runs += [{**_curve(run, run["history"]), "device": GPU_PLATEAU_LABEL} for _, run in gpu.iterrows()]
            cells.append(_curve_cell(task, side, label, runs))
        gpu = gpu_plateau_runs(task) if side == 100 and GPU_PLATEAU_SYSTEM not in set(frame["label"]) else None
        if gpu is not None:  # a cell only a GPU trained to its plateau (the plateau profile leaves it out)
            cells.append(_curve_cell(task, side, GPU_PLATEAU_SYSTEM, [
                {**_curve(run, run["history"]), "device": GPU_PLATEAU_LABEL} for _, run in gpu.iterrows()]))
    return cells


def _curve_cell(task: str, side: int, label: str, runs: list[dict]) -> dict:
    return {"task": task, "side": side, "model": label, "system": SYSTEM_NAMES.get(label, label),
            "paper": paper_value(PAPER.get((task, side, label), "–")), "runs": runs,
            "file": f"plateau_{task}_{side}_{label}.png"}


def _curve(run, history: Path) -> dict:
    """One run's validation curve for ``plots.plateau_curve``, from its ``runs.csv`` row and history."""
    rows = read_history(history)
    per_epoch = float(run["canvases_seen"]) / float(run["epochs_run"])
    seconds = pd.Series([r["train_s"] + r.get("val_s", 0.0) for r in rows]).cumsum()
    return {"seed": int(run["seed"]), "canvases": [r["epoch"] * per_epoch for r in rows],
            "hours": (seconds / 3600).tolist(), "val": [r["val_accuracy"] * 100 for r in rows],
            "lr": [r["lr"] for r in rows], "test": float(run["test_accuracy"]) * 100,
            "stopped": STOP_NAMES.get(str(run.get("stopped", "")), ""), "device": None}


def _known(value) -> bool:
    return value is not None and value == value  # NaN ≠ NaN


def _number(value, fmt: str) -> str:
    return fmt.format(value) if _known(value) else "–"


def _count(value) -> str:
    return f"{int(value):,}" if _known(value) else "–"
