"""The study runner: execute the experiment notebooks with papermill, one after another, into results/.

``python -m saccadelib reproduce [--profile cpu] [--only NAME …] [--force]``

Each experiment runs in a staging folder (``results/.staging/<name>/``) and replaces
``results/<name>/`` only when its notebook finished, so a failure never destroys results that were
there. Finished experiments are skipped when their ``run.json`` records the same parameters; a training
run interrupted inside a notebook resumes from its checkpoint under ``runs/study/``. A failing notebook
(cell error, timeout, dead kernel) is reported with its cell, the failed notebook is kept beside the
results as ``<name>.failed.ipynb`` with ``failure.json``, the other experiments still run, and the exit
status is non-zero.

A notebook may finish over several sittings (the machine stops, a person interrupts). Each sitting keeps a
heartbeat in its staging folder; the next sitting adds the interrupted one's wall time to a ledger, and the
finished experiment's ``run.json`` lists every sitting it took (``sittings``, each with its ``wall_s``).
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from .paths import REPO_ROOT, atomic_path, results_dir, runs_dir
from .runinfo import git_commit, run_metadata, write_json
from .train import resolve_device

NOTEBOOKS = REPO_ROOT / "notebooks"


@dataclass(frozen=True)
class Experiment:
    name: str  # results/<name>/
    notebook: str  # in notebooks/
    parameters: dict = field(default_factory=dict)  # fixed for this experiment (e.g. the canvas)
    publish: tuple[str, ...] = ()  # files of its output also copied to results/ itself
    always: bool = False  # rerun even when its parameters match (the summary reads the others)
    # profile → None when the experiment can run, else why not (missing data): reported as skipped
    requires: Callable[[str], str | None] | None = None


def _fivek_available(profile: str) -> str | None:
    from .study import fivek_available

    return fivek_available(profile)


EXPERIMENTS = (
    Experiment("01_two_digit_sum", "01_two_digit_sum.ipynb"),
    Experiment("02_two_digit_identification_100", "02_two_digit_identification.ipynb", {"canvas": 100}),
    Experiment("02_two_digit_identification_2528", "02_two_digit_identification.ipynb", {"canvas": 2528}),
    Experiment("03_noisy_proxy_ablation", "03_noisy_proxy_ablation.ipynb"),
    Experiment("04_fivek", "04_fivek.ipynb", requires=_fivek_available),
    Experiment("05_efficiency", "05_efficiency.ipynb"),
    Experiment("00_summary", "00_summary.ipynb",
               publish=("table1.md", "table1.csv", "figure4_saccades.png", "figure5_noisy_proxy.png",
                        "profile_time.md"), always=True),
)


def notebook_parameters(path: Path) -> dict:
    import papermill

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


HEARTBEAT_S = 30.0  # how often a running sitting records that it is alive: an interrupted one's error


def _ledger_path(results_root: Path, name: str) -> Path:
    return results_root / ".staging" / f"{name}.sittings.json"


def _read_ledger(results_root: Path, name: str) -> list[dict]:
    path = _ledger_path(results_root, name)
    try:
        return json.loads(path.read_text())["sittings"] if path.exists() else []
    except (ValueError, KeyError, TypeError):  # a torn ledger costs the earlier sittings' times, not the run
        return []


def _close_interrupted_sitting(staging: Path, results_root: Path, name: str) -> list[dict]:
    """The ledger of this experiment's earlier sittings, with the one whose heartbeat is still in
    ``staging`` (it was killed before it could finish or fail) added: it ran until its last heartbeat."""
    ledger = _read_ledger(results_root, name)
    heartbeat = staging / "sitting.json"
    if heartbeat.exists():
        try:
            beat = json.loads(heartbeat.read_text())
            ledger.append({**{k: beat[k] for k in ("started", "parameters", "library_settings")},
                           "wall_s": round(beat["alive_unix"] - beat["started_unix"], 1), "outcome": "interrupted"})
            write_json(_ledger_path(results_root, name), {"sittings": ledger})
        except (ValueError, KeyError, TypeError):
            pass
    return ledger


class _Heartbeat:
    """Writes ``sitting.json`` (start, parameters, settings, last time alive) now and every HEARTBEAT_S
    seconds until stopped, so that a sitting killed mid-notebook still says how long it ran."""

    def __init__(self, path: Path, parameters: dict, settings: str):
        self.path, self.stopped = path, threading.Event()
        now = time.time()
        self.beat = {"started": datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds"),
                     "started_unix": now, "alive_unix": now, "parameters": parameters, "library_settings": settings}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _write(self) -> None:
        self.beat["alive_unix"] = time.time()
        try:
            write_json(self.path, self.beat)
        except OSError:  # a full disk costs this beat (the sitting's time), never the notebook
            pass

    def _run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_S):
            self._write()

    def start(self) -> "_Heartbeat":
        self._write()
        self.thread.start()
        return self

    def stop(self) -> None:
        """A last beat; the file stays, so a sitting stopped by Ctrl-C is counted by the next one (a sitting
        that finished or failed removes it with its staging folder)."""
        self.stopped.set()
        self.thread.join()
        self._write()


def _sittings(ledger: list[dict], current: dict) -> list[dict]:
    """The sittings that count towards this result: earlier ones under the same parameters and library
    settings (time spent under other settings bought runs this result does not use), then this one."""
    same = [s for s in ledger if s.get("parameters") == current["parameters"]
            and s.get("library_settings") == current["library_settings"]]
    return same + [current]


def run_experiment(exp: Experiment, profile: str, results_root: Path, runs_root: Path, overrides: dict,
                   force: bool = False, cell_timeout_s: float | None = None, log=print,
                   notebooks_dir: Path | None = None) -> dict:
    """Execute one notebook; returns {"name", "status": ok|skipped|failed, …}."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    notebook = Path(notebooks_dir or NOTEBOOKS) / exp.notebook
    final = results_root / exp.name
    accepts = notebook_parameters(notebook)
    # runner-wide overrides (the device) go to the notebooks that take them; the rest must exist
    parameters = {"profile": profile, **exp.parameters, **{k: v for k, v in overrides.items() if k in accepts}}
    check_parameters(notebook, parameters)
    missing = exp.requires(profile) if exp.requires else None
    if missing:
        log(f"{exp.name}: skipped, cannot run here: {missing}")
        return {"name": exp.name, "status": "skipped", "reason": missing}
    from .study import settings_fingerprint

    previous = final / "run.json"
    settings = settings_fingerprint(profile)
    if not force and not exp.always and previous.exists():
        record = json.loads(previous.read_text())
        if record.get("status") == "ok" and record.get("parameters") == parameters:
            if record.get("library_settings") == settings:
                log(f"{exp.name}: up to date ({previous}), skipped")
                return {"name": exp.name, "status": "skipped"}
            # a recipe, default or epoch time changed since: rerun (finished runs that still match are reused)
            log(f"{exp.name}: the library's settings changed since {previous} was written; rerunning")

    staging = results_root / ".staging" / exp.name
    ledger = _close_interrupted_sitting(staging, results_root, exp.name)
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    runs = runs_root / "study" / profile / exp.name
    paths = {"out_dir": str(staging.resolve()), "runs_dir": str(runs.resolve()),
             "results_root": str(results_root.resolve())}
    full = {**parameters, **{k: v for k, v in paths.items() if k in accepts}}
    executed = staging / f"{exp.name}.ipynb"
    log(f"{exp.name}: running {exp.notebook} ({', '.join(f'{k}={v}' for k, v in parameters.items())})")
    started, error = time.perf_counter(), None
    heartbeat = _Heartbeat(staging / "sitting.json", parameters, settings).start()
    # The kernel inherits this environment: whatever backend the caller chose (tests use Agg), the
    # executed notebook must show its figures, which only the inline backend does.
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        papermill.execute_notebook(str(notebook), str(executed), parameters=full, kernel_name="python3",
                                   progress_bar=False, log_output=False, execution_timeout=cell_timeout_s,
                                   cwd=str(REPO_ROOT))
    except papermill.PapermillExecutionError as err:
        error = {"kind": "cell error", "cell": err.cell_index, "error": f"{err.ename}: {err.evalue}"}
    except CellTimeoutError as err:
        error = {"kind": "timeout", "cell": _failing_cell(executed), "error": str(err).splitlines()[0]}
    except DeadKernelError as err:
        error = {"kind": "dead kernel", "cell": _failing_cell(executed), "error": str(err).splitlines()[0]}
    except Exception as err:  # a kernel that cannot start, an unreadable notebook…: the others still run
        error = {"kind": type(err).__name__, "cell": _failing_cell(executed), "error": str(err).splitlines()[0]
                 if str(err) else type(err).__name__}
    finally:
        heartbeat.stop()
        if backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = backend
    wall = round(time.perf_counter() - started, 1)
    sitting = {"started": heartbeat.beat["started"], "parameters": parameters, "library_settings": settings,
               "wall_s": wall, "outcome": "failed" if error else "finished"}
    sittings = _sittings(ledger, sitting)
    record = {"name": exp.name, "notebook": f"notebooks/{exp.notebook}", "profile": profile, "parameters": parameters,
              "wall_s": wall, "sittings": [{k: s[k] for k in ("started", "wall_s", "outcome")} for s in sittings],
              "git_commit": git_commit(), "library_settings": settings,
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
        # the failed sitting's time counts towards the result that a later sitting finishes
        write_json(_ledger_path(results_root, exp.name), {"sittings": [*ledger, sitting]})
        where = f"cell {error['cell']}" if error["cell"] is not None else "an unknown cell"
        log(f"{exp.name}: FAILED ({error['kind']}) in {where}: {error['error']}  → {final / 'failure.json'}")
        return {"name": exp.name, "status": "failed", **error, "wall_s": wall}

    (staging / "sitting.json").unlink(missing_ok=True)
    write_json(staging / "run.json", {**record, "status": "ok"})
    _swap_in(staging, final)
    _ledger_path(results_root, exp.name).unlink(missing_ok=True)  # run.json holds the sittings now
    for name in exp.publish:
        if (final / name).exists():
            with atomic_path(results_root / name) as tmp:
                shutil.copyfile(final / name, tmp)
    more = f" ({len(sittings)} sittings: {sum(s['wall_s'] for s in sittings) / 60:.1f} min)" if len(sittings) > 1 else ""
    log(f"{exp.name}: ok in {wall / 60:.1f} min{more} → {final}")
    return {"name": exp.name, "status": "ok", "wall_s": wall}


def reproduce(profile: str = "cpu", only: list[str] | None = None, force: bool = False,
              results_root: Path | None = None, runs_root: Path | None = None, device: str = "",
              cell_timeout_s: float | None = None, log=print, experiments: tuple[Experiment, ...] | None = None,
              notebooks_dir: Path | None = None) -> list[dict]:
    """Run the experiments (``only`` some, by name) in order; the summary comes last."""
    from .study import PROFILES

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
    experiments = tuple(experiments or EXPERIMENTS)
    by_name = {e.name: e for e in experiments}
    unknown = [name for name in only or [] if name not in by_name]
    if unknown:
        raise ValueError(f"unknown experiment {', '.join(unknown)}; valid: {', '.join(by_name)}")
    chosen = [by_name[name] for name in dict.fromkeys(only)] if only else list(experiments)
    chosen.sort(key=lambda e: (e.always, list(experiments).index(e)))
    results_root = Path(results_root or results_dir())
    runs_root = Path(runs_root or runs_dir())
    overrides = {"device": device} if device else {}
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
