"""Two runners sharing an experiment's runs: locked run folders left to their holder, waited for, reused
or resumed; ``reproduce --train-only`` training into the folders the notebooks read."""
import json
from pathlib import Path

import pytest

from saccadelib import study


def tiny_specs():
    config = study.task_study("sum", "smoke", models="proxy_cnn,saccade", train_size=64, batch_size=32,
                              val_size=50, test_size=50)
    return config, study.task_runs(config)


class FakeTraining:
    """Stands in for the training loop: records which folders it trained and leaves a finished run there."""

    def __init__(self):
        self.trained = []

    def __call__(self, model, task, folder, model_overrides, train_overrides):
        self.trained.append((Path(folder), train_overrides))
        summary = {"test": {"accuracy": 0.5}}
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "metrics.json").write_text(json.dumps(summary))
        return summary


def test_train_all_leaves_a_run_another_process_trains_and_waits_for_it(tmp_path, monkeypatch):
    """Two runners share an experiment's runs: a run whose folder is locked is left to its holder while the
    others train, then waited for and reused once finished; without waiting it is skipped; one its holder
    left unfinished is resumed here."""
    import threading
    from saccadelib.paths import RunLock

    fake = FakeTraining()
    monkeypatch.setattr(study.runs.training_loop, "train_model", fake)
    _, specs = tiny_specs()
    runs = tmp_path / "runs"
    held_folder, free_folder = study.run_folder(runs, specs[0]), study.run_folder(runs, specs[1])

    with RunLock(held_folder):  # the other process, training specs[0]
        lines = []
        assert study.train_all(specs, runs, log=lines.append, wait_for_others=False) == [{"test": {"accuracy": 0.5}}]
        assert [folder for folder, _ in fake.trained] == [free_folder]
        assert "training in another process (left to it)" in lines[0]

    fake.trained.clear()
    (free_folder / "metrics.json").unlink()
    lines, out = [], {}
    other = RunLock(held_folder).__enter__()
    waiting = threading.Thread(target=lambda: out.update(summaries=study.train_all(specs, runs, log=lines.append,
                                                                                   poll_s=0.01)))
    waiting.start()
    for _ in range(500):  # the free run trains first, the held one is waited for
        if fake.trained:
            break
        threading.Event().wait(0.01)
    assert [folder for folder, _ in fake.trained] == [free_folder] and waiting.is_alive()
    (held_folder / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.9}}))
    other.__exit__(None, None, None)
    waiting.join(timeout=10)
    assert out["summaries"] == [{"test": {"accuracy": 0.9}}, {"test": {"accuracy": 0.5}}]
    assert [folder for folder, _ in fake.trained] == [free_folder]  # reused, not trained again
    assert sum("training in another process (waited for after the others)" in line for line in lines) == 1

    fake.trained.clear()
    (held_folder / "metrics.json").unlink()  # its holder stopped before the end: this one resumes it
    assert len(study.train_all(specs, runs, log=lambda s: None, poll_s=0.01)) == 2
    assert [folder for folder, _ in fake.trained] == [held_folder]


def test_train_only_trains_into_the_folders_the_notebooks_read(tmp_path, monkeypatch):
    """`reproduce --train-only`: the experiment's runs, in the folders its notebook trains and reads (the
    threads given are not part of a run's identity), and nothing rendered; an experiment without runs of its
    own is refused with a one-line error."""
    from saccadelib.study import runner

    fake = FakeTraining()
    monkeypatch.setattr(study.runs.training_loop, "train_model", fake)
    # the runs as the 01 notebook makes them at the smoke profile, with threads=1
    specs = study.task_runs(study.task_study("sum", "smoke", threads=1))
    finished = runner.train_only("smoke", ["01_two_digit_sum"], tmp_path / "runs", threads=1, log=lambda s: None)
    notebook_runs = tmp_path / "runs" / "study" / "smoke" / "01_two_digit_sum"
    assert finished == len(specs) > 1
    assert [folder for folder, _ in fake.trained] == [study.run_folder(notebook_runs, spec) for spec in specs]
    assert all(overrides["threads"] == 1 for _, overrides in fake.trained)
    assert not (tmp_path / "results-smoke").exists()
    with pytest.raises(ValueError, match="00_summary trains no runs of its own"):
        runner.train_only("smoke", ["00_summary"], tmp_path / "runs")
