"""Where the model looks: the posterior heads that place windows (map, cells), the controls' policies
(oracle, salient), the draws among cells, and each canvas's own evaluation draws."""
import pytest
import torch

from saccadelib.datasets.twodigit import make_two_digit
from saccadelib.loss import LossConfig
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.sampler import WindowConfig

TINY = dict(hidden=32, proxy_features=32, crop_features=32, latent_features=16, width=8, rnn_layers=1)


def test_oracle_windows_hold_the_digits_by_hand():
    from saccadelib.model import oracle_windows

    regions = torch.tensor([[[-0.28, -0.28, 0.28, 0.28], [0.2, -1.0, 0.6, -0.7]]])  # 28 px and 20×15 px at 100²
    four = oracle_windows(regions, 4, 0.1)
    assert torch.allclose(four[0], torch.tensor([[0.28, 0.0, 0.0], [0.2, 0.4, -0.85]] * 2))
    one = oracle_windows(regions, 1, 0.1)  # one glimpse: the union of both boxes
    assert torch.allclose(one[0], torch.tensor([[0.64, 0.16, -0.36]]))  # x in [-0.28, 0.6], y in [-1, 0.28]
    assert torch.allclose(oracle_windows(regions, 2, 0.25)[0, :, 0], torch.tensor([0.28, 0.25]))


def test_the_oracle_reads_the_digits_and_needs_their_boxes():
    torch.manual_seed(0)
    batch = make_two_digit("identification", "val", 4, 0)
    model = VariationalSaccading(ModelConfig(policy="oracle", glimpses=2, crop_size=28, **TINY)).eval()
    out = model(batch["image"], regions=batch["regions"])
    for i in range(4):
        for d in range(2):
            x0, y0, x1, y1 = batch["boxes"][i, d].int().tolist()
            assert torch.allclose(out.crops[i, d, 0], batch["image"][i, 0, y0:y1, x0:x1], atol=1e-5)
    with pytest.raises(ValueError, match="oracle policy needs the objects' boxes"):
        model(batch["image"])


def test_the_deterministic_ablation_keeps_its_settings_under_a_recipe():
    from saccadelib.registry import config_for

    recipe = {"loss.reconstruction_weight": 0.01, "loss.kl_free_bits": 1.0, "glimpses": 2}
    cfg = config_for("deterministic_glimpses", 19, recipe)
    assert (cfg.train_sample, cfg.loss.kl_weight, cfg.loss.kl_free_bits, cfg.loss.reconstruction_weight) == (False, 0, 0, 0)
    assert cfg.glimpses == 2 and config_for("random_glimpses", 19, {"policy": "learnt"}).policy == "random"
    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(**{**TINY, "train_sample": False}))
    images = torch.rand(2, 1, 100, 100)
    assert torch.equal(model(images).z, model(images).z)  # training without sampling


def test_the_map_posterior_starts_at_the_centre_and_moves_toward_high_scores():
    from saccadelib.model import MapPosterior

    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=10, glimpses=3, proxy_size=64, posterior_head="map", init_scale=0.05,
                      window=WindowConfig(min_scale=0.03, max_scale=0.1), **TINY)
    model = VariationalSaccading(cfg).eval()
    out = model(torch.rand(2, 1, 300, 300))
    assert torch.allclose(out.windows[..., 1:], torch.zeros(2, 3, 2), atol=1e-6)  # flat scores: the centre
    assert torch.allclose(out.windows[..., 0], torch.full((2, 3), 0.05), atol=1e-3)
    head = MapPosterior(channels=4, cfg=cfg)
    with torch.no_grad():  # a score map that is high in one cell only: the centre goes to that cell
        head.score.weight.zero_()
        head.score.weight[0, 0] = 1.0  # the score is channel 0
    fmap = torch.zeros(1, 4, 8, 8)
    fmap[0, 0, 1, 6] = 50.0  # row 1, column 6 of 8: centre ((2·6+1)/8 - 1, (2·1+1)/8 - 1)
    head.film.weight.data.zero_()
    head.film.bias.data.zero_()
    from saccadelib.model.posteriors import Plan

    mu, _ = head.step(Plan(fmap), 0, torch.zeros(1, cfg.hidden))  # (plan applies the features convolution)
    assert torch.allclose(torch.tanh(mu[0, 1:]), torch.tensor([0.625, -0.625]), atol=1e-3)


def test_the_map_posterior_learns_from_the_crops_and_trains_the_proxy_encoder():
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=19, glimpses=2, posterior_head="map", **TINY)
    model = VariationalSaccading(cfg)
    batch = make_two_digit("sum", "train", 8, 0)
    for _ in range(2):  # the first step moves the score map off zero; the second reaches the features
        model.zero_grad()
        loss, _ = model.training_loss(batch)
        loss.backward()
        torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert model.posterior.score.weight.grad.abs().sum() > 0 and model.posterior.features.weight.grad.abs().sum() > 0
    assert model.posterior.film.weight.grad.abs().sum() > 0
    assert model.proxy_encoder.trunk[0][1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown posterior head"):
        ModelConfig(posterior_head="dense")


def _cells_model(**extra):
    cfg = ModelConfig(n_classes=10, glimpses=3, proxy_size=32, posterior_head="cells", init_scale=0.05,
                      window=WindowConfig(min_scale=0.03, max_scale=0.1), **{**TINY, **extra})
    return VariationalSaccading(cfg)


def test_the_cells_posterior_starts_on_the_ink_prior_and_looks_at_distinct_inked_cells():
    torch.manual_seed(0)
    model = _cells_model()
    images = torch.zeros(2, 1, 320, 320)  # a 32² proxy: 8×8 cells of 4 proxy px (40 image px)
    images[:, :, 50:70, 210:230] = 1.0  # the most ink, in the cell of rows 40-79, columns 200-239
    images[:, :, 250:256, 20:40] = 1.0  # less ink, in the cell of rows 240-279, columns 0-39
    model.eval()
    out = model(images, loss_terms=True)
    assert out.cell_kl.abs().max() < 1e-5  # the categorical starts as its prior
    first, second = out.windows[0, 0], out.windows[0, 1]
    assert abs(first[1] - (220 / 160 - 1)) < 0.03 and abs(first[2] - (60 / 160 - 1)) < 0.03  # the blob's centre
    assert abs(second[1] - (30 / 160 - 1)) < 0.03 and abs(second[2] - (253 / 160 - 1)) < 0.03
    model.train()
    for _ in range(5):  # in training the cells are drawn, never the same one twice in an image
        windows = model(images).windows[0]
        assert len({tuple(w[1:].tolist()) for w in windows}) == 3


def test_the_cells_posterior_learns_its_scores_through_the_classifier():
    torch.manual_seed(0)
    model = _cells_model(cell_gradient="attention_sampling",
                         **{"loss": LossConfig(reconstruction_weight=0.0, kl_weight=0.0, cell_kl_weight=0.0)})
    images = torch.rand(4, 1, 320, 320)
    loss, parts = model.training_loss({"image": images, "label": torch.tensor([0, 1, 2, 3])})
    assert "policy" not in parts
    loss.backward()  # the classification loss alone: the draws' gradient is the estimator's
    posterior = model.posterior
    assert posterior.score.weight.grad.abs().sum() > 0 and posterior.ink_sharpness.grad.abs() > 0
    assert posterior.rest.net[0].weight.grad.abs().sum() > 0  # scale and offset: pathwise through the crops
    with pytest.raises(ValueError, match="init_layout must stay centre"):
        _cells_model(init_layout="grid")


def test_drawn_cells_keep_out_of_each_others_blocks_and_the_first_follows_the_categorical():
    from saccadelib.model import draw_cells

    torch.manual_seed(0)
    log_a = torch.randn(1, 36).log_softmax(-1).expand(20_000, 36)  # a 6×6 grid
    chosen, taken = draw_cells(log_a, 3, side=6, reach=1, sample=True)
    rows, cols = chosen // 6, chosen % 6
    for i, j in ((0, 1), (0, 2), (1, 2)):  # Chebyshev distance ≥ 2: no draw inside an earlier one's block
        assert (torch.maximum((rows[:, i] - rows[:, j]).abs(), (cols[:, i] - cols[:, j]).abs()) >= 2).all()
    frequency = torch.bincount(chosen[:, 0], minlength=36) / len(chosen)
    assert torch.allclose(frequency, log_a[0].exp(), atol=0.01)
    a = log_a[0].exp().view(6, 6)
    r, c = rows[0, 0].item(), cols[0, 0].item()
    assert taken[0, 0].item() == pytest.approx(a[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2].sum().item(), rel=1e-5)
    best, _ = draw_cells(log_a[:1], 1, side=6, reach=1, sample=False)
    assert best.item() == log_a[0].argmax().item()
    lone, _ = draw_cells(log_a[:1], 40, side=6, reach=0, sample=False)  # more draws than cells: starts over
    assert sorted(lone[0, :36].tolist()) == list(range(36)) and lone[0, 36].item() == log_a[0].argmax().item()


def test_the_drawn_cells_log_probability_is_the_sequential_draws_and_reinforce_trains_the_scores():
    import math

    from saccadelib.model import draw_cells, drawn_log_prob

    a = torch.tensor([[0.5, 0.3, 0.2]])
    chosen, taken = draw_cells(a.log(), 2, side=3, reach=0, sample=False)  # cells 0 then 1 (a 1×3 grid)
    assert chosen.tolist() == [[0, 1]]
    each = drawn_log_prob(a.log(), chosen, taken)  # each draw given the earlier: 0.5, then 0.3 of the 0.5 left
    assert each[0].tolist() == pytest.approx([math.log(0.5), math.log(0.3 / 0.5)])
    torch.manual_seed(0)
    model = _cells_model(cell_gradient="reinforce",
                         **{"loss": LossConfig(reconstruction_weight=0.0, kl_weight=0.0, cell_kl_weight=0.0)})
    loss, parts = model.training_loss({"image": torch.rand(4, 1, 320, 320), "label": torch.tensor([0, 1, 2, 3])})
    loss.backward()
    assert "policy" in parts and model.posterior.score.weight.grad.abs().sum() > 0
    looks = _cells_model(cell_gradient="reinforce", classifier_pool="vote",  # each look credited alone
                         **{"loss": LossConfig(reconstruction_weight=0.0, kl_weight=0.0, cell_kl_weight=0.0,
                                               cell_reward="look")})
    loss, parts = looks.training_loss({"image": torch.rand(4, 1, 320, 320), "label": torch.tensor([0, 1, 2, 3])})
    loss.backward()
    assert "policy" in parts and looks.posterior.score.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown cell_gradient"):
        _cells_model(cell_gradient="pathwise")


def test_salient_windows_go_to_the_ink_first_and_to_distinct_cells():
    from saccadelib.draws import CanvasDraws
    from saccadelib.model import salient_windows

    proxy = torch.zeros(1, 1, 32, 32)
    proxy[0, 0, 5:7, 20:22] = 1.0  # a blob in the cell of rows 4-7, columns 20-23 (8×8 cells of 4 px)
    proxy[0, 0, 25, 3] = 0.5
    for seed in range(5):
        windows = salient_windows(proxy, 3, 0.125, draws=CanvasDraws(torch.tensor([seed])))[0]
        assert windows[:, 0].eq(0.125).all()
        # the two inked cells are drawn first (nearly all the mass), each at its ink's centroid
        inked = {tuple(round(v, 4) for v in w[1:].tolist()) for w in windows[:2]}
        assert inked == {(0.3125, -0.625), (-0.7812, 0.5938)}
        assert tuple(windows[2, 1:].tolist()) not in inked  # then a third, distinct cell
    # the most inked first when not drawing; a power above 1 ranks a dense blob above more, fainter ink
    proxy[0, 0, 24:32, 0:8] = 0.3  # 64 px of 0.3: more ink (19.2) than the blob's 4 px of 1.0, fainter
    def first(power):
        return tuple(round(v, 4) for v in salient_windows(proxy, 1, 0.125, power, sample=False)[0, 0, 1:].tolist())

    assert first(1.0) != (0.3125, -0.625) and first(4.0) == (0.3125, -0.625)


def test_evaluation_draws_belong_to_each_canvas_not_to_its_batch(mnist_root):
    """Random windows and a noisy proxy at evaluation: a canvas gets the same draws whatever batch it is
    scored in, and no two canvases, splits or seeds share them."""
    from saccadelib.draws import canvas_keys
    from saccadelib.evaluation import evaluate
    from saccadelib.tasks import get_task

    torch.manual_seed(0)
    # windows of one size: the crops' prefilter follows a batch's largest window, which is not a draw
    model = VariationalSaccading(ModelConfig(policy="random", proxy_noise=0.5, proxy_keep=0.5, init_scale=0.3,
                                             window=WindowConfig(min_scale=0.3, max_scale=0.3), **TINY)).eval()
    images = torch.rand(16, 1, 100, 100)
    whole = model(images, draw_keys=canvas_keys(0, "val", 0, 16))
    halves = [model(images[a:b], draw_keys=canvas_keys(0, "val", a, b)) for a, b in ((0, 8), (8, 16))]
    for field in ("windows", "proxy"):
        assert torch.equal(getattr(whole, field), torch.cat([getattr(h, field) for h in halves]))
    assert torch.allclose(whole.logits, torch.cat([h.logits for h in halves]), atol=1e-5)  # summation order only
    assert not torch.allclose(whole.windows[:8], whole.windows[8:])  # two batches of one size do not repeat
    for other in (canvas_keys(1, "val", 0, 16), canvas_keys(0, "test", 0, 16)):  # another seed, another split
        assert not torch.allclose(model(images, draw_keys=other).windows, whole.windows)
    assert torch.equal(model(images, draw_keys=canvas_keys(0, "val", 0, 16)).windows, whole.windows)  # repeatable
    val = get_task("identification").evaluation_set("val")
    scores = [evaluate(model, val, batch_size=size, limit=48, seed=3) for size in (16, 48)]
    assert scores[0]["hit_rate"] == scores[1]["hit_rate"] and scores[0]["accuracy"] == scores[1]["accuracy"]
    assert scores[0]["nll"] == pytest.approx(scores[1]["nll"], rel=1e-5)
    assert evaluate(model, val, batch_size=48, limit=48, seed=4)["hit_rate"] != scores[0]["hit_rate"]


def test_accuracy_is_told_apart_where_every_object_was_held_and_where_one_was_missed():
    from saccadelib.evaluation import evaluate
    from saccadelib.tasks import get_task

    torch.manual_seed(0)
    val = get_task("identification").evaluation_set("val")
    oracle = VariationalSaccading(ModelConfig(policy="oracle", glimpses=2, crop_size=28, **TINY)).eval()
    scores = evaluate(oracle, val, limit=64)
    assert scores["both_digits_hit"] == 1.0 and scores["accuracy_every_object_held"] == scores["accuracy"]
    assert scores["accuracy_some_object_missed"] is None
    # a reader right exactly where its windows held both digits
    model = VariationalSaccading(ModelConfig(policy="random", init_scale=0.3,
                                             window=WindowConfig(min_scale=0.3, max_scale=0.3), **TINY)).eval()
    windows_only = model.evaluate_batch

    def right_where_held(batch):
        out = windows_only(batch)
        held = val.glimpse_hits(out["windows"], batch).any(1).all(-1)
        label = torch.where(held, batch["label"], (batch["label"] + 1) % out["logits"].shape[-1])
        return {**out, "logits": torch.nn.functional.one_hot(label, out["logits"].shape[-1]).float() * 10}

    model.evaluate_batch = right_where_held
    scores = evaluate(model, val, batch_size=32, limit=64)
    assert 0 < scores["both_digits_hit"] < 1 and scores["accuracy"] == pytest.approx(scores["both_digits_hit"])
    assert scores["accuracy_every_object_held"] == 1.0 and scores["accuracy_some_object_missed"] == 0.0
