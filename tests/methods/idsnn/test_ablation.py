"""snnjax.methods.idsnn.ablation: arm configs and the ablation table, on hand-made results (no training)."""

import numpy as np
import pytest

from snnjax.methods.idsnn import ablation


@pytest.mark.parametrize(
    "arm, transplant, kd",
    [("baseline", False, False), ("init_only", True, False), ("kd_only", False, True), ("idsnn", True, True)],
)
def test_arm_config_sets_seed_switches_and_teacher(arm, transplant, kd, load_config):
    base = load_config("idsnn", "digits")
    before = base.to_dict()
    cfg = ablation.arm_config(base, arm, 7, "/runs/seed7/teacher")
    assert (cfg.seed, cfg.transplant.enabled, cfg.kd.enabled) == (7, transplant, kd)
    assert cfg.teacher.checkpoint == "/runs/seed7/teacher"
    assert base.to_dict() == before  # the shared base config is not modified
    assert ablation.arm_config(base, arm, 7, None).teacher.checkpoint == ""


def test_first_epoch_reaching():
    curve = [(1, 0.5), (2, 0.8), (3, 0.79), (4, 0.9)]
    assert ablation.first_epoch_reaching(curve, 0.8) == 2
    assert ablation.first_epoch_reaching(curve, 0.85) == 4
    assert ablation.first_epoch_reaching(curve, 0.95) is None


def test_summarize_and_markdown_by_hand():
    results = {
        "baseline": {
            0: {"best": 0.90, "final": 0.88, "curve": [(1, 0.5), (2, 0.88)]},
            1: {"best": 0.80, "final": 0.80, "curve": [(1, 0.6), (2, 0.80)]},
        },
        "kd_only": {
            0: {"best": 0.94, "final": 0.94, "curve": [(1, 0.89), (2, 0.94)]},
            1: {"best": 0.78, "final": 0.78, "curve": [(1, 0.7), (2, 0.78)]},
        },
    }
    table = ablation.summarize(results)
    assert table["baseline"]["best_test_accuracy_mean"] == pytest.approx(0.85)
    # sample std (ddof=1) of .9, .8: sqrt((.05**2 + .05**2) / 1) = sqrt(.005)
    assert table["baseline"]["best_test_accuracy_std"] == pytest.approx(0.0707107, abs=1e-6)
    assert table["kd_only"]["best_test_accuracy_std"] == pytest.approx(0.1131371, abs=1e-6)  # sqrt(2) * .08
    # kd_only seed 0 passes the baseline's final 0.88 at epoch 1; seed 1 never reaches 0.80
    assert table["kd_only"]["epoch_reaching_baseline_final_per_seed"] == {"0": 1, "1": None}
    assert table["baseline"]["epoch_reaching_baseline_final_per_seed"] == {"0": 2, "1": 2}
    md = ablation.to_markdown(table, epochs=2).splitlines()
    assert table["baseline"]["final_test_accuracy_mean"] == pytest.approx(0.84)  # (0.88 + 0.80) / 2
    assert table["baseline"]["final_test_accuracy_std"] == pytest.approx(0.0565685, abs=1e-6)  # sqrt(2) * .04
    assert md[0].endswith("(of 2) |") and len(md) == 4
    assert md[2] == "| baseline | 0.8500 +- 0.0707 | 0.9000, 0.8000 | 0.8400 +- 0.0566 | 2, 2 |"
    assert md[3] == "| kd_only | 0.8600 +- 0.1131 | 0.9400, 0.7800 | 0.8600 +- 0.1131 | 1, never |"


def test_one_seed_has_no_spread_rather_than_a_zero_one():
    table = ablation.summarize({"baseline": {3: {"best": 0.9, "final": 0.85, "curve": [(1, 0.85)]}}})
    assert table["baseline"]["best_test_accuracy_std"] is None
    md = ablation.to_markdown(table, epochs=1).splitlines()
    assert md[2] == "| baseline | 0.9000 (one seed) | 0.9000 | 0.8500 (one seed) | 1 |"


def test_kd_only_arm_weighs_kd_as_the_official_train_kd_script(load_config):
    base = load_config("idsnn", "digits")
    assert ablation.arm_config(base, "kd_only", 0, None).kd.alpha == 0.5
    assert ablation.arm_config(base, "idsnn", 0, None).kd.alpha == base.kd.alpha == 0.3


def test_curve_band_is_mean_min_max_over_seeds_on_the_epochs_all_seeds_reached():
    per_seed = {
        0: {"curve": [(1, 0.5), (2, 0.9), (3, 0.95)]},
        1: {"curve": [(1, 0.4), (2, 0.8)]},  # still running: its epoch 3 does not exist yet
    }
    epochs, mean, low, high = ablation.curve_band(per_seed)
    assert epochs == [1, 2]
    np.testing.assert_allclose(mean, [0.45, 0.85])
    np.testing.assert_allclose(low, [0.4, 0.8])
    np.testing.assert_allclose(high, [0.5, 0.9])
    assert ablation.curve_band({0: {"curve": []}})[0] == []


def test_plot_curves_writes_a_png_of_mean_and_band(tmp_path):
    results = {
        "baseline": {
            0: {"best": 0.9, "final": 0.9, "curve": [(1, 0.5), (2, 0.9)]},
            1: {"best": 0.8, "final": 0.8, "curve": [(1, 0.4), (2, 0.8)]},
        }
    }
    path = tmp_path / "ablation.png"
    ablation.plot_curves(results, str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


@pytest.mark.parametrize("base_arm", ["idsnn", "kd_only", "baseline", "init_only"])
@pytest.mark.parametrize("arm", ["idsnn", "kd_only", "baseline", "init_only"])
def test_arm_config_equals_the_arm_preset_whatever_the_base_arm(base_arm, arm, load_config):
    """Regression (issue 24a): ``--config configs/idsnn.py:digits,kd_only --arms idsnn`` trained the idsnn
    arm at kd_only's alpha 0.5; every arm must equal its own preset (``configs/idsnn.py:digits,<arm>``)."""
    cfg = ablation.arm_config(load_config("idsnn", f"digits,{base_arm}"), arm, 0, None)
    preset = load_config("idsnn", f"digits,{arm}")
    assert (cfg.kd.alpha, cfg.kd.enabled, cfg.transplant.enabled) == (
        preset.kd.alpha,
        preset.kd.enabled,
        preset.transplant.enabled,
    )
    assert cfg.kd.alpha == {"idsnn": 0.3, "kd_only": 0.5, "baseline": 0.3, "init_only": 0.3}[arm]


def test_paired_effects_by_hand():
    results = {
        "baseline": {
            0: {"best": 0.90, "final": 0.88},
            1: {"best": 0.80, "final": 0.80},
            2: {"best": 0.85, "final": 0.84},
        },
        "kd_only": {
            0: {"best": 0.91, "final": 0.90},
            1: {"best": 0.80, "final": 0.79},
            2: {"best": 0.86, "final": 0.87},
        },
        "init_only": {1: {"best": 0.86, "final": 0.85}},
    }
    rows = {(r["arm"], r["reference"]): r for r in ablation.paired_effects(results)}
    assert set(rows) == {("kd_only", "baseline"), ("init_only", "baseline")}  # idsnn has no runs
    kd = rows["kd_only", "baseline"]
    assert kd["effect"] == "KD"
    assert kd["per_seed"] == pytest.approx({"0": 0.02, "1": -0.01, "2": 0.03})
    assert kd["mean"] == pytest.approx(0.04 / 3)
    # sample std of (0.02, -0.01, 0.03): mean 0.01333, squares 0.0000444 + 0.000544 + 0.000278 over 2
    assert kd["std"] == pytest.approx(
        np.sqrt((0.02 - 0.04 / 3) ** 2 / 2 + (0.01 + 0.04 / 3) ** 2 / 2 + (0.03 - 0.04 / 3) ** 2 / 2)
    )
    assert kd["std"] == pytest.approx(0.020817, abs=1e-6)
    assert kd["positive"] == 2
    # t(0.975, df=2) = 4.302653 (printed tables); half-width t * std / sqrt(3) = 0.0517115
    half = 4.302653 * kd["std"] / np.sqrt(3)
    assert half == pytest.approx(0.0517115, abs=1e-6)
    assert kd["ci95"] == pytest.approx((0.04 / 3 - half, 0.04 / 3 + half), abs=1e-7)
    one = rows["init_only", "baseline"]
    assert one["per_seed"] == pytest.approx({"1": 0.05}) and one["std"] is None and one["positive"] == 1
    assert one["ci95"] is None
    best = {(r["arm"], r["reference"]): r for r in ablation.paired_effects(results, "best")}
    assert best["kd_only", "baseline"]["per_seed"] == pytest.approx({"0": 0.01, "1": 0.0, "2": 0.01})
    assert best["kd_only", "baseline"]["positive"] == 2  # a zero difference is not a gain

    md = ablation.effects_markdown(ablation.paired_effects(results)).splitlines()
    assert md[2] == "| transplant | init_only - baseline | +5.00 | +5.00 | - | - | 1 of 1 |"
    assert md[3] == "| KD | kd_only - baseline | +2.00, -1.00, +3.00 | +1.33 | 2.08 | -3.84 to +6.50 | 2 of 3 |"


def test_report_markdown_appends_the_effects_only_when_two_arms_share_a_seed():
    base = {"baseline": {0: {"best": 0.9, "final": 0.9, "curve": [(1, 0.9)]}}}
    assert "Effects" not in ablation.report_markdown(base, epochs=1)
    both = dict(base, kd_only={0: {"best": 0.92, "final": 0.91, "curve": [(1, 0.91)]}})
    md = ablation.report_markdown(both, epochs=1)
    assert md.startswith(ablation.to_markdown(ablation.summarize(both), 1))
    assert "| KD | kd_only - baseline | +1.00 | +1.00 | - | - | 1 of 1 |" in md
