"""The plateau rule: the margin form, the slope form that tells a plateau from noise, and how the rule
enters a run's identity (schedule.plateaus, settings.resumable_settings)."""
import pytest

from saccadelib.train_config import TrainConfig

RUN = dict(task="sum", epochs=2, train_size=64, batch_size=32, val_size=100, eval_batch_size=100,
           progress="none", test=False, seed=3)


def test_the_plateau_rule_counts_epochs_since_the_last_rise_by_the_margin():
    from saccadelib.schedule import plateaued

    rows = lambda *accs: [{"val_accuracy": a} for a in accs]  # noqa: E731
    assert plateaued(rows(0.5, 0.6, 0.601, 0.605, 0.609), 3, 0.01)  # small gains below the margin add up to none
    assert not plateaued(rows(0.5, 0.6, 0.605, 0.611), 3, 0.01)  # 0.611 rose 0.011 above the last mark
    assert not plateaued(rows(0.5, 0.6, 0.6), 3, 0.01) and not plateaued(rows(0.5, 0.5, 0.5, 0.5), None, 0.01)
    assert plateaued(rows(0.7, 0.69, 0.68, 0.7), 3, 0.0)  # a drop is no rise, nor is equalling the mark
    assert not plateaued(rows(0.7, 0.69, 0.71, 0.7), 3, 0.0)


def test_the_slope_rule_fires_on_a_flat_noisy_curve_but_not_on_a_rising_one():
    import random

    from saccadelib.schedule import curve_slope, plateaus, rising

    slope, error = curve_slope([0.1, 0.3, 0.5, 0.7])  # a straight line: its slope, no error
    assert slope == pytest.approx(0.2) and error == pytest.approx(0.0, abs=1e-12)
    noise = random.Random(0)
    # validation that rises 0.6 points per 10 epochs under 0.6 points of epoch-to-epoch noise
    rise = [0.85 + 0.0006 * e + noise.gauss(0, 0.006) for e in range(60)]
    flat = [0.85 + noise.gauss(0, 0.006) for _ in range(60)]
    rows = lambda accs: [{"val_accuracy": a} for a in accs]  # noqa: E731
    assert plateaus(rows(rise), 10, 0.002, "margin") >= 1  # the margin rule cuts the rising curve on noise
    assert plateaus(rows(rise), 30, 0.002, "slope") == 0 and rising(rise[-30:], 0.002)
    assert plateaus(rows(flat), 30, 0.002, "slope") >= 1 and not rising(flat[-30:], 0.002)
    assert plateaus(rows([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]), 3, 0.0, "slope") == 2  # counts again after each
    with pytest.raises(ValueError, match="at least 3"):
        TrainConfig(lr_schedule="plateau", plateau_epochs=2, plateau_test="slope")


def test_the_plateau_test_keeps_earlier_runs_names_at_its_old_value():
    from saccadelib.settings import resumable_settings

    run = {**RUN, "lr_schedule": "plateau", "plateau_epochs": 10}
    assert resumable_settings(TrainConfig(**run)) == resumable_settings(TrainConfig(**run, plateau_test="margin"))
    assert resumable_settings(TrainConfig(**run, plateau_test="slope"))["plateau_test"] == "slope"
    assert "plateau_test" not in resumable_settings(TrainConfig(**{**RUN, "plateau_test": "slope"}))  # no plateau schedule
