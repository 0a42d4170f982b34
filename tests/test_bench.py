"""The efficiency benchmark: its report logic (on synthetic rows), and a small real run in fresh processes."""
import csv
import json
import statistics

import numpy as np
import pytest
import torch

from saccadelib.bench import cost, efficiency


def _fake_row(spec, case, seconds, mib):
    return {**{k: v for k, v in spec.items() if k != "cases"}, **case, "median_s": seconds,
            "per_image_s": seconds / case["batch"], "images_per_s": case["batch"] / seconds, "times_s": [seconds],
            "parameters": 1000, "macs_per_image": 1e9 if case["phase"] == "infer" else None, "threads": 1,
            "base_rss_mib": 100.0, "idle_rss_mib": 110.0, "peak_rss_mib": 100.0 + mib, "dtype": "float32"}


def test_report_has_ratios_memory_growth_and_failures(tmp_path, monkeypatch, mnist_root):
    costs = {"saccade": (0.01, 50.0), "tiles_naive": (2.0, 3000.0), "tiles_chunked": (1.5, 400.0),
             "tiles_checkpointed": (3.0, 600.0), "resnet18_whole": (1.0, 1000.0),
             "resnet18_downsampled": (0.02, 80.0), "proxy_cnn": (0.001, 10.0)}

    def fake_measure(spec, timeout_s=None):
        if spec["variant"] == "resnet18_whole" and spec["phase"] == "train":
            raise RuntimeError("cost measurement failed:\nRuntimeError: out of memory")
        seconds, mib = costs[spec["variant"]]
        grow = 1.0 if spec["variant"] in ("saccade", "resnet18_downsampled", "proxy_cnn") else (spec["side"] / 128) ** 2
        return _fake_row(spec, {"phase": spec["phase"], "batch": spec["batch"]}, seconds * grow, mib * grow)

    monkeypatch.setattr(cost, "measure", fake_measure)
    accuracy_file = tmp_path / "tta.json"
    accuracy_file.write_text(json.dumps({"rows": [
        {"case": "identification_2528", "seed": 0, "test_accuracy": 0.86, "minutes": 29.0},
        {"case": "identification_2528_proxy_cnn", "seed": 0, "test_accuracy": 0.80, "minutes": 30.0}]}))
    result = efficiency.run("cpu", sides=(128, 256), threads=1, repeats=1, out_dir=tmp_path, quick=True,
                            accuracy_file=accuracy_file, log=lambda s: None)
    rows = list(csv.DictReader(open(tmp_path / "efficiency_cpu.csv")))
    assert len(rows) == len(result["rows"]) == len(efficiency.plan("cpu", (128, 256), quick=True))
    failed = [r for r in rows if r["error"]]
    assert [(r["variant"], r["phase"]) for r in failed] == [("resnet18_whole", "train")]
    assert "out of memory" in failed[0]["error"]
    ratios = {(q["baseline"], q["source"], q["side"], q["phase"]): q for q in efficiency.ratios(result["rows"])}
    q = ratios[("tiles_naive", "lazy", 128, "infer")]
    assert q["time_ratio"] == pytest.approx(200) and q["memory_ratio"] == pytest.approx(60)
    assert q["peak_ratio"] == pytest.approx(3100 / 150)  # the bare process (100 MiB) counted on both sides
    strongest = ratios[("tiles (strongest)", "lazy", 128, "infer")]  # the chunked tiles: faster and leaner
    assert strongest["time_ratio"] == pytest.approx(150) and strongest["memory_ratio"] == pytest.approx(8)
    trained = ratios[("tiles (strongest)", "lazy", 128, "train")]  # naive is faster, checkpointed leaner
    assert (trained["timed_variant"], trained["weighed_variant"]) == ("tiles_naive", "tiles_checkpointed")
    assert ("resnet18_whole", "lazy", 128, "train") not in ratios  # a failed row gives no ratio
    growth = {(g["source"], g["phase"], g["batch"]): g for g in efficiency.memory_growth(result["rows"])}
    assert growth[("lazy", "infer", 1)]["growth"] == pytest.approx(0.0)
    text = (tmp_path / "efficiency_cpu.md").read_text()
    assert "| tiles_naive | lazy | 128 | infer | 1 | 200 | 60.0 | 20.67 |" in text and "failed: " in text
    beside = text.split("## Cost beside accuracy")[1]
    assert "| saccade | 86.0% | 29 | 10.0 |" in beside and "| proxy_cnn | 80.0% | 30 | 1.0 |" in beside
    assert "resnet18_downsampled" not in beside.split("\n\n")[1]  # no accuracy measured for it: no row
    assert (tmp_path / "latency_cpu.png").stat().st_size > 0 and (tmp_path / "memory_cpu.png").stat().st_size > 0
    assert json.loads((tmp_path / "efficiency_cpu.json").read_text())["device_tag"] == "cpu"


def test_gpu_plan_groups_cases_per_process_and_cpu_plan_does_not():
    for spec in efficiency.plan("cuda"):
        assert spec["cases"] and spec["device"] == "cuda"
    for spec in efficiency.plan("cpu"):
        assert "cases" not in spec and {"phase", "batch"} <= set(spec)  # peak RSS only grows: one case each
    sides = {s["side"] for s in efficiency.plan("cpu") if s["variant"] == "saccade"}
    assert sides == set(efficiency.SIDES)


def test_our_row_takes_the_median_time_and_the_median_peak_of_its_processes():
    from saccadelib.bench.efficiency import median_of_processes

    runs = [{"batch": 16, "median_s": 0.067, "peak_rss_mib": 700.0},  # slow process, median memory
            {"batch": 16, "median_s": 0.046, "peak_rss_mib": 690.0},
            {"batch": 16, "median_s": 0.059, "peak_rss_mib": 715.0}]
    row = median_of_processes(runs)
    assert row["peak_rss_mib"] == 700.0 and row["median_s"] == 0.059  # not the 0.067 of the median-memory process
    assert row["per_image_s"] == 0.059 / 16 and row["images_per_s"] == 16 / 0.059
    assert row["median_s_runs"] == [0.067, 0.046, 0.059] and row["peak_rss_runs_mib"] == [690.0, 700.0, 715.0]


def test_file_source_and_lazy_source_are_measured_in_fresh_processes(tmp_path, mnist_root):
    jpeg = efficiency.write_test_jpeg(tmp_path / "canvas_512.jpg", 512)
    common = {"model": "saccade", "config": {"glimpses": 2, "crop_size": 32}, "side": 512, "repeats": 2,
              "threads": 1, "macs": True}
    from_file = cost.measure({**common, "source": "file", "file": str(jpeg), "phase": "infer", "batch": 1})
    lazy = cost.measure({**common, "source": "lazy", "cases": [{"phase": "infer", "batch": 1},
                                                               {"phase": "train", "batch": 2}]})
    assert from_file["median_s"] > 0 and from_file["macs_per_image"] > 0
    assert from_file["peak_rss_mib"] >= from_file["idle_rss_mib"] >= from_file["base_rss_mib"] > 0
    infer, train = lazy["rows"]
    assert (infer["phase"], train["phase"], train["batch"]) == ("infer", "train", 2)
    # the crops' bilinear matrices are counted too, so the two sources' MACs differ only a little
    assert infer["macs_per_image"] == pytest.approx(from_file["macs_per_image"], rel=0.2)


def test_photo_profile_splits_the_end_to_end_time(tmp_path):
    photo = efficiency.write_test_photo(tmp_path / "photo.jpg", size=(1200, 900))
    profile = efficiency.photo_profile(photo, repeats=1, threads=1)
    steps = profile["median_s"]
    parts = ("open_and_verify", "proxy_decode", "crops_decode", "networks")
    assert all(steps[k] > 0 for k in parts)
    assert steps["end_to_end"] == pytest.approx(sum(steps[k] for k in parts))
    assert profile["size"] == [1200, 900] and 0 < profile["crop_decode_size"][0] <= 1200


def test_a_large_parent_does_not_inflate_the_measured_peak(mnist_root):
    # getrusage's ru_maxrss would report the parent's high-water mark in a vfork/exec'd child
    ballast = torch.ones(768 * 2**20 // 4)  # 768 MiB resident in this (the parent) process
    row = cost.measure({"model": "proxy_cnn", "side": 128, "batch": 1, "phase": "infer", "repeats": 1, "threads": 1})
    assert ballast.sum() > 0
    assert row["peak_rss_mib"] - row["base_rss_mib"] < 300


def test_throughput_benchmark_times_our_model_beside_the_proxy_cnn(tmp_path, mnist_root):
    from saccadelib.bench import throughput

    cases = ["ours, sum 100²", "proxy CNN, sum 100²"]
    variants = {"default": {}, "nhwc": {"channels_last": True}}
    result = throughput.run(threads=1, repeats=2, steps=1, batch_size=16, eval_batch_size=50, eval_batches=1,
                            cases=cases, variants=variants, out=tmp_path / "throughput.json", log=lambda _: None)
    saved = json.loads((tmp_path / "throughput.json").read_text())
    assert [(r["case"], r["variant"]) for r in saved["rows"]] == [(c, v) for c in cases for v in variants]
    assert saved["repeats"] == 2 and "git_commit" in saved and saved["rows"][1]["execution"] == {"channels_last": True}
    for row in saved["rows"]:
        assert len(row["train_rates"]) == 2
        assert row["train_canvases_per_s"] == pytest.approx(statistics.median(row["train_rates"]), abs=0.1)
    rows = {(r["case"], r["variant"]): r for r in saved["rows"]}
    table = (tmp_path / "throughput.md").read_text()
    for variant in variants:  # each ratio against the proxy CNN under the same execution
        ours, proxy = rows["ours, sum 100²", variant], rows["proxy CNN, sum 100²", variant]
        ratio = f"{ours['train_canvases_per_s'] / proxy['train_canvases_per_s']:.2f}"
        assert f"| ours, sum 100² | {variant} | {ours['train_canvases_per_s']:.0f} |  | {ratio} |" in table
    assert result["out"] == str(tmp_path / "throughput.json")
    with pytest.raises(ValueError, match="unknown throughput case"):
        throughput.run(cases=["ours, mnist"], out=tmp_path / "x.json")


def test_time_to_accuracy_sizes_runs_by_the_budget_and_reads_finished_runs_back(tmp_path, monkeypatch):
    from saccadelib import train
    from saccadelib.study import time_to_accuracy

    calls = []

    def fake_train(name, task, out_dir, model_settings, train_settings):
        calls.append((name, task, train_settings))
        out_dir.mkdir(parents=True)
        seed = train_settings["seed"]
        metrics = {"epochs_run": train_settings["epochs"], "best_epoch": 3, "train_s": 500.0, "val_s": 40.0,
                   "best_val_accuracy": 0.9, "test": {"accuracy": 0.88 + 0.04 * seed}, "run": {"device": "cpu"}}
        (out_dir / "metrics.json").write_text(json.dumps(metrics))
        return metrics

    monkeypatch.setattr(train, "train_model", fake_train)
    out = tmp_path / "tta.json"
    result = time_to_accuracy.run(["identification_100"], seeds=(0, 1), out=out, out_root=tmp_path / "runs")
    rows = result["rows"]
    assert [r["seed"] for r in rows] == [0, 1] and [r["met"] for r in rows] == [False, True]  # target 90%
    settings = calls[0][2]
    assert settings["lr_schedule"] == "cosine" and settings["epochs"] >= 1 and rows[0]["minutes"] == 9.0
    assert rows[0]["canvases_seen"] == settings["epochs"] * settings["train_size"]
    assert rows[0]["model_settings"]["classifier_reads"] == "crops"  # the task's recipe
    text = out.with_suffix(".md").read_text()
    assert "90.0% ± 2.8" in text and "| no |" in text  # mean ± std over seeds; not all seeds met the target
    time_to_accuracy.run(["identification_100"], seeds=(0, 1), out=out, out_root=tmp_path / "runs")
    assert len(calls) == 2  # finished runs are read back, not retrained
    time_to_accuracy.run(["sum_100"], out=out, out_root=tmp_path / "runs")  # a subset adds to the table
    saved = json.loads(out.read_text())["rows"]
    assert [(r["case"], r["seed"]) for r in saved] == [("identification_100", 0), ("identification_100", 1),
                                                       ("sum_100", 0)]
    # bf16 trains in bf16 the epochs its measured speed pays for within the same 15 minutes
    time_to_accuracy.run(["identification_100_15min", "identification_100_15min_bf16"], out=out,
                         out_root=tmp_path / "runs")
    fp32, bf16 = calls[-2][2], calls[-1][2]
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    assert bf16["epochs"] == round(fp32["epochs"] * 911 / 757) > fp32["epochs"]
    table = out.with_suffix(".md").read_text()
    assert "| identification_100_15min_bf16 | saccade | ×2 | last | bf16 | 15 | 90% |" in table  # the recipe's loss
    time_to_accuracy.run(["identification_100_15min"], out=out, out_root=tmp_path / "runs")
    recorded = json.loads(out.read_text())["rows"]
    recorded[-1]["model_settings"]["loss.every_step"] = True  # a row measured with every glimpse's loss says so
    assert "| identification_100_15min | saccade | ×2 | every glimpse | fp32 |" in time_to_accuracy.markdown(
        {"rows": recorded})
    with pytest.raises(ValueError, match="unknown time-to-accuracy case"):
        time_to_accuracy.run(["identification_64"], out=out)
    # a Megapixel case trains as 06 trains the model there, with the vote of 48² crops and its own budget
    from saccadelib import study
    time_to_accuracy.run(["megapixel_cells_30min"], out=out, out_root=tmp_path / "runs")
    name, task, megapixel = calls[-1]
    assert (name, task) == ("saccade_cells", "megapixel_majority")
    sixth = {s.label: s for s in study.resolution_runs(study.resolution_study("cpu"))}["megapixel/saccade_cells"]
    assert (megapixel["train_size"], megapixel["seed"]) == (5_000, 0)
    assert megapixel["val_size"] == sixth.train_overrides["val_size"]  # 06's validation
    assert megapixel["epochs"] > sixth.train_overrides["epochs"]  # 30 minutes against 06's 7
    row = json.loads(out.read_text())["rows"][-1]
    assert row["model_settings"]["posterior_head"] == "cells" and row["model_settings"]["crop_size"] == 48
    assert row["model_settings"]["classifier_pool"] == "vote" and row["target"] == 0.99


def test_predict_benchmark_splits_each_files_time_in_a_fresh_process(tmp_path):
    from saccadelib.bench import predict as bench_predict

    jpeg = bench_predict.write_photo(tmp_path, "jpeg", (900, 600))
    png = bench_predict.write_photo(tmp_path, "png", (900, 600))
    for path in (jpeg, png):
        result = bench_predict.measure(path, "narrow", repeats=1, threads=1)
        steps = result["median_s"]
        assert all(steps[k] >= 0 for k in bench_predict.STAGES) and steps["decode"] > 0
        parts = sum(steps[k] for k in ("open", "decode", "proxy", "crops", "networks"))
        assert steps["end_to_end"] == pytest.approx(parts)
        assert result["work_mib"] >= 0 and len(result["boxes"]) == 4
        widths = [box[2] - box[0] for box in result["boxes"]]
        assert all(w < 0.11 * 900 for w in widths)  # narrow windows: at most 10% of the side
    markdown = bench_predict.markdown({"rows": [{"windows": "narrow", "format": "PNG", "width": 900, "height": 600,
                                                 "file_mib": 0.5, **result, "full_decode_for_reference_s": 0.01}],
                                       "threads": 1, "repeats": 1, "wall_s": 1.0, "model": {"glimpses": 4, "crop_size": 64},
                                       "run": {"git_commit": "abc", "device_name": "CPU"}})
    assert "| narrow | PNG | 900 × 600 |" in markdown


def test_the_cost_of_any_tasks_image_file_is_measured(tmp_path):
    from PIL import Image

    png = tmp_path / "canvas.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300), dtype=np.uint8)).save(png)
    row = cost.measure({"model": "resnet18_downsampled", "config": {"input_side": 64}, "task": "megapixel_majority",
                        "side": 300, "source": "file", "file": str(png), "phase": "infer", "batch": 1,
                        "repeats": 1, "threads": 1, "min_time_s": 1.0})
    assert row["median_s"] > 0 and row["task"] == "megapixel_majority"
    # a fast case (about 10 ms alone, a few hundred on a loaded machine) is timed for at least min_time_s:
    # more runs than the one asked for, their median reported
    assert row["timed_runs"] > 1 and row["timed_runs"] * row["median_s"] < 5.0
    assert row["quartiles_s"][0] <= row["median_s"] <= row["quartiles_s"][2]
