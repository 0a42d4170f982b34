import dataclasses

import pytest
import torch

from saccadelib.datasets.twodigit import make_two_digit
from saccadelib.loss import LossConfig
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.sources import TensorSource, UpsampledSource
from saccadelib.sampler import WindowConfig

TINY = dict(hidden=32, proxy_features=32, crop_features=32, latent_features=16, width=8, rnn_layers=1)


def test_output_shapes():
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=19, glimpses=3, crop_size=16, **TINY)
    model = VariationalSaccading(cfg)
    out = model(torch.rand(5, 1, 100, 100))
    assert out.logits.shape == (5, 19) and out.step_logits.shape == (5, 3, 19)
    assert torch.equal(out.logits, out.step_logits[:, -1])
    assert out.windows.shape == out.z.shape == out.q_mu.shape == out.p_logvar.shape == (5, 3, 3)
    assert out.proxy.shape == (5, 1, 32, 32) and out.proxy_logits.shape == (5, 3, 1, 32, 32)
    assert out.crops.shape == (5, 3, 1, 16, 16)


def test_initial_windows_follow_init_scale_and_eval_is_deterministic():
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(init_scale=0.5, window=WindowConfig(min_scale=0.2, max_scale=1.0), **TINY)).eval()
    images = torch.rand(4, 1, 100, 100)
    a, b = model(images), model(images)
    assert torch.equal(a.windows, b.windows)
    assert torch.allclose(a.windows[..., 0], torch.full((4, 4), 0.5), atol=0.02)
    model.train()
    assert not torch.equal(model(images).z, model(images).z)  # training samples z from q


def test_pathwise_gradient_reaches_the_posterior_through_the_crops():
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(n_classes=19, glimpses=2, **TINY))
    batch = make_two_digit("sum", "train", 8, 0)
    out = model(batch["image"])
    torch.nn.functional.cross_entropy(out.logits, batch["label"]).backward()  # classification only
    assert model.posterior.net[-1].weight.grad.abs().sum() > 0
    assert model.decoder.fc[0].weight.grad is None or model.decoder.fc[0].weight.grad.abs().sum() == 0


def test_one_batch_training_fits_the_batch():
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=19, glimpses=2, loss=LossConfig(reconstruction_weight=0.01), **TINY)
    model = VariationalSaccading(cfg)
    batch = make_two_digit("sum", "train", 16, 1)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(60):
        loss, parts = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first or parts["nll_class"]
    assert parts["nll_class"] < 0.3 * first


def test_lazy_large_images_run_through_the_model():
    torch.manual_seed(0)
    images = torch.rand(2, 1, 100, 100)
    model = VariationalSaccading(ModelConfig(**TINY)).eval()
    out = model(UpsampledSource(images, 2528))
    assert out.logits.shape == (2, 55) and out.crops.shape == (2, 4, 1, 32, 32)
    # the proxy of a 2528² upsample and of the canvas itself agree closely (same picture)
    assert (out.proxy - TensorSource(images).proxy(32)).abs().mean() < 0.02


@pytest.mark.parametrize("stem,crop,fold", [("space_to_depth", 32, 2), ("space_to_depth", 64, 4), ("conv", 32, 2)])
def test_stems_bring_crops_and_proxy_to_half_or_less_of_their_side(stem, crop, fold):
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(stem=stem, crop_size=crop, crop_fold=fold, **TINY))
    crops = torch.rand(3, 1, crop, crop, requires_grad=True)
    after_stem = model.classifier.crop_net[0](crops)
    assert after_stem.shape == (3, TINY["width"], crop // fold, crop // fold)
    assert model.proxy_encoder.trunk[0](torch.rand(3, 1, 32, 32)).shape == (3, TINY["width"], 16, 16)
    after_stem[:, :, 0, 0].sum().backward()  # the first output cell reads a whole fold×fold block, and more
    assert (crops.grad[0, 0, :fold, :fold] != 0).all()
    out = model(torch.rand(2, 1, 100, 100))
    assert out.logits.shape == (2, 55) and out.crops.shape == (2, 4, 1, crop, crop)


def test_one_decoded_glimpse_is_one_of_the_full_decodes():
    cfg = dict(glimpses=3, loss=LossConfig(reconstruction_weight=0.01), **TINY)
    images = torch.rand(6, 1, 100, 100)
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(**cfg))
    torch.manual_seed(1)
    full = model(images).proxy_logits  # [6, 3, 1, 32, 32]
    one_cfg = ModelConfig(**{**cfg, "loss": LossConfig(reconstruction_weight=0.01, reconstruction_glimpses="one")})
    model.cfg = one_cfg
    torch.manual_seed(1)  # the same z: the glimpse is drawn after the recurrence
    one = model(images).proxy_logits
    assert one.shape == (6, 1, 1, 32, 32)
    matches = (one - full).flatten(2).abs().amax(-1) < 1e-5  # [6, 3]: which full decode each one equals
    assert (matches.sum(1) == 1).all()


def test_bad_images_and_configs_are_rejected():
    model = VariationalSaccading(ModelConfig(**TINY))
    with pytest.raises(ValueError, match=r"expected images \[N, 1, H, W\]"):
        model(torch.rand(2, 3, 100, 100))
    with pytest.raises(ValueError, match="unknown proxy encoder"):
        ModelConfig(proxy_encoder="attention")
    with pytest.raises(ValueError, match="crop_size divisible by crop_fold"):
        ModelConfig(crop_size=30, crop_fold=4)
    with pytest.raises(ValueError, match="only set with stem=space_to_depth"):
        ModelConfig(stem="conv", crop_fold=4)
    with pytest.raises(ValueError, match="unknown setting 'colour' for ModelConfig"):
        ModelConfig.from_dict({"glimpses": 4, "colour": True})
    with pytest.raises(ValueError, match="setting glimpses must be at least 1, got 0"):
        ModelConfig(glimpses=0)
    with pytest.raises(ValueError, match="setting n_classes must be at least 2, got 1"):
        ModelConfig(n_classes=1)
    with pytest.raises(ValueError, match=r"setting init_scale must be in \(0, 1\]"):
        ModelConfig(init_scale=1.5)


def test_config_round_trips_through_a_dict():
    cfg = ModelConfig(glimpses=2, window=WindowConfig(mode="fixed"), loss=LossConfig(kl_weight=5), **TINY)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_random_policy_draws_uniform_windows_inside_the_image():
    torch.manual_seed(0)
    cfg = ModelConfig(policy="random", window=WindowConfig(min_scale=0.2, max_scale=0.45), **TINY)
    model = VariationalSaccading(cfg)
    windows = model.policy(None, torch.zeros(4000, 1, 32, 32), None)
    scale = windows[..., 0]
    assert scale.min() >= 0.2 and scale.max() <= 0.45 and abs(scale.mean().item() - 0.325) < 0.01
    assert (windows[..., 1].abs() <= 1 - scale).all() and windows[..., 1].std() > 0.3
    model.eval()
    images = torch.rand(3, 1, 100, 100)
    assert torch.equal(model(images).windows, model(images).windows)  # evaluation repeats exactly
    with pytest.raises(ValueError, match="unknown glimpse policy"):
        ModelConfig(policy="spiral")


def test_grid_layout_starts_the_glimpses_apart_and_leaves_the_kl_alone():
    torch.manual_seed(0)
    from saccadelib.model import grid_windows

    cfg = ModelConfig(glimpses=4, init_layout="grid", init_scale=0.35, **TINY)
    model = VariationalSaccading(cfg).eval()
    out = model(torch.rand(3, 1, 100, 100), loss_terms=True)
    assert torch.allclose(out.windows[0, :, 1:], grid_windows(4)[:, 1:], atol=0.01)  # the four quadrants' centres
    assert torch.allclose(out.windows[..., 0], torch.full((3, 4), 0.35), atol=0.01)
    # The first glimpse (h_0 = 0): prior and posterior heads are both shifted by the same learnt offset,
    # so the KL between them is what it would be without the layout.
    with torch.no_grad():
        h0 = torch.zeros(3, cfg.hidden)
        prior_mu, _ = model.prior(h0)
        posterior_mu, _ = model.posterior(torch.cat([model.proxy_encoder(out.proxy)[0], h0], -1))
    offset = model.start.offset[0].detach().expand(3, 3)
    assert torch.allclose(out.p_mu[:, 0] - prior_mu, offset, atol=1e-6)
    assert torch.allclose(out.q_mu[:, 0] - posterior_mu, offset, atol=1e-6)
    assert model.start.offset[0].abs().sum() > 0.5  # a real shift, not zero
    centred = VariationalSaccading(ModelConfig(glimpses=4, **TINY)).eval()
    assert centred.start.offset is None and "start.offset" not in centred.state_dict()
    with pytest.raises(ValueError, match="unknown initial layout"):
        ModelConfig(init_layout="spiral")


def test_posterior_can_be_kept_from_training_the_proxy_encoder():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 100, 100)
    for trains, expect in ((True, True), (False, False)):
        model = VariationalSaccading(ModelConfig(glimpses=1, posterior_trains_encoder=trains, **TINY))
        model(images).q_mu.sum().backward()  # step 1: h_0 = 0, so e_c reaches q only directly
        grad = model.proxy_encoder.head[1].weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == expect
        assert model.posterior.net[-1].weight.grad.abs().sum() > 0


def _per_glimpse_reference(model, images):
    """The model's recurrence written the plain way: prior, posterior and decoder inside the loop."""
    from saccadelib.loss import gaussian_sample

    cfg = model.cfg
    proxy = TensorSource(images).proxy(cfg.proxy_size)
    e_c = model.proxy_encoder(proxy)[0]
    h, state = proxy.new_zeros(len(images), cfg.hidden), None
    rec = {k: [] for k in ("z", "q_mu", "q_logvar", "p_mu", "p_logvar", "dec", "h")}
    for t in range(cfg.glimpses):
        p_mu, p_logvar = model.prior(h)
        q_mu, q_logvar = model.posterior(torch.cat([e_c.detach(), h], -1))
        p_mu, q_mu = p_mu + model.start.offset[t], q_mu + model.start.offset[t]
        z = gaussian_sample(q_mu, q_logvar)
        phi = model.latent_embedding(z)
        for k, v in (("z", z), ("q_mu", q_mu), ("q_logvar", q_logvar), ("p_mu", p_mu), ("p_logvar", p_logvar),
                     ("dec", model.decoder(phi, h)), ("h", h)):
            rec[k].append(v)
        h, state = model.core(torch.cat([e_c, phi], -1), state)
    return {k: torch.stack(v, 1) for k, v in rec.items()}, proxy


def test_batched_prior_and_decoder_give_the_per_glimpse_loss():
    from saccadelib.loss import saccade_loss
    from saccadelib.model import SaccadeOutput
    from saccadelib.sampler import window_from_z

    cfg = ModelConfig(n_classes=19, glimpses=3, init_layout="grid", posterior_trains_encoder=False,
                      classifier_reads="crops+state+proxy", **TINY)
    torch.manual_seed(0)
    model = VariationalSaccading(cfg)
    batch = make_two_digit("sum", "train", 6, 0)
    torch.manual_seed(1)
    out = model(batch["image"])
    torch.manual_seed(1)
    ref, proxy = _per_glimpse_reference(model, batch["image"])
    windows = window_from_z(ref["z"], cfg.window)
    crops = TensorSource(batch["image"]).crop(windows, cfg.crop_size)
    step_logits = model.classifier(crops, ref["h"], model.proxy_encoder(proxy)[0])
    expected = SaccadeOutput(step_logits[:, -1], step_logits, windows, ref["z"], ref["q_mu"], ref["q_logvar"],
                             ref["p_mu"], ref["p_logvar"], proxy, ref["dec"], crops)
    for name in ("z", "p_mu", "p_logvar", "proxy_logits", "step_logits"):
        assert torch.allclose(getattr(out, name), getattr(expected, name), atol=1e-5), name
    (loss, _), (reference, _) = saccade_loss(out, batch["label"]), saccade_loss(expected, batch["label"])
    assert abs(loss.item() - reference.item()) < 1e-4 * abs(reference.item())  # the tolerance we hold to


def test_evaluation_skips_what_only_the_loss_reads():
    torch.manual_seed(0)
    images = torch.rand(2, 1, 100, 100)
    model = VariationalSaccading(ModelConfig(**TINY))
    out = model(images)  # training with a reconstruction term: prior and decoder
    assert out.proxy_logits.shape == (2, 4, 1, 32, 32) and out.p_mu.shape == (2, 4, 3)
    model.eval()
    out = model(images)
    assert out.proxy_logits is None and out.p_mu is None and out.p_logvar is None
    assert model(images, loss_terms=True).proxy_logits.shape == (2, 4, 1, 32, 32)
    free = VariationalSaccading(ModelConfig(loss=LossConfig(reconstruction_weight=0.0), **TINY))
    out = free(images)
    assert out.proxy_logits is None and out.p_mu is not None  # no decoder when the loss does not weigh it


@pytest.mark.parametrize("reads,sees_proxy", [("crops", False), ("crops+state", False), ("crops+proxy", True),
                                              ("crops+state+proxy", True)])
def test_what_the_classifier_reads(reads, sees_proxy):
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(policy="grid", classifier_reads=reads, **TINY)).eval()
    images = torch.rand(3, 1, 100, 100)
    head_in = model.classifier.head[0].in_features
    assert head_in == 32 + 32 * ("state" in reads) + 32 * ("proxy" in reads)
    # grid windows do not depend on the proxy: only a classifier reading the proxy (directly, or through
    # h_{t-1}) can change its answer when another proxy is shown
    a = model(images).logits
    b = model(images, proxy=torch.rand(3, 1, 32, 32)).logits
    assert torch.allclose(a, b) != (sees_proxy or "state" in reads)
    with pytest.raises(ValueError, match="unknown classifier input 'proxy'"):
        ModelConfig(classifier_reads="proxy")


def test_a_vote_is_the_mean_of_each_glimpses_own_class_distribution():
    from saccadelib.model.nets import GlimpseClassifier
    from saccadelib.settings import resolve
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=5, classifier_pool="vote", classifier_reads="crops+proxy", **TINY)
    reader = GlimpseClassifier(cfg).eval()
    with torch.no_grad():  # glimpses that disagree, as a trained reader's do
        reader.head[-1].weight.mul_(50)
    crops, proxy = torch.rand(2, 3, 1, 32, 32) * torch.tensor([0.0, 1.0, 5.0]).view(1, 3, 1, 1, 1), torch.rand(2, 32)
    states = torch.zeros(2, 3, 32)
    step_logits = reader(crops, states, proxy)
    alone = torch.stack([reader(crops[:, i:i + 1], states[:, :1], proxy)[:, 0].softmax(-1) for i in range(3)], 1)
    assert torch.allclose(step_logits.softmax(-1), alone.cumsum(1) / torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1), atol=1e-6)
    # after every glimpse the answer no longer depends on their order; the features' mean pools before
    # the head, so the same glimpses give another answer there
    assert torch.allclose(reader(crops.flip(1), states, proxy)[:, -1], step_logits[:, -1], atol=1e-6)
    mean = GlimpseClassifier(dataclasses.replace(cfg, classifier_pool="mean"))
    mean.load_state_dict(reader.state_dict())
    assert not torch.allclose(mean.eval()(crops, states, proxy)[:, -1].softmax(-1), step_logits[:, -1].softmax(-1))
    with pytest.raises(ValueError, match="unknown classifier pool 'max'"):
        ModelConfig(classifier_pool="max")
    with pytest.raises(ValueError, match="labels a set of classes"):
        resolve("saccade_cells", "megapixel_multi", None, {"classifier_pool": "vote"})
    # each look is credited with its own glimpse's prediction only where glimpses vote
    with pytest.raises(ValueError, match="loss.cell_reward=look .* needs classifier_pool=vote"):
        resolve("saccade_cells", "megapixel_majority", None, {"loss.cell_reward": "look"})
    looks, _, _ = resolve("saccade_cells", "megapixel_majority", None,
                          {"loss.cell_reward": "look", "classifier_pool": "vote"})
    assert looks.loss.cell_reward == "look"


def test_every_setting_docs_deviations_names_exists_and_takes_the_value_it_names():
    """docs/deviations.md tells users which `--set`/`--train` KEY=VALUE turns each choice back: each such
    key must be a setting, and each literal value one it takes."""
    import re
    from pathlib import Path

    from saccadelib.config import apply_overrides
    from saccadelib.registry import config_for
    from saccadelib.train_config import TrainConfig

    text = (Path(__file__).parents[1] / "docs" / "deviations.md").read_text()
    spans = text.split("`")[1::2]  # what the backticks hold
    named = [pair for span in spans for pair in re.findall(r"([a-z_]+(?:\.[a-z_]+)?)=([^\s,;)]+)", span)]
    assert len(named) >= 25, named  # the table names its settings
    for key, value in named:
        value = None if value in ("…", "...") else value
        for config in (ModelConfig(), config_for("saccade_cells", 10), TrainConfig()):
            try:
                apply_overrides(config, {key: value} if value is not None else {})
                if value is None:
                    assert key.split(".")[0] in {f for f in type(config).__dataclass_fields__}
                break
            except (ValueError, AssertionError):
                continue
        else:
            raise AssertionError(f"docs/deviations.md names {key}={value}, which no config takes")


def test_a_narrowing_cap_shrinks_the_largest_window_over_training_and_is_saved_with_the_weights():
    window = WindowConfig(min_scale=0.2, max_scale=0.45, narrow_to=0.3, narrow_epochs=4)
    assert [round(window.cap(e), 4) for e in (0, 2, 4, 9)] == [0.45, 0.375, 0.3, 0.3]
    cfg = ModelConfig(n_classes=5, glimpses=2, window=window, init_scale=0.44)
    model = VariationalSaccading(cfg).eval()
    images = torch.rand(3, 1, 64, 64)
    model.start_epoch(0)
    wide = model(images).windows[..., 0]
    assert wide.max() > 0.35  # the posterior starts near 0.44, under the first cap
    model.start_epoch(4)
    narrow = model(images).windows[..., 0]
    assert narrow.max() <= 0.3 + 1e-6 and torch.all(narrow < wide)
    again = VariationalSaccading(cfg).eval()
    again.load_state_dict(model.state_dict())  # the cap travels with the weights
    assert torch.allclose(again(images).windows, model(images).windows)
    with pytest.raises(ValueError, match="narrow_to"):
        WindowConfig(min_scale=0.2, max_scale=0.45, narrow_to=0.5)
    assert not any(name.endswith("window_cap") for name, _ in VariationalSaccading(ModelConfig(n_classes=5)).named_buffers())


def test_jittered_windows_move_only_in_training_by_at_most_their_share_and_stay_inside():
    regions = torch.tensor([[[-0.95, -0.95, -0.85, -0.85], [0.1, 0.2, 0.2, 0.3]]]).expand(64, 2, 4)
    window = WindowConfig(min_scale=0.1, max_scale=0.45, jitter=0.5)
    cfg = ModelConfig(n_classes=5, glimpses=2, crop_size=16, policy="oracle", window=window, **TINY)
    model = VariationalSaccading(cfg)
    images = torch.rand(64, 1, 64, 64)
    placed = VariationalSaccading(dataclasses.replace(cfg, window=WindowConfig(min_scale=0.1, max_scale=0.45))).train()
    exact = placed(images, regions=regions).windows
    torch.manual_seed(0)
    moved = model.train()(images, regions=regions).windows
    shift = (moved[..., 1:] - exact[..., 1:]).abs()
    assert torch.equal(moved[..., 0], exact[..., 0])  # the scale is kept
    assert shift[:, 1].max() <= 0.5 * 0.1 + 1e-6 and shift[:, 1].max() > 0.03  # up to half the half-side, used
    assert torch.all(moved[..., 1:].abs() <= 1 - moved[..., :1] + 1e-6)  # the corner window stays inside
    assert torch.equal(model.eval()(images, regions=regions).windows, exact)  # evaluation reads the windows as placed
    with pytest.raises(ValueError, match="window.jitter"):
        WindowConfig(jitter=1.5)
