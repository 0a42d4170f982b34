"""Every study notebook, executed by the runner under papermill at the smoke profile, and its outputs."""
import json

import pandas as pd
import pytest

from saccadelib.study import runner as reproduce
from saccadelib.study.plan import EXPERIMENTS


pytestmark = pytest.mark.slow  # minutes: every notebook end to end


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    lines = []
    # the cell timeout guards against a hung kernel: 06's training cell takes 4-5 minutes on a slow 2-core machine
    outcomes = reproduce.reproduce("smoke", results_root=root / "results", runs_root=root / "runs",
                                   log=lines.append, cell_timeout_s=600)
    return root / "results", {o["name"]: o for o in outcomes}, lines


def test_every_notebook_runs_at_the_smoke_profile(smoke):
    results, outcomes, lines = smoke
    assert set(outcomes) == {e.name for e in EXPERIMENTS}
    failed = {name: o for name, o in outcomes.items() if o["status"] != "ok"}
    assert not failed, "\n".join(lines)
    for name in outcomes:
        record = json.loads((results / name / "run.json").read_text())
        assert record["status"] == "ok" and record["profile"] == "smoke"
        assert (results / name / f"{name}.ipynb").exists()


ALL_MODELS = {"saccade", "deterministic_glimpses", "random_glimpses", "grid_glimpses", "oracle_glimpses", "proxy_cnn",
        "resnet18", "ram"}


@pytest.mark.parametrize("name,models", [("01_two_digit_sum", ALL_MODELS), ("02_two_digit_identification_100", ALL_MODELS),
                                         ("02_two_digit_identification_2528", {"saccade", "random_glimpses"})])
def test_task_notebooks_write_their_tables_and_figures(smoke, name, models):
    results, _, _ = smoke
    out = results / name
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["label"]) == models
    assert runs["test_accuracy"].between(0, 1).all() and (runs["test_n"] == 200).all()
    assert runs["epochs_run"].eq(1).all() and runs["parameters"].gt(0).all()
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["label"]) == models
    # every run scored again by how much its digits overlap reads its test canvases as it did in training
    by_overlap = pd.read_csv(out / "by_digit_overlap.csv", dtype=str).set_index("label")
    assert (by_overlap["all canvases"] == summary.set_index("label")["test_exact_match_%"].astype(str)).all()
    for figure in ("curves.png", "saccade_curve.png", "saccades.png"):
        assert (out / figure).stat().st_size > 5000, figure
    executed = json.loads((out / f"{name}.ipynb").read_text())
    shown = [o for c in executed["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(shown) >= 3  # curves, per-glimpse curve, saccades: shown in the notebook, not only saved
    resolved = json.loads((out / "run.json").read_text())["resolved"]
    assert resolved["config"]["profile"] == "smoke" and resolved["datasets"]["test_sha256"]
    if name.endswith("2528"):
        assert resolved["config"]["image_side"] == 2528


def test_ablation_notebook_writes_figure5_and_its_views(smoke):
    results, _, _ = smoke
    out = results / "03_noisy_proxy_ablation"
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["label"]) == ["noise_0_keep_1", "noise_0.5_keep_1", "noise_0_keep_0.25"]
    assert runs["test_accuracy"].between(0, 1).all()
    for figure in ("figure5_noisy_proxy.png", "noise_view.png"):
        assert (out / figure).stat().st_size > 5000
    executed = (out / "03_noisy_proxy_ablation.ipynb").read_text()
    assert "model trained at σ=0" in executed  # the static view's printed marker


def test_fivek_notebook_runs_on_the_miniature_as_a_pipeline_check(smoke):
    results, _, _ = smoke
    out = results / "04_fivek"
    runs = pd.read_csv(out / "runs.csv")
    assert set(runs["label"]) == {"saccade", "resnet18_tiles"} and (runs["task"] == "fivek").all()
    assert runs["test_accuracy"].between(0, 1).all() and (runs["test_n"] == 6).all()  # one test photo per class
    for figure in ("curves.png", "saccades.png"):
        assert (out / figure).stat().st_size > 5000, figure
    assert "PIPELINE CHECK on synthetic photos" in (out / "04_fivek.ipynb").read_text()
    assert json.loads((out / "config.json").read_text())["pipeline_check_only"] is True
    table = pd.read_csv(results / "table1.csv")
    cells = table[table["column"] == "fivek"]
    assert len(cells) == 2 and cells["ours_%"].str.contains("pipeline check; no number").all()
    assert set(cells["paper_%"]) == {"62.7 ± 0.03", "63.6 ± 0.03"}


def test_efficiency_and_summary(smoke):
    results, _, _ = smoke
    bench = pd.read_csv(results / "05_efficiency" / "efficiency_cpu.csv")
    assert {"saccade", "tiles_naive", "tiles_checkpointed", "resnet18_whole"} <= set(bench["variant"])
    assert bench["error"].isna().all() and bench["median_s"].gt(0).all()
    table = pd.read_csv(results / "table1.csv")
    vs_sum = table[(table["system"] == "variational saccading (the paper's method)") & (table["column"] == "sum")].iloc[0]
    assert 0 <= float(vs_sum["ours_%"]) <= 100 and vs_sum["paper_%"] == "97.2 ± 0.04"
    assert vs_sum["budget"] == "smoke: 1 epoch of 256 on cpu"
    tiles = table[(table["system"] == "resnet18 - 144 crops") & (table["column"] == "identification")].iloc[0]
    assert tiles["ours_%"].startswith("not trained on CPU:") and "s per 128² image" in tiles["ours_%"]
    large = table[(table["image_size"] == "2528²") & (table["system"] == "variational saccading (the paper's method)")
                  & (table["column"] == "identification")].iloc[0]
    assert 0 <= float(large["ours_%"]) <= 100
    md = (results / "table1.md").read_text()
    assert "| variational saccading (the paper's method) |" in md and "95.23 ± 0.03" in md
    for figure in ("figure4_saccades.png", "figure5_noisy_proxy.png"):
        assert (results / figure).stat().st_size > 10000
    cost = (results / "profile_time.md").read_text()
    assert "| 01_two_digit_sum " in cost and "| total " in cost and "| 00_summary" not in cost


def test_a_second_run_skips_what_is_done(smoke, tmp_path):
    results, _, _ = smoke
    lines = []
    outcomes = reproduce.reproduce("smoke", only=["01_two_digit_sum", "00_summary"], results_root=results,
                                   runs_root=results.parent / "runs", log=lines.append)
    status = {o["name"]: o["status"] for o in outcomes}
    assert status == {"01_two_digit_sum": "skipped", "00_summary": "ok"}


def test_resolution_notebook_trains_every_model_on_both_data_sets_and_draws_the_sweep(smoke):
    results, _, _ = smoke
    out = results / "06_resolution"
    runs = pd.read_csv(out / "runs.csv")
    models = {"saccade_cells", "saccade", "random_glimpses", "salient_glimpses", "oracle_glimpses", "attention_sampling",
              "ips_small", "proxy_cnn"}  # IPS named after its encoder
    decoys = ("megapixel_blobs",)  # the smoke profile adds one decoy set; no proxy sweep there
    labels = {f"megapixel_{label}/{m}" for label in ("max", "top", "multi") for m in ("saccade_cells", "ips_small")}
    assert set(runs["label"]) == {f"{data}/{m}" for data in ("megapixel", "id1000", *decoys) for m in models} | \
        {"megapixel/proxy_cnn_32", "id1000/proxy_cnn_32"} | labels
    assert runs["test_accuracy"].between(0, 1).all() and (runs["test_n"] == 32).all()
    summary = pd.read_csv(out / "summary.csv").set_index("label")
    assert summary["canvases_seen"].gt(0).all()
    # each policy's windows on a digit and on a decoy: oracle windows sit on the digits
    assert summary.loc["megapixel_blobs/oracle_glimpses", "windows_on_digit_%"] == 100
    assert summary.loc["megapixel_blobs/oracle_glimpses", "windows_on_decoy_%"] == 0
    assert summary.loc[[f"{d}/{m}" for d in decoys for m in ("saccade_cells", "salient_glimpses", "ips_small")],
                       "windows_on_decoy_%"].between(0, 100).all()
    assert summary.loc["megapixel/saccade_cells", ["windows_on_decoy_%"]].isna().all()
    # the smoke profile measures the inference cost of two models per data set, from a PNG, in fresh processes
    costed = summary["infer_ms_per_image"].dropna()
    assert set(costed.index) == {f"{data}/{m}" for data in ("megapixel", "id1000") for m in ("saccade_cells", "proxy_cnn")}
    assert costed.gt(0).all() and summary.loc[costed.index, "work_mib"].gt(0).all()
    # what the learnt policy adds over its prior, per data set, with where each puts its windows
    prior = pd.read_csv(out / "policy_over_prior.csv").set_index("data set")
    assert list(prior.index) == ["megapixel", "id1000", "megapixel_blobs"]
    assert prior.loc["megapixel_blobs", ["learnt_on_decoy_%", "prior_on_decoy_%"]].between(0, 100).all()
    # the four labels IPS reports, ours and IPS's side by side
    four = pd.read_csv(out / "labels.csv").set_index("model")
    assert list(four.index) == ["saccade_cells", "ips_small"] and list(four.columns) == ["majority", "max", "top", "multi"]
    assert four.notna().all().all()
    for figure in ("proxy_sweep.png", "saccades_megapixel.png", "saccades_id1000.png", "saccades_megapixel_blobs.png"):
        assert (out / figure).stat().st_size > 5000, figure
