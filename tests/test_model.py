import pytest
import torch

from saccadelib.data import make_two_digit
from saccadelib.loss import LossConfig
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.sampler import TensorSource, UpsampledSource, WindowConfig

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


def test_bad_images_and_configs_are_rejected():
    model = VariationalSaccading(ModelConfig(**TINY))
    with pytest.raises(ValueError, match=r"expected images \[N, 1, H, W\]"):
        model(torch.rand(2, 3, 100, 100))
    with pytest.raises(ValueError, match="unknown proxy encoder"):
        ModelConfig(proxy_encoder="attention")
    with pytest.raises(ValueError, match="unknown setting 'colour' for ModelConfig"):
        ModelConfig.from_dict({"glimpses": 4, "colour": True})


def test_config_round_trips_through_a_dict():
    cfg = ModelConfig(glimpses=2, window=WindowConfig(mode="fixed"), loss=LossConfig(kl_weight=5), **TINY)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_random_policy_draws_uniform_windows_inside_the_image():
    torch.manual_seed(0)
    cfg = ModelConfig(policy="random", window=WindowConfig(min_scale=0.2, max_scale=0.45), **TINY)
    model = VariationalSaccading(cfg)
    windows = model.random_windows(4000, torch.zeros(1))
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
    out = model(torch.rand(3, 1, 100, 100))
    assert torch.allclose(out.windows[0, :, 1:], grid_windows(4)[:, 1:], atol=0.01)  # the four quadrants' centres
    assert torch.allclose(out.windows[..., 0], torch.full((3, 4), 0.35), atol=0.01)
    # The first glimpse (h_0 = 0): prior and posterior heads are both shifted by the same learnt offset,
    # so the KL between them is what it would be without the layout.
    with torch.no_grad():
        h0 = torch.zeros(3, cfg.hidden)
        prior_mu, _ = model.prior(h0)
        posterior_mu, _ = model.posterior(torch.cat([model.proxy_encoder(out.proxy), h0], -1))
    assert torch.allclose(out.p_mu[:, 0] - prior_mu, model.glimpse_offset[0].detach().expand(3, 3), atol=1e-6)
    assert torch.allclose(out.q_mu[:, 0] - posterior_mu, model.glimpse_offset[0].detach().expand(3, 3), atol=1e-6)
    assert model.glimpse_offset[0].abs().sum() > 0.5  # a real shift, not zero
    centred = VariationalSaccading(ModelConfig(glimpses=4, **TINY)).eval()
    assert not hasattr(centred, "glimpse_offset")
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
