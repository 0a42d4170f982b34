import pytest
import torch

from saccadelib import registry
from saccadelib.baselines import (RAM, ProxyCNN, ProxyCNNConfig, RAMConfig, TiledResNet, TiledResNetConfig,
                                  WholeImageResNet, ResNetConfig, tile_starts, tile_windows)
from saccadelib.datasets.twodigit import make_two_digit
from saccadelib.model import ModelConfig, VariationalSaccading, grid_windows
from saccadelib.sources import TensorSource, UpsampledSource
from saccadelib.sampler import window_to_box
from saccadelib.train import fit
from saccadelib.train_config import TrainConfig


def test_paper_tiles_cover_2528_with_144_tiles_and_a_160_px_overlap():
    starts = tile_starts(2528, 224)
    assert starts == [i * 224 for i in range(11)] + [2304]
    assert starts[-2] + 224 - starts[-1] == 160
    boxes = window_to_box(tile_windows(2528, 224), 2528, 2528)
    assert boxes.shape == (144, 4)
    assert torch.allclose(boxes, boxes.round(), atol=1e-9)  # tiles sit on whole pixels
    covered = torch.zeros(2528, 2528, dtype=torch.int32)
    for x0, y0, x1, y1 in boxes.round().long().tolist():
        assert x1 - x0 == 224 and y1 - y0 == 224
        covered[y0:y1, x0:x1] += 1
    assert covered.min() == 1  # every pixel is seen
    assert covered.max() == 4  # only the overlap corner of the last row and column twice in each axis
    assert tile_starts(224, 224) == [0]
    with pytest.raises(ValueError, match="smaller than one"):
        tile_starts(100, 224)


def test_tiles_read_from_a_source_are_the_image_pixels():
    torch.manual_seed(0)
    image = torch.rand(2, 1, 80, 80)
    windows = tile_windows(80, 32).float()  # starts 0, 32, 48
    tiles = TensorSource(image).crop(windows.expand(2, -1, -1), 32, supersample=1)
    starts = tile_starts(80, 32)
    for k, (y, x) in enumerate([(y, x) for y in starts for x in starts]):
        assert torch.allclose(tiles[:, k], image[:, :, y:y + 32, x:x + 32], atol=1e-5)


def test_checkpointed_tiles_match_the_naive_forward_and_gradients():
    torch.manual_seed(0)
    base = torch.rand(3, 1, 20, 20)
    cfg = TiledResNetConfig(n_classes=7, tile=32, chunk_tiles=4, head_hidden=16)
    naive = TiledResNet(cfg)
    checked = TiledResNet(TiledResNetConfig(**{**cfg.to_dict(), "checkpoint": True}))
    checked.load_state_dict(naive.state_dict())
    label = torch.tensor([0, 3, 6])
    results = []
    for model in (naive, checked):
        logits = model(UpsampledSource(base, 80))
        torch.nn.functional.cross_entropy(logits, label).backward()
        results.append((logits, {k: p.grad for k, p in model.named_parameters()}))
    (a, grads_a), (b, grads_b) = results
    assert a.shape == (3, 7)
    assert torch.allclose(a, b, atol=1e-5)
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], atol=1e-5), name
    assert grads_a["trunk.conv1.weight"].abs().sum() > 0


def test_whole_image_and_proxy_baselines_take_one_channel_and_give_class_logits():
    torch.manual_seed(0)
    images = torch.rand(4, 1, 100, 100)
    assert WholeImageResNet(ResNetConfig(n_classes=19))(images).shape == (4, 19)
    proxy_model = ProxyCNN(ProxyCNNConfig(n_classes=55, width=8, features=32)).eval()
    assert proxy_model(images).shape == (4, 55)
    # A given (e.g. noisy) proxy replaces the one read from the images: the images are then not used.
    noisy = torch.rand(4, 1, 32, 32)
    assert torch.equal(proxy_model(images, proxy=noisy), proxy_model(torch.zeros(4, 1, 100, 100), proxy=noisy))
    with pytest.raises(ValueError, match=r"expected images \[N, 1, H, W\]"):
        WholeImageResNet(ResNetConfig())(torch.rand(4, 3, 100, 100))


def test_grid_policy_windows_tile_the_image_and_ignore_the_image():
    quadrants = window_to_box(grid_windows(4).double(), 100, 100)
    assert torch.allclose(quadrants, torch.tensor([[0, 0, 50, 50], [50, 0, 100, 50], [0, 50, 50, 100],
                                                   [50, 50, 100, 100]], dtype=torch.float64), atol=1e-4)
    model = VariationalSaccading(ModelConfig(n_classes=19, glimpses=4, policy="grid", hidden=16, proxy_features=16,
                                             crop_features=16, latent_features=8, width=8, rnn_layers=1)).eval()
    a, b = model(torch.rand(2, 1, 100, 100)).windows, model(torch.rand(3, 1, 100, 100)).windows
    assert torch.equal(a[0], b[2]) and torch.allclose(a[0], grid_windows(4))


def test_ram_policy_learns_from_reinforce_only():
    torch.manual_seed(0)
    model = RAM(RAMConfig(n_classes=19, glimpses=3, hidden=32, glimpse_features=16))
    batch = make_two_digit("sum", "train", 8, 0)
    out = model(batch["image"])
    assert out["logits"].shape == (8, 3, 19) and out["windows"].shape == (8, 3, 3)
    # the hit rate's window: the 24-px patch at the glimpse's location
    assert torch.allclose(out["windows"][..., 0], torch.full((8, 3), 0.24))
    assert torch.equal(out["windows"][..., 1:], out["location"])
    first = out["location"][:, 0]  # the first glimpse: anywhere on the image, a fresh draw in training
    assert first.abs().max() <= 1 and first.std() > 0.2 and not torch.equal(first, model(batch["image"])["location"][:, 0])
    assert out["location"].abs().max() <= 1
    centred = RAM(RAMConfig(n_classes=19, glimpses=2, hidden=32, glimpse_features=16, start="centre"))
    assert torch.equal(centred(batch["image"])["location"][:, 0], torch.zeros(8, 2))
    with pytest.raises(ValueError, match="start"):
        RAMConfig(start="corner")
    torch.nn.functional.cross_entropy(out["logits"][:, -1], batch["label"]).backward()
    assert model.locator.weight.grad is None or model.locator.weight.grad.abs().sum() == 0
    model.zero_grad()
    loss, parts = model.training_loss(batch)
    loss.backward()
    assert model.locator.weight.grad.abs().sum() > 0 and model.what[0].weight.grad.abs().sum() > 0
    assert {"nll_class", "reinforce", "baseline_mse", "reward"} <= set(parts)
    model.eval()
    a, b = model.evaluate_batch(batch), model.evaluate_batch(batch)
    assert torch.equal(a["windows"], b["windows"])  # evaluation: fixed first draws, then the policy's mean


def test_configs_round_trip_and_refuse_unknown_keys():
    from saccadelib.model import ModelConfig

    for cfg in (RAMConfig(n_classes=19, start="centre"), ModelConfig(glimpses=2), TiledResNetConfig(tile=64)):
        assert type(cfg).from_dict(cfg.to_dict()) == cfg
    saved = RAMConfig().to_dict()
    del saved["start"]  # a missing field takes today's default: no compatibility layer
    assert RAMConfig.from_dict(saved).start == RAMConfig().start
    with pytest.raises(ValueError, match="unknown setting 'fovea'"):
        RAMConfig.from_dict({**RAMConfig().to_dict(), "fovea": 3})


@pytest.mark.parametrize("name", ["resnet18", "proxy_cnn", "ram"])
def test_baselines_fit_one_batch(name):
    torch.manual_seed(0)
    # RAM sees the batch through small, noisily placed glimpses, so it is asked for less in the same budget.
    small, steps, ratio = {"resnet18": ({}, 25, 0.3), "proxy_cnn": ({"width": 8}, 40, 0.3),
                           "ram": ({"hidden": 64}, 120, 0.5)}[name]
    cfg = registry.config_for(name, 19)
    model = registry.build(name, cfg.from_dict({**cfg.to_dict(), **small}))
    batch = make_two_digit("sum", "train", 12, 1)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(steps):
        loss, parts = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first or parts["nll_class"]
    assert parts["nll_class"] < ratio * first


def test_registry_builds_every_model_and_the_shared_loop_trains_it(tmp_path, mnist_root):
    small = {"saccade": dict(hidden=16, proxy_features=16, crop_features=16, latent_features=8, width=8,
                             rnn_layers=1, glimpses=2),
             "resnet18_tiles": dict(tile=64), "proxy_cnn": dict(width=8), "ram": dict(hidden=16),
             "resnet18_downsampled": dict(input_side=64)}
    for name in ("saccade_cells", "random_glimpses", "grid_glimpses", "oracle_glimpses", "deterministic_glimpses",
                 "salient_glimpses"):
        small[name] = small["saccade"]
    small["attention_sampling"] = {"view_size": 24, "patch_size": 16, "patch_scale": 0.3}
    small["ips"] = {"encoder": "small", "patch": 20, "memory": 8, "iteration": 8, "dim": 16, "heads": 2}
    run = TrainConfig(task="sum", epochs=1, train_size=32, batch_size=16, val_size=32, eval_batch_size=32,
                      progress="none", test=False)
    assert set(registry.REGISTRY) == {"saccade", "saccade_cells", "random_glimpses", "grid_glimpses", "oracle_glimpses",
                                       "deterministic_glimpses", "resnet18", "resnet18_downsampled",
                                       "resnet18_tiles", "proxy_cnn", "ram", "salient_glimpses",
                                       "attention_sampling", "ips"}
    for name in registry.REGISTRY:
        cfg = registry.config_for(name, 19)
        model = registry.build(name, cfg.to_dict() | small.get(name, {}))
        summary = fit(model, run, tmp_path / name, {"name": name})
        assert summary["epochs_run"] == 1 and 0 <= summary["best_val_accuracy"] <= 1
    assert registry.config_for("random_glimpses", 55).policy == "random"
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        registry.spec("vgg")


def test_the_two_methods_have_two_names_and_no_setting_turns_one_into_the_other():
    paper, cells = registry.config_for("saccade", 10), registry.config_for("saccade_cells", 10)
    assert paper.posterior_head == "pooled" and cells.posterior_head == "cells"
    # the variant starts from its own settings, which --set may change, but not into the paper's posterior
    assert (cells.glimpses, cells.proxy_size, cells.cell_gradient, cells.loss.cell_kl_weight) == (6, 128, "reinforce", 0.01)
    assert registry.config_for("saccade_cells", 10, {"glimpses": 3}).glimpses == 3
    assert registry.config_for("saccade_cells", 10, {"posterior_head": "pooled"}).posterior_head == "cells"
    assert registry.config_for("saccade", 10, {"posterior_head": "map"}).posterior_head == "map"
    with pytest.raises(ValueError, match="use --model saccade_cells"):
        registry.config_for("saccade", 10, {"posterior_head": "cells"})


def test_cost_is_measured_in_a_fresh_process(mnist_root):
    from saccadelib.bench import cost

    row = cost.measure({"model": "resnet18_tiles", "config": {"checkpoint": True, "tile": 64}, "side": 128,
                        "batch": 2, "phase": "train", "repeats": 1, "threads": 1})
    assert row["parameters"] > 11_000_000 and row["threads"] == 1  # ResNet-18 trunk + head
    assert row["median_s"] > 0 and row["peak_rss_mib"] >= row["idle_rss_mib"] > 0
    with pytest.raises(RuntimeError, match="failed"):
        cost.measure({"model": "vgg", "side": 128, "batch": 1, "phase": "infer"})


def test_downsampled_resnet_reads_the_anti_aliased_downsample_of_a_lazy_image():
    torch.manual_seed(0)
    base = torch.rand(2, 1, 20, 20)
    model = WholeImageResNet(ResNetConfig(n_classes=5, input_side=64)).eval()
    source = UpsampledSource(base, 4000)  # never materialized: 4000² would be 128 MB per image
    seen = []
    handle = model.trunk.conv1.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    logits = model(source)
    handle.remove()
    assert logits.shape == (2, 5) and seen == [(2, 1, 64, 64)]
    assert torch.allclose(logits, model(source.proxy(64)), atol=1e-5)
    with pytest.raises(ValueError, match="input_side"):
        ResNetConfig(input_side=8)


def test_attention_sampling_estimate_and_its_gradient_are_unbiased():
    from saccadelib.model import sampled_means

    torch.manual_seed(0)
    scores = torch.randn(1, 6, requires_grad=True)
    f = torch.randn(6, 2)  # a fixed feature per position
    exact = (scores.softmax(-1) @ f)[0]
    exact_grad, = torch.autograd.grad(exact.sum(), scores)
    draws = 20_000
    a = scores.softmax(-1).expand(draws, 6)
    gumbel = -torch.log(-torch.log(torch.rand(draws, 6).clamp(1e-10, 1 - 1e-7)))
    chosen = (a.detach().log() + gumbel).topk(3, -1).indices  # without replacement, in draw order
    estimate = sampled_means(a.gather(1, chosen), f[chosen])  # [draws, 3, 2]
    for k in range(3):  # after 1, 2 and 3 draws
        assert torch.allclose(estimate[:, k].mean(0), exact, atol=0.03)
    grad, = torch.autograd.grad(estimate[:, -1].sum(-1).mean(), scores)
    assert torch.allclose(grad, exact_grad, atol=0.03)
    # a distribution with all its mass on one position: every estimate is that position's feature
    point = torch.tensor([[1e-7, 1 - 2e-7, 1e-7]])
    assert torch.allclose(sampled_means(point.gather(1, torch.tensor([[1, 0]])), f[[1, 0]].unsqueeze(0))[0], f[1].expand(2, 2),
                          atol=1e-5)


def test_attention_sampling_trains_and_reports_its_patches():
    from saccadelib.baselines import AttentionSampling, AttentionSamplingConfig

    torch.manual_seed(0)
    model = AttentionSampling(AttentionSamplingConfig(n_classes=19, view_size=24, patches=4, patch_scale=0.3,
                                                      patch_size=24))
    batch = make_two_digit("sum", "train", 8, 0)
    loss, parts = model.training_loss(batch)
    loss.backward()
    assert model.attention[0].weight.grad.abs().sum() > 0 and "attention_entropy" in parts
    model.eval()
    first, second = model.evaluate_batch(batch), model.evaluate_batch(batch)
    assert torch.equal(first["logits"], second["logits"])  # evaluation draws from a fixed seed
    assert first["windows"].shape == (8, 4, 3) and torch.all(first["windows"][..., 0] == 0.3)


def test_ram_options_train_every_step_reward_the_likelihood_and_keep_old_runs_names():
    from saccadelib.baselines import RAM, RAMConfig
    from saccadelib.settings import model_identity

    images, label = torch.rand(4, 1, 32, 32), torch.tensor([0, 1, 2, 0])
    batch = {"image": images, "label": label}
    torch.manual_seed(0)
    plain = RAM(RAMConfig(n_classes=3, glimpses=3))
    torch.manual_seed(0)
    every = RAM(RAMConfig(n_classes=3, glimpses=3, step_loss=True, reward="likelihood", policy_trains_core=True))
    _, parts = plain.training_loss(batch)
    _, parts_every = every.training_loss(batch)
    assert parts["reward"] in (0.0, 0.25, 0.5, 0.75, 1.0)  # right or wrong per canvas
    assert 0 < parts_every["reward"] < 1 and parts_every["reward"] not in (0.25, 0.5, 0.75)  # a probability
    assert parts_every["nll_class"] != pytest.approx(parts["nll_class"])  # the mean over steps, not the last
    grads = []
    for trains_core in (False, True):  # the same weights and draws: only where REINFORCE's gradient goes differs
        torch.manual_seed(0)
        model = RAM(RAMConfig(n_classes=3, glimpses=3, policy_trains_core=trains_core))
        torch.manual_seed(1)
        model.training_loss(batch)[0].backward()
        grads.append(model.core.weight_hh.grad.clone())
    assert not torch.allclose(grads[0], grads[1])
    meta = {"name": "ram", "config": RAMConfig(n_classes=3).to_dict()}
    assert set(model_identity(meta)["config"]) == set(RAMConfig.__dataclass_fields__) - {
        "reward", "step_loss", "policy_trains_core", "retina"}
    with pytest.raises(ValueError, match="reward"):
        RAMConfig(reward="accuracy")


def test_ram_pyramid_retina_reads_each_scale_from_a_box_filtered_level_close_to_the_supersampled_patch():
    # a canvas of blurred strokes, as MNIST's digits are; a retina reaching the whole canvas (16 to 128 px)
    torch.manual_seed(0)
    strokes = (torch.rand(8, 1, 100, 100) > 0.97).float()
    images = torch.nn.functional.avg_pool2d(strokes, 5, stride=1, padding=2).clamp(0, 1)
    source = TensorSource(images)
    kinds = {kind: RAM(RAMConfig(n_classes=3, patch=16, patch_fraction=0.16, scales=4, retina=kind))
             for kind in ("supersample", "pyramid")}
    levels = kinds["pyramid"].retina_levels(source)
    # scales of 16, 32, 64, 128 px at 16²: read from the image at 100, 100, 50 and 25 px (2-4 samples a pixel)
    assert [tuple(level.images.shape[-2:]) for level in levels] == [(100, 100), (100, 100), (50, 50), (25, 25)]
    assert levels[0] is source and float(levels[2].images.mean()) == pytest.approx(float(images.mean()), rel=1e-5)  # boxes keep ink
    location = torch.rand(8, 2) * 1.6 - 0.8
    patches = {kind: model.retina(model.retina_levels(source), location).view(8, 4, 256) for kind, model in kinds.items()}
    difference = (patches["pyramid"] - patches["supersample"]).abs().mean((0, 2))
    assert (difference / patches["supersample"].abs().mean((0, 2)) < 0.2).all()
    assert [level is source for level in kinds["supersample"].retina_levels(source)] == [True]
    with pytest.raises(ValueError, match="retina"):
        RAMConfig(retina="nearest")


def test_the_study_trains_ram_with_its_probes_strongest_settings_and_other_baselines_at_their_defaults():
    settings = registry.task_settings("identification", "ram")
    cfg = RAMConfig.from_dict(settings)
    assert (cfg.scales, cfg.patch, cfg.retina, cfg.reward, cfg.step_loss, cfg.glimpses) == (
        4, 16, "pyramid", "likelihood", True, 8)
    assert cfg.patch_fraction * 2 ** (cfg.scales - 1) >= 1.0  # the coarsest scale sees the whole canvas
    assert RAMConfig() != cfg  # RAM's own settings stay its defaults (`train --model ram`)
    assert registry.task_settings("sum", "proxy_cnn") == {}
