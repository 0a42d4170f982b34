"""The study runner: execute the experiment notebooks with papermill, one after another, into results/.

``python -m saccadelib reproduce [--profile cpu] [--only NAME …] [--force]``

Each experiment runs in a staging folder (``results/.staging/<name>/``) and replaces
``results/<name>/`` only when its notebook finished, so a failure never destroys results that were
there. Finished experiments are skipped when their ``run.json`` records the same parameters; a training
run interrupted inside a notebook resumes from its checkpoint under ``runs/study/``. A failing notebook
(cell error, timeout, dead kernel) is reported with its cell, the failed notebook is kept beside the
results as ``<name>.failed.ipynb`` with ``failure.json``, the other experiments still run, and the exit
status is non-zero.

Results go to ``results/`` for the ``cpu`` profile and to ``results/plateau/`` for ``plateau`` (the
committed ones, which runs only Table 1's experiments and the summary); any other profile writes to its
own git-ignored ``results-<profile>/`` unless ``--results`` says where. The log line of every attempt says how
long it took; ``run.json`` records the wall time of the attempt that finished the experiment, and each
training run records its own training and validation time, which a resumed run carries over.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from ..evaluation import resolve_device
from ..paths import REPO_ROOT, RunLock, RunLockedError, atomic_path, runs_dir
from ..runinfo import git_commit, run_metadata, write_json
from .plan import Experiment, experiments_for, settings_fingerprint
from .profiles import check_profile, resolution_study
from .runs import experiment_runs, prepare_resolution_data, train_all
from .runs import results_root as profile_results
from .progress import run_progress

NOTEBOOKS = REPO_ROOT / "notebooks"


def notebook_parameters(path: Path) -> dict:
    return papermill.inspect_notebook(str(path))


def check_parameters(path: Path, parameters: dict) -> None:
    """papermill only logs an unknown parameter; a typo must not silently run the defaults."""
    known = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{path.name} has no parameter {', '.join(unknown)}; it takes: {', '.join(sorted(known))}")


def _failing_cell(notebook: Path) -> int | None:
    """The index of the cell that failed in a partly executed notebook: the one papermill marks running or
    failed, or holding an error output; else (a dead kernel, a timeout) the last cell that started."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return None
    started = None
    for k, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("papermill", {})
        if meta.get("status") in ("running", "failed"):
            return k
        if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
            return k
        if meta.get("start_time"):
            started = k
    return started


def runs_clock(folder: Path) -> float:
    """Seconds the training runs under ``folder`` have spent, by their own clocks: every epoch's training
    and validation (history.csv, kept across resumes) and the test scoring of finished runs, at any depth
    (06 keeps its runs in a folder per data set)."""
    total = 0.0
    for history in folder.rglob("history.csv"):
        seconds, _, finished = run_progress(history.parent)
        total += seconds
        if finished:
            total += float(json.loads((history.parent / "metrics.json").read_text()).get("test_s", 0.0))
    return total


def _swap_in(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` with two renames: at every moment one complete copy exists."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    if old.exists():
        shutil.rmtree(old)


def _execute(notebook: Path, executed: Path, parameters: dict, cell_timeout_s: float | None) -> dict | None:
    """Run ``notebook`` with papermill into ``executed``; None, or what went wrong and in which cell."""
    # The kernel inherits this environment: whatever backend the caller chose (tests use Agg), the
    # executed notebook must show its figures, which only the inline backend does.
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, log_output=False, execution_timeout=cell_timeout_s,
                                   cwd=str(REPO_ROOT))
    except papermill.PapermillExecutionError as err:
        return {"kind": "cell error", "cell": err.cell_index, "error": f"{err.ename}: {err.evalue}"}
    except CellTimeoutError as err:
        return {"kind": "timeout", "cell": _failing_cell(executed), "error": str(err).splitlines()[0]}
    except DeadKernelError as err:
        return {"kind": "dead kernel", "cell": _failing_cell(executed), "error": str(err).splitlines()[0]}
    except Exception as err:  # a kernel that cannot start, an unreadable notebook…: the others still run
        return {"kind": type(err).__name__, "cell": _failing_cell(executed), "error": str(err).splitlines()[0]
                if str(err) else type(err).__name__}
    finally:
        if backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = backend
    return None


# Parameters that say how an experiment ran, not what it computes: a finished one is not rerun for them
HOW_IT_RAN = ("threads",)


def _what_it_computes(parameters: dict) -> dict:
    return {k: v for k, v in parameters.items() if k not in HOW_IT_RAN}


def run_experiment(exp: Experiment, profile: str, results_root: Path, runs_root: Path, overrides: dict,
                   force: bool = False, cell_timeout_s: float | None = None, log=print,
                   notebooks_dir: Path | None = None) -> dict:
    """Execute one notebook; returns {"name", "status": ok|skipped|failed, …}. One runner at a time renders
    an experiment into a results folder: a second is refused before it touches the first one's staging."""
    try:
        lock = RunLock(results_root / ".staging" / f"{exp.name}.lock").__enter__()
    except RunLockedError:
        raise RunLockedError(f"another reproduce is running {exp.name} into {results_root}: wait for it, or share "
                             f"its runs with reproduce --train-only --only {exp.name}") from None
    try:
        return _run_experiment(exp, profile, results_root, runs_root, overrides, force, cell_timeout_s, log,
                               notebooks_dir)
    finally:
        lock.__exit__(None, None, None)


def _run_experiment(exp: Experiment, profile: str, results_root: Path, runs_root: Path, overrides: dict,
                    force: bool, cell_timeout_s: float | None, log, notebooks_dir: Path | None) -> dict:
    notebook = Path(notebooks_dir or NOTEBOOKS) / exp.notebook
    final = results_root / exp.name
    accepts = notebook_parameters(notebook)
    # runner-wide overrides (the device, the threads) go to the notebooks that take them; the rest must exist
    parameters = {"profile": profile, **exp.parameters, **{k: v for k, v in overrides.items() if k in accepts}}
    check_parameters(notebook, parameters)
    missing = exp.requires(profile) if exp.requires else None
    if missing:
        log(f"{exp.name}: skipped, cannot run here: {missing}")
        return {"name": exp.name, "status": "skipped", "reason": missing}
    previous = final / "run.json"
    settings = settings_fingerprint(profile)
    if not force and not exp.always and previous.exists():
        record = json.loads(previous.read_text())
        if record.get("status") == "ok" and _what_it_computes(record.get("parameters", {})) == _what_it_computes(parameters):
            if record.get("library_settings") == settings:
                log(f"{exp.name}: up to date ({previous}), skipped")
                return {"name": exp.name, "status": "skipped"}
            # a recipe, default or epoch time changed since: rerun (finished runs that still match are reused)
            log(f"{exp.name}: the library's settings changed since {previous} was written; rerunning")

    staging = results_root / ".staging" / exp.name
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    runs = runs_root / "study" / profile / exp.name
    paths = {"out_dir": str(staging.resolve()), "runs_dir": str(runs.resolve()),
             "results_root": str(results_root.resolve())}
    full = {**parameters, **{k: v for k, v in paths.items() if k in accepts}}
    executed = staging / f"{exp.name}.ipynb"
    log(f"{exp.name}: running {exp.notebook} ({', '.join(f'{k}={v}' for k, v in parameters.items())})")
    clock_before = runs_clock(runs)
    started = time.perf_counter()
    error = _execute(notebook, executed, full, cell_timeout_s)
    wall = round(time.perf_counter() - started, 1)
    # the attempt's own work besides what its runs clocked (kernel, data sets, figures, benchmarks): with
    # the runs' clocks, which resumed runs carry over, it makes the experiment's measured cost
    other = round(max(0.0, wall - (runs_clock(runs) - clock_before)), 1)
    record = {"name": exp.name, "notebook": f"notebooks/{exp.notebook}", "profile": profile, "parameters": parameters,
              "wall_s": wall, "other_s": other, "git_commit": git_commit(), "library_settings": settings,
              "run": run_metadata(resolve_device(overrides.get("device") or "cpu"))}
    config = staging / "config.json"
    if config.exists():  # what the notebook resolved: seeds, budgets, the dataset hashes
        record["resolved"] = json.loads(config.read_text())

    if error is not None:
        final.mkdir(parents=True, exist_ok=True)
        if executed.exists():
            shutil.copyfile(executed, final / f"{exp.name}.failed.ipynb")
        write_json(final / "failure.json", {**record, "status": "failed", **error})
        shutil.rmtree(staging, ignore_errors=True)
        where = f"cell {error['cell']}" if error["cell"] is not None else "an unknown cell"
        log(f"{exp.name}: FAILED ({error['kind']}) in {where} after {wall / 60:.1f} min: {error['error']}  "
            f"→ {final / 'failure.json'}")
        return {"name": exp.name, "status": "failed", **error, "wall_s": wall}

    write_json(staging / "run.json", {**record, "status": "ok"})
    _swap_in(staging, final)
    for name in exp.publish:
        if (final / name).exists():
            with atomic_path(results_root / name) as tmp:
                shutil.copyfile(final / name, tmp)
    log(f"{exp.name}: ok in {wall / 60:.1f} min → {final}")
    return {"name": exp.name, "status": "ok", "wall_s": wall}


def reproduce(profile: str = "cpu", only: list[str] | None = None, force: bool = False,
              results_root: Path | None = None, runs_root: Path | None = None, device: str = "", threads: int = 0,
              cell_timeout_s: float | None = None, log=print, experiments: tuple[Experiment, ...] | None = None,
              notebooks_dir: Path | None = None) -> list[dict]:
    """Run the experiments (``only`` some, by name) in order; the summary comes last."""
    check_profile(profile)
    experiments = tuple(experiments or experiments_for(profile))
    by_name = {e.name: e for e in experiments}
    unknown = [name for name in only or [] if name not in by_name]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(unknown)}; valid: {', '.join(by_name)}")
    chosen = [by_name[name] for name in dict.fromkeys(only)] if only else list(experiments)
    chosen.sort(key=lambda e: (e.always, list(experiments).index(e)))
    results_root = profile_results(profile, results_root)
    runs_root = Path(runs_root or runs_dir())
    if threads < 0:
        raise ValueError(f"threads must be 1 or more (0: the profile's), got {threads}")
    overrides = {**({"device": device} if device else {}), **({"threads": threads} if threads else {})}
    outcomes = []
    started = time.perf_counter()
    for exp in chosen:
        outcomes.append(run_experiment(exp, profile, results_root, runs_root, overrides, force, cell_timeout_s, log,
                                       notebooks_dir))
    failed = [o["name"] for o in outcomes if o["status"] == "failed"]
    unavailable = [o["name"] for o in outcomes if o.get("reason")]
    log(f"reproduce ({profile}): {len(outcomes) - len(failed)} of {len(outcomes)} experiments ok"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; skipped for missing data: {', '.join(unavailable)}" if unavailable else "") + f"; {(time.perf_counter() - started) / 60:.1f} min")
    return outcomes


def train_only(profile: str = "cpu", only: list[str] | None = None, runs_root: Path | None = None, device: str = "",
               threads: int = 0, log=print) -> int:
    """Train the runs of the experiments ``only`` (every experiment with runs, when empty) into the folders
    their notebooks read, leaving any run another process trains to it, and render nothing: a second runner
    beside ``reproduce`` on the same experiments (its notebook waits for the runs trained here, then
    renders). Returns how many runs are finished."""
    check_profile(profile)
    if threads < 0:
        raise ValueError(f"threads must be 1 or more (0: the profile's), got {threads}")
    by_name = experiment_runs(profile)
    unknown = [name for name in only or [] if name not in by_name]
    if unknown:
        raise ValueError(f"{', '.join(unknown)} trains no runs of its own at the {profile} profile; --train-only "
                         f"takes {', '.join(by_name)}")
    runs_root = Path(runs_root or runs_dir())
    overrides = {**({"device": device} if device else {}), **({"threads": threads} if threads else {})}
    finished = 0
    for name in dict.fromkeys(only or by_name):
        if name == "06_resolution":  # its stored data sets, as its notebook makes them before training
            prepare_resolution_data(resolution_study(profile), log)
        specs = [dataclasses.replace(spec, train_overrides={**spec.train_overrides, **overrides})
                 for spec in by_name[name]]
        log(f"{name}: training its {len(specs)} runs beside the runner (--train-only)")
        finished += len(train_all(specs, runs_root / "study" / profile / name, log, wait_for_others=False))
    return finished
