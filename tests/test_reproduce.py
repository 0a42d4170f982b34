"""The study runner (reproduce.py) and the committed notebooks."""
import json
from pathlib import Path

import nbformat
import pytest

from saccadelib import reproduce
from saccadelib.reproduce import Experiment

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PARAMS = 'profile: str = "cpu"\nout_dir: str = ""\nruns_dir: str = ""\n'


def write_notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell(PARAMS)
    first.metadata["tags"] = ["parameters"]
    nb.cells = [first, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def fake_study(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    write_notebook(notebooks / "ok.ipynb",
                   "from pathlib import Path\nPath(out_dir, 'numbers.csv').write_text('a,b\\n1,2\\n')")
    write_notebook(notebooks / "bad.ipynb", "x = 1", "raise RuntimeError('the data is missing')")
    write_notebook(notebooks / "slow.ipynb", "import time\ntime.sleep(20)")
    write_notebook(notebooks / "dies.ipynb", "x = 1", "import os\nos._exit(1)")
    return notebooks, tmp_path / "results", tmp_path / "runs"


def run(fake, names, **kw):
    notebooks, results, runs = fake
    experiments = (Experiment("ok", "ok.ipynb"), Experiment("bad", "bad.ipynb"), Experiment("slow", "slow.ipynb"),
                   Experiment("dies", "dies.ipynb"))
    lines = []
    outcomes = reproduce.reproduce("smoke", only=names, results_root=results, runs_root=runs, log=lines.append,
                                   experiments=experiments, notebooks_dir=notebooks, **kw)
    return {o["name"]: o for o in outcomes}, lines


def test_runner_writes_results_and_skips_what_is_up_to_date(fake_study):
    _, results, _ = fake_study
    outcome, _ = run(fake_study, ["ok"])
    assert outcome["ok"]["status"] == "ok"
    record = json.loads((results / "ok" / "run.json").read_text())
    assert record["status"] == "ok" and record["parameters"] == {"profile": "smoke"}
    assert record["git_commit"] and record["wall_s"] > 0 and "torch" in record["run"]
    assert (results / "ok" / "numbers.csv").read_text() == "a,b\n1,2\n"
    assert (results / "ok" / "ok.ipynb").exists() and not (results / ".staging" / "ok").exists()
    assert run(fake_study, ["ok"])[0]["ok"]["status"] == "skipped"
    assert run(fake_study, ["ok"], force=True)[0]["ok"]["status"] == "ok"


def test_a_changed_recipe_or_default_makes_an_experiment_rerun(fake_study, monkeypatch):
    from saccadelib import study

    assert run(fake_study, ["ok"])[0]["ok"]["status"] == "ok"
    monkeypatch.setitem(study.RECIPES, "sum", {**study.RECIPES["sum"], "glimpses": 3})
    outcome, lines = run(fake_study, ["ok"])
    assert outcome["ok"]["status"] == "ok" and "settings changed" in lines[0]
    assert run(fake_study, ["ok"])[0]["ok"]["status"] == "skipped"


def test_a_changed_profile_budget_changes_the_library_settings(monkeypatch):
    from saccadelib import study

    before = {profile: study.settings_fingerprint(profile) for profile in study.PROFILES}
    assert len(set(before.values())) == len(study.PROFILES)  # each profile has its own settings
    original = study._profile_training
    monkeypatch.setattr(study, "_profile_training",
                        lambda profile, minutes: original(profile, minutes + 1))  # one more minute per run
    assert study.settings_fingerprint("cpu") != before["cpu"]


def test_a_failing_notebook_is_reported_keeps_old_results_and_the_others_run(fake_study):
    _, results, _ = fake_study
    (results / "bad").mkdir(parents=True)
    (results / "bad" / "earlier.csv").write_text("kept")
    outcome, lines = run(fake_study, ["bad", "ok"])
    assert outcome["ok"]["status"] == "ok"
    bad = outcome["bad"]
    assert bad["status"] == "failed" and bad["kind"] == "cell error" and "the data is missing" in bad["error"]
    assert bad["cell"] is not None
    failure = json.loads((results / "bad" / "failure.json").read_text())
    assert failure["status"] == "failed" and failure["cell"] == bad["cell"]
    assert (results / "bad" / "earlier.csv").read_text() == "kept"  # nothing already written is lost
    assert (results / "bad" / "bad.failed.ipynb").exists()
    assert any("FAILED" in line and "cell" in line for line in lines)
    assert "failed: bad" in lines[-1]


def test_a_cell_timeout_names_the_cell(fake_study):
    outcome, _ = run(fake_study, ["slow"], cell_timeout_s=3)
    assert outcome["slow"]["status"] == "failed" and outcome["slow"]["kind"] == "timeout"
    assert outcome["slow"]["cell"] == 2  # 0: parameters, 1: injected parameters, 2: the sleep


def test_a_dead_kernel_is_a_failure_not_a_crash(fake_study):
    outcome, _ = run(fake_study, ["dies", "ok"])
    assert outcome["dies"]["status"] == "failed" and outcome["dies"]["kind"] == "dead kernel"
    assert outcome["dies"]["cell"] == 3  # parameters, injected parameters, x = 1, then the exit
    assert outcome["ok"]["status"] == "ok"


def test_unknown_parameters_and_experiments_are_refused(fake_study):
    notebooks, results, runs = fake_study
    typo = Experiment("ok", "ok.ipynb", {"canvs": 100})
    with pytest.raises(ValueError, match="no parameter canvs"):
        reproduce.reproduce("smoke", results_root=results, runs_root=runs, experiments=(typo,),
                            notebooks_dir=notebooks, log=lambda s: None)
    with pytest.raises(ValueError, match="unknown experiment nope"):
        run(fake_study, ["nope"])
    with pytest.raises(ValueError, match="unknown profile"):
        reproduce.reproduce("fast", log=lambda s: None)


def test_committed_notebooks_are_clean_and_parameterized():
    import papermill

    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert {e.notebook for e in reproduce.EXPERIMENTS} == set(names)
    for name in names:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, f"{name} carries outputs"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        parameters = papermill.inspect_notebook(str(NOTEBOOKS / name))
        assert {"profile", "out_dir", "interactive"} <= set(parameters), name
        assert all(p["inferred_type_name"] != "None" for p in parameters.values()), name


def test_an_experiment_without_its_data_is_skipped_with_the_reason_not_failed(fake_study):
    notebooks, results, runs = fake_study
    experiments = (Experiment("ok", "ok.ipynb"),
                   Experiment("needs_data", "bad.ipynb", requires=lambda profile: f"no data for {profile}"))
    lines = []
    outcomes = reproduce.reproduce("smoke", results_root=results, runs_root=runs, log=lines.append,
                                   experiments=experiments, notebooks_dir=notebooks)
    status = {o["name"]: o for o in outcomes}
    assert status["needs_data"] == {"name": "needs_data", "status": "skipped", "reason": "no data for smoke"}
    assert status["ok"]["status"] == "ok" and not (results / "needs_data").exists()
    assert "skipped for missing data: needs_data" in lines[-1] and "failed" not in lines[-1]


def test_fivek_is_available_at_smoke_and_needs_prepared_data_otherwise(tmp_path, monkeypatch):
    from saccadelib import study

    assert study.fivek_available("smoke") is None
    monkeypatch.setenv("SACCADE_DATA", str(tmp_path))  # no data/fivek here
    reason = study.fivek_available("cpu")
    assert reason and "python -m saccadelib data fivek --source" in reason
    from saccadelib.__main__ import main

    # the real 04 notebook at the cpu profile without FiveK: reported as skipped, exit status 0, nothing written
    assert main(["reproduce", "--profile", "cpu", "--only", "04_fivek", "--results", str(tmp_path / "results"),
                 "--runs", str(tmp_path / "runs")]) == 0
    assert not (tmp_path / "results" / "04_fivek").exists()


def test_git_keeps_each_experiments_run_records_and_ignores_checkpoints():
    """results/<experiment>/runs/<run>/ (history, metrics, config: small) is committed with the results;
    the checkpoints under the top-level runs/ are not."""
    import shutil
    import subprocess

    from saccadelib.paths import REPO_ROOT

    if shutil.which("git") is None or not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO_ROOT).returncode == 0

    assert not ignored("results/01_two_digit_sum/runs/saccade_s0_0123456789/metrics.json")
    assert ignored("runs/study/cpu/01_two_digit_sum/saccade_s0_0123456789/last.pt")
    assert ignored("results/.staging/01_two_digit_sum/run.json")


def _interrupted_sitting(results: Path, name: str, wall_s: float, parameters: dict, settings: str) -> None:
    """What a runner killed mid-notebook leaves: its staging folder with the sitting's last heartbeat."""
    staging = results / ".staging" / name
    staging.mkdir(parents=True)
    (staging / "sitting.json").write_text(json.dumps({
        "started": "2026-01-01T00:00:00+00:00", "started_unix": 1000.0, "alive_unix": 1000.0 + wall_s,
        "parameters": parameters, "library_settings": settings}))


def test_a_result_finished_over_several_sittings_records_each_sittings_wall_time(fake_study):
    from saccadelib.study import settings_fingerprint

    _, results, _ = fake_study
    here = {"profile": "smoke"}
    _interrupted_sitting(results, "ok", 200.0, here, "settings of an older library")
    run(fake_study, ["ok"])  # picks up that sitting; it does not count: other settings
    _interrupted_sitting(results, "ok", 100.0, here, settings_fingerprint("smoke"))
    outcome, lines = run(fake_study, ["ok"], force=True)
    record = json.loads((results / "ok" / "run.json").read_text())
    assert [s["outcome"] for s in record["sittings"]] == ["interrupted", "finished"]
    assert record["sittings"][0]["wall_s"] == 100.0
    assert sum(s["wall_s"] for s in record["sittings"]) == pytest.approx(100.0 + record["wall_s"], abs=0.11)
    assert "2 sittings" in lines[-2]
    assert not (results / ".staging" / "ok.sittings.json").exists()  # consumed into run.json
    assert not (results / "ok" / "sitting.json").exists()


def test_a_failed_sitting_counts_towards_the_result_that_follows(fake_study):
    _, results, _ = fake_study
    assert run(fake_study, ["bad"])[0]["bad"]["status"] == "failed"
    ledger = json.loads((results / ".staging" / "bad.sittings.json").read_text())["sittings"]
    assert [s["outcome"] for s in ledger] == ["failed"] and ledger[0]["wall_s"] > 0
    notebooks, _, _ = fake_study
    write_notebook(notebooks / "bad.ipynb", "x = 1")  # fixed
    run(fake_study, ["bad"])
    record = json.loads((results / "bad" / "run.json").read_text())
    assert [s["outcome"] for s in record["sittings"]] == ["failed", "finished"]


def test_the_heartbeat_says_how_long_a_sitting_ran_until_it_stopped(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(reproduce, "HEARTBEAT_S", 0.05)
    beat = reproduce._Heartbeat(tmp_path / "sitting.json", {"profile": "smoke"}, "x").start()
    time.sleep(0.3)
    written = json.loads((tmp_path / "sitting.json").read_text())
    assert written["alive_unix"] - written["started_unix"] >= 0.1  # it kept beating while running
    beat.stop()
    ledger = reproduce._close_interrupted_sitting(tmp_path, tmp_path, "x")
    assert ledger[0]["outcome"] == "interrupted" and ledger[0]["wall_s"] >= 0.3 - 0.01
