"""The study runner (saccadelib.study.runner) and the committed notebooks."""
import json
from pathlib import Path

import nbformat
import pytest

from saccadelib.study import runner as reproduce
from saccadelib.study.plan import EXPERIMENTS, Experiment

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


def test_a_second_runner_on_an_experiment_being_rendered_is_refused_before_it_touches_anything(fake_study):
    """Two `reproduce` on one experiment would share its staging folder: the second is refused with the way to
    share the runs instead, the first one's staging left as it was; once the first is done it may run."""
    from saccadelib.paths import RunLock, RunLockedError

    _, results, _ = fake_study
    staging = results / ".staging" / "ok"
    staging.mkdir(parents=True)
    (staging / "ok.ipynb").write_text("the first runner's notebook, half executed")
    with RunLock(results / ".staging" / "ok.lock"):  # the first runner, rendering "ok"
        with pytest.raises(RunLockedError, match="another reproduce is running ok .*--train-only --only ok"):
            run(fake_study, ["ok"])
        assert (staging / "ok.ipynb").read_text() == "the first runner's notebook, half executed"
    assert run(fake_study, ["ok"])[0]["ok"]["status"] == "ok"


def test_a_changed_recipe_or_default_makes_an_experiment_rerun(fake_study, monkeypatch):
    from saccadelib import study

    assert run(fake_study, ["ok"])[0]["ok"]["status"] == "ok"
    monkeypatch.setitem(study.RECIPES, "four_glimpses_grid_start",
                        {**study.RECIPES["four_glimpses_grid_start"], "glimpses": 3})
    outcome, lines = run(fake_study, ["ok"])
    assert outcome["ok"]["status"] == "ok" and "settings changed" in lines[0]
    assert run(fake_study, ["ok"])[0]["ok"]["status"] == "skipped"


def test_a_changed_profile_budget_changes_the_library_settings(monkeypatch):
    from saccadelib import study

    before = {profile: study.settings_fingerprint(profile) for profile in study.PROFILES}
    assert len(set(before.values())) == len(study.PROFILES)  # each profile has its own settings
    original = study.profiles._profile_training
    monkeypatch.setattr(study.profiles, "_profile_training",
                        lambda profile, minutes: original(profile, minutes + 1))  # one more minute per run
    assert study.settings_fingerprint("cpu") != before["cpu"]


def test_a_setting_added_at_its_neutral_value_leaves_the_library_settings_alone(monkeypatch):
    # results rendered before a model setting existed stay up to date while it sits at the value that
    # leaves every run as it was; set otherwise, the experiments are stale
    from saccadelib import settings, study
    from saccadelib.study import plan

    before = study.settings_fingerprint("plateau")
    original = plan.to_dict

    def with_a_new_setting(value):
        def to_dict(config):
            out = original(config)
            return {**out, "added_later": value} if "n_classes" in out else out
        return to_dict

    monkeypatch.setitem(settings.NEUTRAL_SETTINGS["model"], "added_later", 0)
    monkeypatch.setattr(plan, "to_dict", with_a_new_setting(0))
    assert study.settings_fingerprint("plateau") == before
    monkeypatch.setattr(plan, "to_dict", with_a_new_setting(1))
    assert study.settings_fingerprint("plateau") != before


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
    assert {e.notebook for e in EXPERIMENTS} == set(names)
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

    assert study.plan.fivek_available("smoke") is None
    monkeypatch.setenv("SACCADE_DATA", str(tmp_path))  # no data/fivek here
    reason = study.plan.fivek_available("cpu")
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


def test_only_the_committed_profile_writes_results(tmp_path, monkeypatch):
    """A smoke or paper run never overwrites the committed results: it writes results-<profile>/."""
    from saccadelib.study.runs import default_out, results_root

    monkeypatch.setenv("SACCADE_RESULTS", str(tmp_path / "results"))
    assert results_root("cpu") == tmp_path / "results"
    assert results_root("smoke") == tmp_path / "results-smoke" and results_root("paper") == tmp_path / "results-paper"
    assert results_root("smoke", tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert default_out("01_two_digit_sum", "", "smoke") == tmp_path / "results-smoke" / "01_two_digit_sum"


def test_the_runner_log_says_how_long_each_attempt_took(fake_study):
    _, results, _ = fake_study
    _, lines = run(fake_study, ["bad", "ok"])
    assert any(line.startswith("bad: FAILED") and " min: " in line for line in lines)
    assert any(line.startswith("ok: ok in ") and " min " in line for line in lines)
    record = json.loads((results / "ok" / "run.json").read_text())
    assert record["wall_s"] > 0 and "sittings" not in record


def test_the_commit_stamp_says_dirty_for_changed_code_but_not_for_rendered_results(tmp_path, monkeypatch):
    import subprocess

    from saccadelib import runinfo

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "table.md").write_text("| a |\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    monkeypatch.setattr(runinfo, "REPO_ROOT", tmp_path)
    monkeypatch.delenv("SACCADE_GIT_COMMIT", raising=False)
    clean = runinfo.git_commit()
    assert len(clean) == 40
    (tmp_path / "results" / "table.md").write_text("| b |\n")  # a rendered experiment
    assert runinfo.git_commit() == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert runinfo.git_commit() == clean + "+dirty"


def test_threads_reach_the_notebooks_that_take_them_and_do_not_make_a_finished_one_rerun(fake_study):
    """`reproduce --threads N` (two runners side by side, each on its own experiments): the notebooks that take
    ``threads`` get it and record it; one that does not runs as before; a finished experiment is skipped, since
    threads change how long it takes, not what it computes."""
    notebooks, results, runs = fake_study
    nb = nbformat.read(notebooks / "ok.ipynb", as_version=4)
    nb.cells[0].source += "threads: int = 0\n"
    nb.cells.append(nbformat.v4.new_code_cell("Path(out_dir, 'threads.txt').write_text(str(threads))"))
    nbformat.write(nb, notebooks / "threaded.ipynb")
    experiments = (Experiment("threaded", "threaded.ipynb"), Experiment("ok", "ok.ipynb"))

    def go(threads, **kw):
        outcomes = reproduce.reproduce("smoke", results_root=results, runs_root=runs, log=lambda s: None,
                                       experiments=experiments, notebooks_dir=notebooks, threads=threads, **kw)
        return {o["name"]: o["status"] for o in outcomes}

    assert go(1) == {"threaded": "ok", "ok": "ok"}
    assert (results / "threaded" / "threads.txt").read_text() == "1"
    assert json.loads((results / "threaded" / "run.json").read_text())["parameters"] == {"profile": "smoke",
                                                                                        "threads": 1}
    assert json.loads((results / "ok" / "run.json").read_text())["parameters"] == {"profile": "smoke"}
    assert go(0) == {"threaded": "skipped", "ok": "skipped"}
    assert go(2, force=True) == {"threaded": "ok", "ok": "ok"}
    assert (results / "threaded" / "threads.txt").read_text() == "2"
    with pytest.raises(ValueError, match="threads must be 1 or more"):
        go(-1)
