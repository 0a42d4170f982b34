"""Window statistics: closed-form geometry on hand-placed windows, and what evaluation reports."""
import pytest
import torch

from saccadelib.window_stats import frames, hit_matrix, reading, window_statistics


def window_on(box, side):
    """The window (scale, cx, cy) whose square is exactly ``box`` (x0, y0, x1, y1 pixels of a side² canvas)."""
    x0, y0, x1, y1 = box
    return [(x1 - x0) / side, (x0 + x1) / side - 1, (y0 + y1) / side - 1]


def test_a_window_on_the_box_frames_it_and_reads_it_at_crop_over_box():
    boxes = torch.tensor([[[10.0, 20.0, 38.0, 48.0], [60.0, 60.0, 88.0, 88.0]]])
    windows = torch.tensor([[window_on((10, 20, 38, 48), 100), window_on((60, 60, 88, 88), 100)]])
    stats = window_statistics(windows, boxes, 100, crop=32, cap=0.45)
    assert stats["steps"][0]["side_px"]["mean"] == pytest.approx(28.0)
    assert stats["all"]["detail"] == pytest.approx(32 / 28, abs=1e-3)
    assert stats["all"]["strict_hit"] == 1.0 and stats["all_strictly_held"] == 1.0
    assert stats["all"]["centre_to_object_px"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert stats["all"]["at_cap"] == 0.0


def test_a_window_over_one_and_a_half_boxes_or_off_the_box_does_not_frame_it():
    boxes = torch.tensor([[[30.0, 30.0, 58.0, 58.0]]])
    centred_43 = [0.43, 44 / 50 - 1, 44 / 50 - 1]  # 43 px around the box: > 1.5 × 28 = 42
    centred_42 = [0.42, 44 / 50 - 1, 44 / 50 - 1]  # 42 px: the largest window that still frames it
    shifted = window_on((31, 30, 59, 58), 100)  # the box's size, one pixel to the right: a column left out
    windows = torch.tensor([[centred_43, centred_42, shifted]])
    assert frames(windows, boxes, 100)[0, :, 0].tolist() == [False, True, False]
    stats = window_statistics(windows, boxes, 100, crop=32, cap=0.43)
    assert [s["at_cap"] for s in stats["steps"]] == [1.0, 0.0, 0.0]
    assert stats["steps"][2]["centre_to_object_px"]["mean"] == pytest.approx(1.0)
    assert stats["all_strictly_held"] == 1.0


def test_every_object_must_be_framed_for_a_canvas_to_count_as_held():
    boxes = torch.tensor([[[0.0, 0.0, 28.0, 28.0], [72.0, 72.0, 100.0, 100.0]]] * 2)
    on_first = window_on((0, 0, 28, 28), 100)
    on_second = window_on((72, 72, 100, 100), 100)
    windows = torch.tensor([[on_first, on_second], [on_first, on_first]])
    stats = window_statistics(windows, boxes, 100)
    assert stats["all_strictly_held"] == 0.5
    assert stats["all"]["detail"] is None and stats["all"]["at_cap"] is None  # no crop or cap given


def test_evaluation_reports_windows_with_the_models_crop_and_cap(monkeypatch):
    from saccadelib.evaluation import evaluate
    from saccadelib.model import ModelConfig, VariationalSaccading
    from saccadelib.sampler import WindowConfig

    class Boxes:
        split = "test"

        def __len__(self):
            return 4

        def as_dict(self, start, stop):
            n = stop - start
            return {"image": torch.zeros(n, 1, 64, 64), "label": torch.zeros(n, dtype=torch.long),
                    "boxes": torch.tensor([[[4.0, 4.0, 32.0, 32.0]]]).expand(n, 1, 4)}

        def object_boxes(self, batch):
            return batch["boxes"], 64

    model = VariationalSaccading(ModelConfig(n_classes=3, glimpses=2, crop_size=16,
                                             window=WindowConfig(min_scale=0.2, max_scale=0.5)))
    assert reading(model) == (16, 0.5)
    stats = evaluate(model, Boxes(), window_stats=True)["windows"]
    assert len(stats["steps"]) == 2 and stats["crop"] == 16 and stats["cap"] == 0.5 and stats["side"] == 64
    assert 0.2 * 64 <= stats["all"]["side_px"]["mean"] <= 0.5 * 64
    assert "windows" not in evaluate(model, Boxes())  # only when asked: validation rows stay flat


def test_hit_matrix_by_hand():
    from saccadelib.window_stats import box_coverage

    windows = torch.tensor([[[0.3, 0.0, 0.0], [0.2, -0.8, -0.8]]])  # boxes (35,35,65,65) and (0,0,20,20)
    # inside the first window: all of digit 1, 25×25 of digit 2, 15×15 of digit 3 (whose centre is inside)
    boxes = torch.tensor([[[36.0, 36.0, 64.0, 64.0], [40.0, 40.0, 68.0, 68.0], [50.0, 50.0, 78.0, 78.0]]])
    coverage = box_coverage(windows, boxes, 100)
    assert torch.allclose(coverage[0, 0], torch.tensor([1.0, 625 / 784, 225 / 784]))
    assert torch.all(coverage[0, 1] == 0)
    assert hit_matrix(windows, boxes, 100).tolist() == [[[True, True, False], [False, False, False]]]


def test_digit_overlap_by_hand():
    from saccadelib.datasets.twodigit import digit_overlap

    first = [10.0, 10.0, 38.0, 38.0]
    moved = lambda dx, dy: [first[0] + dx, first[1] + dy, first[2] + dx, first[3] + dy]  # noqa: E731
    boxes = torch.tensor([[first, moved(40, 0)], [first, moved(14, 0)], [first, first], [first, moved(-7, 7)],
                          [first, moved(28, 0)]])
    expected = torch.tensor([0.0, 0.5, 1.0, 21 * 21 / 784, 0.0])  # touching edges share no pixel
    assert torch.allclose(digit_overlap(boxes), expected)


def test_the_centre_spread_tells_a_fixed_tiling_from_windows_that_move():
    boxes = torch.tensor([[[10.0, 10, 38, 38]], [[50.0, 50, 78, 78]]])
    # glimpse 0 fixed at the centre on both canvases; glimpse 1 at ±0.2 of the half-side: 10 px either way
    windows = torch.tensor([[[0.3, 0.0, 0.0], [0.3, -0.2, 0.0]], [[0.3, 0.0, 0.0], [0.3, 0.2, 0.0]]])
    stats = window_statistics(windows, boxes, 100)
    assert [step["centre_spread_px"] for step in stats["steps"]] == [0.0, 10.0]
    assert stats["all"]["centre_spread_px"] == 5.0
