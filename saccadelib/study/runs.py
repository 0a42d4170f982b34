"""Training every run of an experiment, and collecting what the runs measured.

Each run trains through the shared loop (``train.train_model``) into its own folder under
``runs/study/<profile>/<experiment>/``, named by a hash of its *resolved* settings (the model's and the
training's full configs, defaults included): a rerun resumes it (or reuses it when it has finished), and
a changed setting or default starts a new one.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import to_dict
from ..paths import atomic_path, results_dir, runs_dir, write_text_atomic
from ..runinfo import write_json
from ..recipes import LARGE_SIDE, TASK_RECIPE, crop_settings, recipe, task_settings
from .experiments import (COMMITTED_PROFILE, EPOCH_SECONDS, NATIVE_SIDE, VAL_SECONDS, VAL_SHARE, FiveKStudy,
                          NoiseStudy, ResolutionStudy, TaskStudy, Training, dataset_name, resolution_entries,
                          resolution_label, seeds_for)


@dataclass(frozen=True)
class RunSpec:
    label: str  # what tables and plots call it
    model: str  # registry name
    task: str
    seed: int
    model_overrides: dict
    train_overrides: dict
    calibration: tuple[str, int, str] | None = None  # (task, side, name) whose measured epoch sized it

    def resolved(self):
        """(model config, model_meta, TrainConfig) under today's defaults."""
        from ..train import resolved_settings

        return resolved_settings(self.model, self.task, self.model_overrides, self.train_overrides)

    def key(self) -> str:
        """Hash of the resolved settings that decide the weights (not how the run is displayed or timed)."""
        from ..train import _resumable

        _, meta, train_cfg = self.resolved()
        resumable = _resumable(train_cfg)
        resumable["epochs"] = train_cfg.epochs  # a different length is a different run here
        payload = json.dumps([meta, resumable], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:10]

    def folder(self) -> str:
        return f"{self.label}_s{self.seed}_{self.key()}".replace(" ", "_")


def _measured(task: str, image_side: int, model: str) -> tuple[float, float]:
    key = (task, image_side, model)
    if key not in EPOCH_SECONDS or key not in VAL_SECONDS:
        raise ValueError(f"no measured epoch time for {model} on {task} at {image_side}²: measure it with "
                         "scripts/probes/epoch_seconds.py (reference/epoch_seconds.json) "
                         "or give epochs instead of budget_min")
    return EPOCH_SECONDS[key], VAL_SECONDS[key]


def validation_size(task: str, image_side: int, model: str, training: Training) -> int:
    """``training.val_size``, or fewer canvases (whole hundreds) where scoring them after each epoch
    would cost more than VAL_SHARE of the epoch's training time."""
    if training.budget_min is None:
        return training.val_size
    train_s, val_s = _measured(task, image_side, model)
    affordable = VAL_SHARE * train_s * training.train_size / 20_000 / val_s * 2_000
    return max(100, min(training.val_size, int(affordable // 100) * 100))


def epochs_for(task: str, image_side: int, model: str, training: Training) -> int:
    if training.budget_min is None:
        return training.epochs
    train_s, val_s = _measured(task, image_side, model)
    # the budget pays for each epoch's validation too: it is time the run takes
    val_size = validation_size(task, image_side, model, training)
    seconds = train_s * training.train_size / 20_000 + val_s * val_size / 2_000
    # nearest, not floor: a model whose epoch is a large share of the budget (ResNet-18, 5 min) would
    # otherwise lose up to a whole epoch; each run is off its budget by at most half an epoch either way
    return max(1, round(training.budget_min * 60 / seconds))


def train_overrides(task: str, image_side: int, model: str, training: Training, seed: int) -> dict:
    t = training
    out = {"epochs": epochs_for(task, image_side, model, t), "lr_schedule": "cosine", "seed": seed,
           "train_size": t.train_size, "batch_size": t.batch_size, "lr": t.lr,
           "val_size": validation_size(task, image_side, model, t),
           "test_size": t.test_size, "device": t.device, "threads": t.threads, "precision": t.precision,
           "progress": "log"}
    if image_side != 100:
        out["image_side"] = image_side
    if t.budget_min is not None:
        out["time_budget_s"] = 2 * 60 * t.budget_min  # a safety cap only: the epochs are the budget
    return out


def task_runs(study: TaskStudy) -> list[RunSpec]:
    return [RunSpec(name, name, study.task, seed, task_settings(study.task, name, study.image_side),
                    train_overrides(study.task, study.image_side, name, study.training, seed),
                    (study.task, study.image_side, name))
            for name in study.models for seed in seeds_for(study, name)]


def noise_runs(study: NoiseStudy) -> list[RunSpec]:
    task = "identification"
    runs = []
    for sigma, keep in study.levels():
        overrides = {**task_settings(task, "saccade"), "proxy_noise": sigma, "proxy_keep": keep}
        label = noise_label(sigma, keep)
        for seed in seeds_for(study, label):
            runs.append(RunSpec(label, "saccade", task, seed, overrides,
                                train_overrides(task, 100, "saccade", study.training, seed), (task, 100, "saccade")))
    return runs


def noise_label(sigma: float, keep: float) -> str:
    return f"noise_{sigma:g}_keep_{keep:g}"


def fivek_runs(study: FiveKStudy) -> list[RunSpec]:
    runs = []
    t = study.training
    for name in study.models:
        if name == "resnet18_tiles":
            settings = {"channels": 3, "tile": study.tile}
        else:
            settings = {**recipe(TASK_RECIPE["fivek"]), "channels": 3, **crop_settings(study.crop)}
        for seed in t.seeds:
            train = {"epochs": t.epochs, "lr_schedule": "cosine", "seed": seed, "batch_size": t.batch_size,
                     "lr": t.lr, "device": t.device, "threads": t.threads, "precision": t.precision,
                     "progress": "log", "data_root": str(study.root()), "eval_batch_size": 32}
            runs.append(RunSpec(name, name, "fivek", seed, settings, train))
    return runs


def prepare_fivek_miniature(study: FiveKStudy, log: Callable[[str], None] = print) -> Path:
    """Smoke: the synthetic FiveK-shaped photos (data/fivek_miniature_source) prepared at study.side."""
    from .. import fivek, fivek_miniature
    from ..paths import data_dir

    source = fivek_miniature.write_miniature(data_dir() / "fivek_miniature_source")
    card = fivek.prepare(source, study.root(), fivek.PrepareSettings(side=study.side), progress=False)
    log(f"miniature (synthetic photos, a pipeline check) prepared at {study.side}²: {card['prepared']} photos")
    return study.root()


def resolution_data(study: ResolutionStudy, task: str, side: int) -> dict:
    """The training settings that say which data a 06 run reads."""
    if task.startswith("megapixel"):
        return {"data_root": study.data_root or None}
    return {"canvas_side": side}


def resolution_runs(study: ResolutionStudy) -> list[RunSpec]:
    """06's runs. Budgets become epochs from the calibration of (task, canvas side, run name), as in every
    other experiment (scripts/probes/epoch_seconds.py measures them)."""
    runs = []
    for task, side, name, model, settings in resolution_entries(study):
        label = resolution_label(task, name)
        for seed in seeds_for(study, label):
            train = train_overrides(task, side, name, study.task_training(task), seed)
            train.pop("image_side", None)
            runs.append(RunSpec(label, model, task, seed, settings,
                                {**train, **resolution_data(study, task, side)}, (task, side, name)))
    return runs


def experiment_runs(profile: str) -> dict[str, list[RunSpec]]:
    """Every training run each experiment of ``profile`` makes (FiveK aside: it needs its data)."""
    from .experiments import noise_study, resolution_study, task_study

    return {"01_two_digit_sum": task_runs(task_study("sum", profile)),
            "02_two_digit_identification_100": task_runs(task_study("identification", profile)),
            f"02_two_digit_identification_{LARGE_SIDE}": task_runs(task_study("identification", profile,
                                                                              image_side=LARGE_SIDE)),
            "03_noisy_proxy_ablation": noise_runs(noise_study(profile)),
            "06_resolution": resolution_runs(resolution_study(profile))}


def planned_minutes(profile: str = "cpu") -> "pd.DataFrame":  # noqa: F821
    """What a budgeted profile's training will cost, from the calibration: per experiment, its runs, their
    epochs and the minutes of training and validation those epochs take on our machine. The runner's
    measured total (reports.profile_time) adds the notebooks' own work (test scoring, figures, 05)."""
    import pandas as pd

    if profile != COMMITTED_PROFILE:
        raise ValueError(f"planned minutes come from our 2-core machine's measured epochs: only the "
                         f"{COMMITTED_PROFILE} profile has them, not {profile!r}")
    rows = []
    for name, specs in experiment_runs(profile).items():
        minutes = 0.0
        for spec in specs:
            t = spec.train_overrides
            train_s, val_s = _measured(*spec.calibration)
            minutes += t["epochs"] * (train_s * t["train_size"] / 20_000 + val_s * t["val_size"] / 2_000) / 60
        rows.append({"experiment": name, "runs": len(specs), "seeds": len({s.seed for s in specs}),
                     "planned_min": round(minutes, 1)})
    frame = pd.DataFrame(rows)
    total = {"experiment": "total", "runs": int(frame["runs"].sum()), "seeds": int(frame["seeds"].max()),
             "planned_min": round(float(frame["planned_min"].sum()), 1)}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def resolution_evaluation_set(study: ResolutionStudy, task: str, split: str):
    """A 06 task's fixed ``split`` set as its runs read it."""
    from ..tasks import get_task

    data = resolution_data(study, task, study.side(task))
    return get_task(task, data.get("data_root"), canvas_side=data.get("canvas_side", 100)).evaluation_set(split)


def canvases_per_epoch(study: ResolutionStudy, task: str) -> int:
    """Training canvases a 06 epoch reads: ``train_size`` fresh ones, or at most the stored training split."""
    if task.startswith("megapixel"):
        return min(study.training.train_size, len(resolution_evaluation_set(study, task, "train")))
    return study.training.train_size


WHOLE_IMAGE_CNN = ("resnet18_500", "resnet18_downsampled", {"input_side": 500})  # 06's cost-only row


def inference_costs(study: ResolutionStudy, task: str, folder: str | Path) -> "pd.DataFrame":  # noqa: F821
    """Each 06 model's inference cost per image on ``task``: batch 1, end to end from the first test canvas
    written as a PNG in ``folder`` (decoded and read as the model reads it), 2 threads, the median of
    ``study.cost_repeats`` after 2 warm-ups, each model in a fresh process so that its memory is its own
    (saccadelib.bench.cost). The costs do not depend on the weights. ResNet-18 on a 500² downsample, the
    whole-image CNN a practitioner would try, is measured beside them though 06 does not train it."""
    import pandas as pd
    from PIL import Image

    from ..bench.cost import measure
    from ..paths import atomic_path

    image = Path(folder) / f"{dataset_name(task)}_test_00000.png"
    if not image.exists():
        pixels = resolution_evaluation_set(study, task, "test").as_dict(0, 1)["image"].dense()[0, 0]
        with atomic_path(image) as tmp:
            Image.fromarray((pixels * 255).round().byte().numpy(), mode="L").save(tmp, format="PNG")
    side = study.side(task)
    entries = [(name, model, settings) for t, _, name, model, settings in resolution_entries(study)
               if t == task and name != "oracle_glimpses" and (study.costed is None or name in study.costed)]
    if study.costed is None:
        entries.append(WHOLE_IMAGE_CNN)
    rows = []
    for name, model, settings in entries:
        spec = {"model": model, "config": settings, "task": task, "side": side, "source": "file",
                "file": str(image), "phase": "infer", "batch": 1, "threads": study.training.threads,
                "repeats": study.cost_repeats, "min_time_s": 2.0 if study.cost_repeats > 1 else 0.0, "warmup": 2}
        row = measure(spec, timeout_s=900)
        rows.append({"label": resolution_label(task, name), "infer_ms_per_image": round(row["median_s"] * 1000, 1),
                     "work_mib": round(row["peak_rss_mib"] - row["base_rss_mib"], 1),
                     "peak_rss_mib": row["peak_rss_mib"], "parameters": row["parameters"]})
    return pd.DataFrame(rows)


def prepare_resolution_data(study: ResolutionStudy, log: Callable[[str], None] = print) -> None:
    """Megapixel MNIST's stored sets: checked against their hashes (made on first use, about 2 minutes);
    at the smoke profile a small miniature (64/32/32 canvases), never a result."""
    from .. import megapixel

    if not any(task.startswith("megapixel") for task in study.tasks):
        return
    if study.profile == "smoke":
        root = Path(study.data_root)
        for split, n in (("train", 64), ("val", 32), ("test", 32)):
            if not megapixel.set_path(split, root).exists():
                megapixel.save(megapixel.generate(split, n=n), megapixel.set_path(split, root))
        log(f"Megapixel MNIST miniature (64/32/32 canvases, a pipeline check) in {root}")
        return
    cards = megapixel.prepare(study.data_root or None)
    log("Megapixel MNIST: " + ", ".join(f"{c['split']} {c['n']} (sha256 {c['sha256'][:12]}…)" for c in cards))


def run_folder(runs_dir: str | Path, spec: RunSpec) -> Path:
    return Path(runs_dir) / spec.folder()


def train_all(specs: list[RunSpec], runs_dir: str | Path, log: Callable[[str], None] = print) -> list[dict]:
    """Train (or resume, or reuse when finished) every run; return one summary per run, in order."""
    from ..train import train_model

    summaries = []
    for k, spec in enumerate(specs, 1):
        folder = run_folder(runs_dir, spec)
        done = folder / "metrics.json"
        if done.exists() and "test" in json.loads(done.read_text()):
            log(f"[{k}/{len(specs)}] {spec.label} seed {spec.seed}: finished earlier ({folder})")
            summary = json.loads(done.read_text())
        else:
            log(f"[{k}/{len(specs)}] {spec.label} seed {spec.seed}: training {spec.train_overrides['epochs']} epochs "
                f"→ {folder}")
            summary = train_model(spec.model, spec.task, folder, spec.model_overrides, spec.train_overrides)
        summaries.append(summary)
    return summaries


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
    from ..registry import build, parameter_count

    return parameter_count(build(spec.model, spec.resolved()[0]))


def collect(specs: list[RunSpec], runs_dir: str | Path, out_dir: str | Path,
            per_epoch: Callable[[RunSpec], int] | None = None) -> "pd.DataFrame":  # noqa: F821
    """One row per run (its test scores, epochs, canvases seen, minutes, seconds per epoch, parameters),
    written to ``out_dir/runs.csv``; each run's history.csv, metrics.json and config.json are copied to
    ``out_dir/runs/<folder>/`` so results/ keeps them. ``per_epoch`` gives the canvases a run's epoch
    reads where that is not its ``train_size`` (a stored training split smaller than it)."""
    import pandas as pd

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
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"],
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


def mean_std(values) -> str:
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.1f}"
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.1f} ± {std:.1f}"


def summarize(frame: "pd.DataFrame", by: str = "label") -> "pd.DataFrame":  # noqa: F821
    """Mean ± std of test exact match over seeds, per ``by``, in the frame's order."""
    import pandas as pd

    out = []
    for key, group in frame.groupby(by, sort=False):
        acc = group["test_accuracy"].astype(float) * 100
        out.append({by: key, "seeds": len(group), "test_exact_match_%": mean_std(acc),
                    "mean": acc.mean(), "std": acc.std(ddof=1) if len(acc) > 1 else float("nan"),
                    "train_min": group["train_min"].mean(), "epochs": group["epochs_run"].mean(),
                    "canvases_seen": int(group["canvases_seen"].mean())
                    if "canvases_seen" in group and group["canvases_seen"].notna().all() else None,
                    "s_per_epoch": group["s_per_epoch"].mean(), "parameters": int(group["parameters"].iloc[0])})
    return pd.DataFrame(out)


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


def results_root(profile: str, root: str | Path | None = None) -> Path:
    """Where a profile's results go: results/ for the committed profile, results-<profile>/ (git-ignored)
    for the others, so a smoke or paper run never overwrites the committed numbers."""
    if root:
        return Path(root)
    base = results_dir()
    return base if profile == COMMITTED_PROFILE else base.with_name(f"{base.name}-{profile}")


def default_out(experiment: str, out_dir: str = "", profile: str = COMMITTED_PROFILE) -> Path:
    return Path(out_dir) if out_dir else results_root(profile) / experiment


def default_runs(experiment: str, profile: str, folder: str = "") -> Path:
    return Path(folder) if folder else runs_dir() / "study" / profile / experiment


def histories(specs: list[RunSpec], runs_dir: str | Path, by_seed: bool = False) -> dict[str, list[dict]]:
    """label (with the seed when there are several, or ``by_seed``) → that run's history rows."""
    from ..plots import read_history

    several = by_seed or len({s.seed for s in specs}) > 1
    return {(f"{s.label} (seed {s.seed})" if several else s.label): read_history(run_folder(runs_dir, s) / "history.csv")
            for s in specs}


def first_run(specs: list[RunSpec], model: str = "saccade") -> RunSpec | None:
    """The first run (lowest seed listed first) of ``model``, or None when the experiment has none."""
    return next((s for s in specs if s.model == model), None)


def load_trained(spec: RunSpec, runs_dir: str | Path):
    """The best-on-validation weights of a finished glimpse-model run, as (model, meta)."""
    from ..inference import load_model

    return load_model(run_folder(runs_dir, spec) / "best.pt")


def noise_robustness(specs: list[RunSpec], runs_dir: str | Path, levels, dataset,
                     limit: int | None = None) -> "pd.DataFrame":  # noqa: F821
    """Each noise-free run (σ 0, keep 1) scored on ``dataset`` with its proxy noised at each of ``levels``:
    what a noisy proxy costs a policy that never saw noise, beside the runs retrained at a level. One row
    per (seed, level): test accuracy and the share of images whose digits a glimpse hit."""
    import dataclasses

    import pandas as pd

    from ..train import evaluate

    rows = []
    for spec in specs:
        if (spec.model_overrides["proxy_noise"], spec.model_overrides["proxy_keep"]) != (0.0, 1.0):
            continue
        model, _ = load_trained(spec, runs_dir)
        clean = model.cfg
        for sigma, keep in levels:
            model.cfg = dataclasses.replace(clean, proxy_noise=sigma, proxy_keep=keep)
            metrics = evaluate(model, dataset, limit=limit)
            rows.append({"seed": spec.seed, "sigma": sigma, "keep": keep, "test_accuracy": metrics["accuracy"],
                         "both_digits_hit": metrics.get("both_digits_hit")})
        model.cfg = clean
    return pd.DataFrame(rows, columns=["seed", "sigma", "keep", "test_accuracy", "both_digits_hit"])


def robustness_summary(robustness: "pd.DataFrame") -> "pd.DataFrame":  # noqa: F821
    """Per scored level of ``noise_robustness``: test accuracy over seeds, and its change from the same
    seed's noise-free score. The same models are scored at every level, so the change is paired: a
    level's cost shows against the seed-to-seed spread of what the models reach without noise."""
    import pandas as pd

    frame = robustness.assign(test_pct=robustness["test_accuracy"].astype(float) * 100)
    clean = frame[(frame["sigma"] == 0.0) & (frame["keep"] == 1.0)].set_index("seed")["test_pct"]
    frame = frame.assign(change=frame["test_pct"] - frame["seed"].map(clean))
    rows = []
    for (sigma, keep), level in frame.groupby(["sigma", "keep"], sort=False):
        rows.append({"sigma": sigma, "keep": keep, "seeds": len(level), "test_exact_match_%": mean_std(level["test_pct"]),
                     "change_from_noise_free_points": mean_std(level["change"]),
                     "seeds_that_lost": int((level["change"] < 0).sum())})
    return pd.DataFrame(rows)


def datasets_used(frame) -> dict:
    """The test sets' content hashes that the runs in ``frame`` were scored on."""
    return {"test_sha256": sorted(set(frame["test_sha256"].dropna()))}
