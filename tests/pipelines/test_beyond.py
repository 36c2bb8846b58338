"""The beyond-the-paper pieces: the (α, β) grid covers exactly the valid region, the AUROC
against a brute-force pairwise count, blind-spot augmentation draws only valid (α, β), the
blind-spot verdict rule, and the commands end to end on the fixtures."""
import csv
import os

import numpy as np
import pytest
from click.testing import CliRunner

from bsattack import augment, models, shift_verdicts
from bsattack.datasets import get_spec
from bsattack.detect import auroc
from bsattack.errors import BsattackError
from bsattack.pipelines import beyond
from bsattack.pipelines.beyond import even_grid, grid
from bsattack.train import TrainSettings
from bsattack.transforms import blindspot, to_01, to_pm


def test_even_grid_covers_exactly_the_valid_region():
    points = even_grid(alpha_min=0.6, alpha_steps=9, beta_steps=5)
    alphas = sorted({a for a, _, _ in points})
    np.testing.assert_allclose(alphas, np.linspace(0.6, 1.0, 9))
    for alpha in alphas:
        betas = sorted(b for a, b, _ in points if a == alpha)
        limit = (1 - alpha) / 2
        expected = [0.0] if alpha == 1 else list(np.array([-1, -0.5, 0, 0.5, 1]) * limit)
        np.testing.assert_allclose(betas, expected, atol=1e-6)
        assert all(abs(b) <= limit + 1e-9 for b in betas)          # inside the valid region
    assert len(points) == 8 * 5 + 1
    assert {(0.9, 0.05), (0.95, 0.025), (0.8, 0.1), (0.7, 0.15)} <= {(a, b) for a, b, _ in points}


def test_grid_rejects_points_outside_the_region():
    with pytest.raises(BsattackError):
        grid([1.2], [0])
    with pytest.raises(BsattackError):
        grid([0.8], [1.5])
    assert grid([0.8, 0.8], [0, -0.0]) == [(0.8, 0.0, 0.0)]          # de-duplicated


def test_auroc_equals_brute_force_pairwise_count():
    rng = np.random.default_rng(3)
    for _ in range(5):
        original = rng.integers(0, 6, 40).astype(float)     # integer scores: many ties
        shifted = rng.integers(1, 8, 55).astype(float)
        wins = sum((s > o) + 0.5 * (s == o) for s in shifted for o in original)
        assert auroc(original, shifted) == pytest.approx(wins / (len(original) * len(shifted)))
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([2, 3], [0, 1]) == 0.0
    with pytest.raises(BsattackError):
        auroc([], [1.0])


def test_blindspot_augmentation_draws_only_valid_pairs():
    spec = "blindspot:0.6"
    draws = np.array([(t.alpha, t.beta) for t in
                      (augment.draw(spec, seed=7, step=s) for s in range(3000))])
    alpha, beta = draws[:, 0], draws[:, 1]
    assert alpha.min() >= 0.6 and alpha.max() <= 1.0
    assert np.all(np.abs(beta) <= (1 - alpha) / 2)
    assert beta.min() < 0 < beta.max() and alpha.min() < 0.62 and alpha.max() > 0.98
    assert augment.draw(spec, 7, 11) == augment.draw(spec, 7, 11)      # resumable
    assert augment.draw(spec, 7, 11) != augment.draw(spec, 8, 11)
    images = np.random.default_rng(0).random((5, 784)).astype(np.float32)
    a, b = augment.draw(spec, 7, 11).alpha, augment.draw(spec, 7, 11).beta
    out = augment.make(spec, 7)(images, 11)
    np.testing.assert_allclose(out, (images - 0.5) * a + b + 0.5, atol=1e-6)
    assert out.min() >= 0 and out.max() <= 1
    assert augment.make("", 7)(images, 11) is images


@pytest.mark.parametrize("spec", ["blindspot", "blindspot:0", "blindspot:1.5", "mixup:0.5",
                                  "blindspot:x"])
def test_bad_augmentation_specs(spec):
    with pytest.raises(BsattackError):
        augment.parse(spec)


def test_training_identity_without_augmentation_is_unchanged():
    assert "augment" not in TrainSettings().identity()                # old logs stay resumable
    assert TrainSettings(augment="blindspot:0.6").identity()["augment"] == "blindspot:0.6"


def _summary(accuracy, attacked, success, family="x"):
    return {"accuracy": accuracy, "attacked": attacked, "success_eps": success,
            "family": family, "strength": "1"}


def test_blind_spot_verdict():
    summaries = {"original": _summary(0.85, 400, 0.10, "original"),
                 "a": _summary(0.845, 400, 0.30),     # keeps accuracy, clear rise: yes
                 "b": _summary(0.80, 400, 0.40),      # accuracy drops 5 points: no
                 "c": _summary(0.85, 400, 0.11)}      # rise within noise: no
    rows = {r["setting"]: r for r in shift_verdicts.shift_rows(summaries)}
    assert [rows[k]["blind_spot"] for k in "abc"] == ["yes", "no", "no"]
    assert "accuracy" in rows["b"]["why"] and "SE" in rows["c"]["why"]
    p = (0.10 + 0.11) / 2
    assert rows["c"]["rise_se"] == pytest.approx(np.sqrt(p * (1 - p) * 2 / 400))
    assert shift_verdicts.family_verdicts(list(rows.values())) == {"x": ["1"]}


@pytest.fixture(scope="module")
def cli():
    from cli import main
    return lambda args: CliRunner().invoke(main, args, catch_exceptions=False)


def _fixture_args(small_checkpoint, fixture_data_dir, tmp_path):
    return ["--dataset", "fashion", "--checkpoint", small_checkpoint("fashion"), "--data-dir",
            fixture_data_dir, "--validation-size", "100", "--n", "40", "--pgd-steps", "3",
            "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def test_blindspot_map_command(cli, small_checkpoint, fixture_data_dir, small_split, tmp_path):
    args = _fixture_args(small_checkpoint, fixture_data_dir, tmp_path)
    result = cli(["blindspot-map", *args, "--alphas", "0.8,1", "--beta-fractions=-1,0,1"])
    assert result.exit_code == 0, result.output
    rows = _rows(tmp_path / "out" / "blindspot_map_fashion_pgd.csv")
    assert [(float(r["alpha"]), float(r["beta"])) for r in rows] == \
        [(0.8, -0.1), (0.8, 0.0), (0.8, 0.1), (1.0, 0.0)]
    assert os.path.getsize(tmp_path / "out" / "blindspot_map_fashion_pgd.png") > 0
    split = small_split("fashion")
    x = to_01(blindspot(to_pm(split.test_x[:40]), 0.8, -0.1))
    expected = models.accuracy(get_spec("fashion"), small_checkpoint("fashion"), x,
                               split.test_y[:40])
    assert float(rows[0]["accuracy"]) == pytest.approx(expected, abs=1e-4)


def test_shifts_and_detectability_commands(cli, small_checkpoint, fixture_data_dir, small_split,
                                           tmp_path):
    args = _fixture_args(small_checkpoint, fixture_data_dir, tmp_path)
    shifts = ["--shift", "rotate:10", "--shift", "invert:1"]
    result = cli(["detectability", *args, *shifts, "--n-detect", "60",
                  "--nat-extractor", small_checkpoint("fashion")])
    assert result.exit_code == 0, result.output
    rows = {r["setting"]: r for r in _rows(tmp_path / "out" / "detectability_fashion_pgd.csv")}
    assert {"original", "rotate10", "invert1", "alpha0.9-beta0.05"} <= set(rows)
    split = small_split("fashion")
    from bsattack.shifts import Shift
    x = to_01(Shift("invert", 1)(to_pm(split.test_x)))      # --accuracy-n: all 500 here
    expected = models.accuracy(get_spec("fashion"), small_checkpoint("fashion"), x, split.test_y)
    assert float(rows["invert1"]["accuracy"]) == pytest.approx(100 * expected, abs=0.06)
    assert rows["invert1"]["accuracy_n"] == "500" and rows["invert1"]["attacked"] != ""
    for r in rows.values():
        if r["setting"] != "original":
            assert 0 <= float(r["auroc_adv"]) <= 1 and r["auroc_adv"] == r["auroc_nat"]


def test_bad_inputs_are_one_line_errors(cli, small_checkpoint, fixture_data_dir, tmp_path):
    args = _fixture_args(small_checkpoint, fixture_data_dir, tmp_path)
    for extra in (["shifts", "--shift", "rotate:90"], ["shifts", "--shift", "zoom:2"],
                  ["blindspot-map", "--alphas", "1.2"], ["blindspot-map", "--alphas", "a,b"]):
        result = CliRunner().invoke(__import__("cli").main, [extra[0], *args, *extra[1:]])
        assert result.exit_code != 0
        assert "Traceback" not in result.output and "Error" in result.output


def test_a_transform_replaces_alpha_beta_in_run_blindspot(small_checkpoint, small_split):
    """run_blindspot attacks transform(x) and decides success at the transform's thresholds:
    ε alone for a shift, (α·ε, ε) for the paper's transform."""
    from bsattack.attacks.pgd import PGDSettings
    from bsattack.experiment import run_blindspot
    from bsattack.shifts import BlindSpot, Shift
    split = small_split("fashion")
    x = to_pm(split.test_x[:10].reshape(10, -1))
    settings = PGDSettings(steps=2)
    for transform, thresholds in ((Shift("blur", 0.5), (0.1,)),
                                  (BlindSpot(0.8, 0.1), (0.8 * 0.1, 0.1))):
        result = run_blindspot(get_spec("fashion"), small_checkpoint("fashion"), transform,
                               settings, 10, split=split, cache_dir=None, echo=lambda *_: None)
        np.testing.assert_array_equal(result.transformed, transform(x))
        assert result.thresholds == pytest.approx(thresholds)
        assert result.summary()["transform"] == transform.name
    with pytest.raises(BsattackError):
        run_blindspot(get_spec("fashion"), small_checkpoint("fashion"), Shift("blur", 0.5),
                      settings, 0, split=split, cache_dir=None)


def test_setting_accuracies_match_an_independent_forward_pass(small_checkpoint, small_split):
    from bsattack.shifts import ORIGINAL, BlindSpot, Shift
    split = small_split("fashion")
    settings = [ORIGINAL, BlindSpot(0.8, 0.1), Shift("rotate", 10)]
    got = beyond.accuracies(get_spec("fashion"), small_checkpoint("fashion"), settings,
                            split.test_x[:300], split.test_y[:300])
    x = split.test_x[:300]
    for s, images in zip(settings, [x, to_01(blindspot(to_pm(x), 0.8, 0.1)),
                                    to_01(Shift("rotate", 10)(to_pm(x)))]):
        expected = models.accuracy(get_spec("fashion"), small_checkpoint("fashion"), images,
                                   split.test_y[:300])
        assert got[s.name] == pytest.approx(expected)
