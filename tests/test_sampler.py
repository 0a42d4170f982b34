import math

import pytest
import torch
import torch.nn.functional as F

from saccadelib import sampler
from saccadelib.sources import memory
from saccadelib.sources import TensorSource, UpsampledSource
from saccadelib.sampler import WindowConfig, crop_tensor, supersample_factor, window_from_z, window_to_box


def _window(scale, cx, cy, dtype=torch.float32):
    return torch.tensor([[[scale, cx, cy]]], dtype=dtype)


def test_bilinear_sampling_matches_the_papers_formula_by_hand():
    # x[n, m] = (4n + m)²: the sample at (m, n) = (1.25, 2.5) is, by the paper's kernel
    # sum_nm x_nm max(0, 1-|i-m|) max(0, 1-|j-n|) = 0.5(0.75·81 + 0.25·100) + 0.5(0.75·169 + 0.25·196)
    image = (torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)) ** 2
    px, py = 1.25, 2.5
    cx, cy = (2 * px + 1) / 4 - 1, (2 * py + 1) / 4 - 1  # pixel → normalized (align_corners=False)
    value = crop_tensor(image, _window(0.1, cx, cy, torch.float64), size=1)[0, 0, 0, 0, 0]
    assert value.item() == pytest.approx(130.75, abs=1e-9)
    kernel = sum(image[0, 0, n, m].item() * max(0, 1 - abs(px - m)) * max(0, 1 - abs(py - n))
                 for n in range(4) for m in range(4))
    assert value.item() == pytest.approx(kernel, abs=1e-9)


def test_pixel_aligned_windows_read_the_pixels_themselves():
    image = torch.rand(1, 1, 100, 100, dtype=torch.float64)
    # scale 0.32 at the top-left corner covers pixels [0, 32) exactly; 32 samples land on pixel centres
    top_left = crop_tensor(image, _window(0.32, -0.68, -0.68, torch.float64), 32)[0, 0, 0]
    assert torch.allclose(top_left, image[0, 0, :32, :32], atol=1e-12)
    bottom_right = crop_tensor(image, _window(0.32, 0.68, 0.68, torch.float64), 32)[0, 0, 0]
    assert torch.allclose(bottom_right, image[0, 0, 68:, 68:], atol=1e-12)
    centre = crop_tensor(image, _window(0.5, 0.0, 0.0, torch.float64), 50)[0, 0, 0]
    assert torch.allclose(centre, image[0, 0, 25:75, 25:75], atol=1e-12)


def test_window_to_box_at_centre_and_corners():
    boxes = window_to_box(torch.tensor([[0.3, 0.0, 0.0], [0.3, 0.7, 0.7], [0.3, -0.7, 0.7], [1.0, 0.0, 0.0]]), 100, 200)
    expected = torch.tensor([[70, 35, 130, 65], [140, 70, 200, 100], [0, 70, 60, 100], [0, 0, 200, 100]]).float()
    assert torch.allclose(boxes, expected, atol=1e-4)


def test_learnt_windows_stay_inside_the_image_and_reach_its_corners():
    cfg = WindowConfig(mode="learnt", min_scale=0.2, max_scale=0.9)
    z = torch.tensor([[-50.0, 50.0, -50.0], [50.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    w = window_from_z(z, cfg)
    assert w[0].tolist() == pytest.approx([0.2, 0.8, -0.8])  # smallest window, pushed into a corner
    assert w[1].tolist() == pytest.approx([0.9, 0.0, 0.0])
    assert w[2, 0].item() == pytest.approx(0.55)
    box = window_to_box(window_from_z(torch.randn(1000, 3) * 10, cfg), 100, 100)
    assert (box >= -1e-4).all() and (box <= 100 + 1e-4).all()


def test_fixed_and_original_windows():
    z = torch.tensor([[0.5, 0.2, -3.0]])
    assert window_from_z(z, WindowConfig(mode="fixed"))[0, 0].item() == pytest.approx(0.3)
    original = window_from_z(z, WindowConfig(mode="original"))
    assert original[0].tolist() == pytest.approx([0.3, 0.2, -3.0])  # unbounded centre, as the original
    with pytest.raises(ValueError, match="unknown window mode"):
        WindowConfig(mode="zoom")
    with pytest.raises(ValueError, match="end in 3 values"):
        window_from_z(torch.zeros(2, 4))


def _z_gradient(mode):
    torch.manual_seed(0)
    image = torch.rand(2, 1, 100, 100)
    z = torch.randn(2, 3, 3, requires_grad=True)
    windows = window_from_z(z, WindowConfig(mode=mode))
    crops = TensorSource(image).crop(windows, 16)
    (crops * torch.randn_like(crops)).sum().backward()
    return z.grad


def test_gradient_in_z_is_finite_and_reaches_every_component():
    grad = _z_gradient("learnt")
    assert torch.isfinite(grad).all()
    assert (grad.abs().sum(dim=(0, 1)) > 0).all()


def test_the_originals_scale_gets_no_gradient_and_ours_does():
    assert _z_gradient("original")[..., 0].abs().max() == 0  # fault (3): max(|s|, 1/0.3)
    assert _z_gradient("fixed")[..., 0].abs().max() == 0  # by design
    assert _z_gradient("learnt")[..., 0].abs().max() > 0


@pytest.mark.parametrize("side", [2528, 357])
@pytest.mark.parametrize("k", [1, 3])
def test_lazy_upsample_equals_materialized(side, k):
    torch.manual_seed(side + k)
    base = torch.rand(2, 2, 100, 100, dtype=torch.float64)
    windows = torch.tensor([[[0.3, 0.2, -0.5], [0.05, 0.9, 0.9], [1.0, 0.0, 0.0]],
                            [[0.3, 0.8, -0.8], [0.2, -0.75, 0.1], [0.5, 0.5, 0.5]]], dtype=torch.float64)
    # float64: identical up to rounding, values and gradients in the window
    lazy, full = UpsampledSource(base, side), TensorSource(F.interpolate(base, size=side, mode="bilinear"))
    assert (lazy.proxy(32) - full.proxy(32)).abs().max() < 1e-10
    w = windows.clone().requires_grad_()
    a, b = lazy.crop(w, 24, supersample=k), full.crop(w, 24, supersample=k)
    assert (a - b).abs().max() < 1e-10
    weights = torch.randn_like(a)
    ga, = torch.autograd.grad((a * weights).sum(), w)
    gb, = torch.autograd.grad((b * weights).sum(), w)
    assert torch.allclose(ga, gb, rtol=1e-6, atol=1e-6)
    # float32, the dtype models run in: the lazy source stays within 1e-5 of the exact (float64) crop
    lazy32 = UpsampledSource(base.float(), side)
    assert (lazy32.proxy(32).double() - full.proxy(32)).abs().max() < 1e-5
    assert (lazy32.crop(windows.float(), 24, supersample=k).double() - b.detach()).abs().max() < 1e-5


def test_lazy_source_never_builds_the_large_image():
    lazy = UpsampledSource(torch.rand(1, 1, 100, 100), 10_112)
    crops = lazy.crop(_window(0.3, 0.1, -0.2).expand(1, 4, 3), 64)
    assert crops.shape == (1, 4, 1, 64, 64) and lazy.proxy(32).shape == (1, 1, 32, 32)
    assert lazy.detail_px == 100 and lazy.auto_supersample(_window(0.3, 0, 0), 64) == 1


def test_large_windows_do_not_alias():
    # 1-px vertical stripes at 2528²: a 758-px window read into 64² must come out flat grey
    stripes = (torch.arange(2528) % 2).float().expand(2528, 2528).reshape(1, 1, 2528, 2528)
    source = TensorSource(stripes)
    window = _window(0.3, 0.1, 0.0)
    assert source.auto_supersample(window, 64) == math.ceil(0.3 * 2528 / 64)
    smooth = source.crop(window, 64)
    aliased = source.crop(window, 64, supersample=1)
    assert (smooth - 0.5).abs().max() < 0.05 and smooth.std() < 0.02
    assert aliased.std() > 0.2  # one bilinear sample per 11.85 px: a beat pattern, not grey


def test_supersample_factor():
    assert supersample_factor(30, 32) == 1 and supersample_factor(64, 32) == 2 and supersample_factor(65, 32) == 3
    assert supersample_factor(1e6, 32) == sampler.MAX_SUPERSAMPLE


def test_sources_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        TensorSource(torch.zeros(3, 100, 100))
    with pytest.raises(ValueError, match=r"\[N, C, h, w\]"):
        UpsampledSource(torch.zeros(100, 100), 2528)


@pytest.mark.parametrize("base_len, large_len", [(100, 2528), (100, 10_112), (37, 50), (100, 100)])
def test_upsample_rows_are_built_only_where_asked_and_equal_torchs(base_len, large_len):
    full = memory._upsample_rows(base_len, large_len)  # torch's own interpolation, every row
    index = torch.tensor([[-3, -1, 0, 1], [large_len // 2, large_len - 2, large_len - 1, large_len + 4]])
    rows = sampler.upsample_row_weights(index, base_len, large_len, torch.float64)
    assert rows.shape == (2, 4, base_len)
    inside = (index >= 0) & (index < large_len)
    assert torch.allclose(rows[inside], full[index[inside]], atol=1e-12)
    assert rows[~inside].abs().max() == 0  # zero padding outside the image, as grid_sample has it
