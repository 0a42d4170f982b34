"""06's runs: which models train on which Megapixel and native-size tasks, with which settings."""
import pytest

from saccadelib import study


def test_resolution_runs_cover_both_data_sets_and_wait_for_their_calibration(monkeypatch):
    from saccadelib.study import plan

    config = study.resolution_study("smoke")
    specs = study.resolution_runs(config)
    by_label = {s.label: s for s in specs}
    assert {"megapixel/saccade_cells", "megapixel/saccade", "megapixel/proxy_cnn", "megapixel/proxy_cnn_32",
            "id1000/oracle_glimpses"} <= set(by_label)
    saccade = by_label["megapixel/saccade_cells"]
    assert saccade.model == "saccade_cells" and saccade.model_overrides["proxy_size"] == 128
    assert saccade.model_overrides["cell_gradient"] == "reinforce"
    # the paper's method at the same window sizes: a Gaussian posterior, no cells
    paper, _, _ = by_label["megapixel/saccade"].resolved()
    assert paper.posterior_head == "pooled" and paper.proxy_size == 128 and paper.window.max_scale == 0.1
    assert by_label["megapixel/random_glimpses"].model_overrides["posterior_head"] == "cells"  # the cells' classifier
    assert by_label["megapixel/proxy_cnn"].model_overrides == {"proxy_size": 128}  # our proxy side
    # the Megapixel oracle looks once at each of the five digits; on two-digit canvases it revisits them
    assert by_label["megapixel/oracle_glimpses"].model_overrides["glimpses"] == 5
    assert by_label["id1000/oracle_glimpses"].model_overrides["glimpses"] == saccade.model_overrides["glimpses"] == 6
    assert by_label["id1000/saccade_cells"].train_overrides["canvas_side"] == 1000
    assert by_label["megapixel/attention_sampling"].model_overrides == {"view_size": 180, "patch_scale": 50 / 1500}
    assert by_label["id1000/attention_sampling"].model_overrides["view_size"] == 120
    # the other Megapixel labels: the label models alone, one seed, on the plain set, each its own run label
    labelled = [s for s in specs if s.task in ("megapixel_max", "megapixel_top", "megapixel_multi")]
    assert sorted(s.label for s in labelled) == sorted(f"megapixel_{label}/{m}" for label in ("max", "top", "multi")
                                                       for m in ("saccade_cells", "ips_small"))
    assert by_label["megapixel_multi/ips_small"].train_overrides["data_root"] == config.data_root
    # IPS is named after its encoder, the small one on our cores
    assert by_label["megapixel/ips_small"].model == "ips"
    assert by_label["megapixel/ips_small"].model_overrides == {"encoder": "small"}
    paper_encoder = study.resolution_runs(study.resolution_study("smoke", ips_encoder="resnet18_2stages"))
    assert {s.model_overrides["encoder"] for s in paper_encoder if s.label == "megapixel/ips_resnet18_2stages"} == \
        {"resnet18_2stages"}
    with pytest.raises(ValueError, match="unknown IPS encoder 'big' in ips_encoder; valid: resnet18_2stages, small"):
        study.resolution_study("smoke", ips_encoder="big")
    assert by_label["megapixel_top/saccade_cells"].model_overrides == saccade.model_overrides
    # the majority reader (a vote of 48² crops) goes on every glimpse model of a majority label alone, and
    # builds a model that reads that way; max, top, multi-label and identification keep the recipe's reader
    voting = {s.label: s for s in study.resolution_runs(study.resolution_study(
        "smoke", majority_reader={"crop_size": 48, "crop_fold": 3, "classifier_pool": "vote"}))}
    for label in ("megapixel/saccade_cells", "megapixel/saccade", "megapixel/oracle_glimpses",
                  "megapixel_blobs/salient_glimpses"):
        model_config, _, _ = voting[label].resolved()
        assert (model_config.classifier_pool, model_config.crop_size) == ("vote", 48), label
    for label in ("megapixel_max/saccade_cells", "megapixel_top/saccade_cells", "id1000/saccade_cells",
                  "megapixel/proxy_cnn", "megapixel/ips_small"):
        assert voting[label].model_overrides == by_label[label].model_overrides, label
    with pytest.raises(ValueError, match="unknown Megapixel MNIST label 'majority'.*valid: max, top, multi"):
        study.resolution_study("smoke", labels=("majority",))
    # a task may train its own models (task_models), the others the study's
    own = study.resolution_runs(study.resolution_study(
        "smoke", task_models={"megapixel_blobs_majority": ("saccade_cells", "salient_glimpses")}))
    assert sorted(s.label for s in own if s.task == "megapixel_blobs_majority") == \
        ["megapixel_blobs/saccade_cells", "megapixel_blobs/salient_glimpses"]
    assert {s.label for s in own if s.task == "megapixel_majority"} == \
        {s.label for s in specs if s.task == "megapixel_majority"}
    with pytest.raises(ValueError, match="task_models names 'sum', which is not one of the study's tasks"):
        study.resolution_study("smoke", task_models={"sum": ("saccade_cells",)})
    with pytest.raises(ValueError, match="unknown model 'cells'"):
        study.resolution_study("smoke", task_models={"identification": ("cells",)})
    # a model may train on smaller epochs (model_train): its runs alone, on every data set and label
    small = study.resolution_study("smoke", model_train={"ips": {"train_size": 16}})
    sizes = {s.label: s.train_overrides["train_size"] for s in study.resolution_runs(small)}
    assert sizes["megapixel/ips_small"] == sizes["megapixel_max/ips_small"] == sizes["id1000/ips_small"] == 16
    assert sizes["megapixel/saccade_cells"] == config.training.config().train_size != 16
    assert study.canvases_per_epoch(small, "identification", "ips") == 16
    assert study.canvases_per_epoch(small, "identification", "saccade_cells") == config.training.config().train_size
    with pytest.raises(ValueError, match="train_sizes"):
        study.resolution_study("smoke", model_train={"ips": {"train_sizes": 16}})
    # at the cpu profile 06 is skipped, naming the command, until every run has a measured epoch time
    entries = study.experiments.resolution_entries(study.resolution_study("cpu"))
    monkeypatch.setattr(plan, "EPOCH_SECONDS", {(t, side, name): 100.0 for t, side, name, _, _ in entries[1:]})
    assert "epoch_seconds.py --sides 1500 1000" in plan.resolution_calibrated("cpu")
    monkeypatch.setattr(plan, "EPOCH_SECONDS", {(t, side, name): 100.0 for t, side, name, _, _ in entries})
    assert plan.resolution_calibrated("cpu") is None
