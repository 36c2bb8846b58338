"""Eq. 2 k-NN distance: equal to sklearn's NearestNeighbors (brute force, float64 metric)."""
import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors

from bsattack import distance
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError


def relu_like(rng, n, d=1024):
    return np.maximum(rng.standard_normal((n, d)), 0).astype(np.float32)


def sklearn_knn(test, train, k=5, p=2):
    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", p=p)
    return nn.fit(train.astype(np.float64)).kneighbors(test.astype(np.float64))


def test_equals_sklearn_on_2000_by_5000():
    rng = np.random.default_rng(0)
    test, train = relu_like(rng, 2000), relu_like(rng, 5000)
    ref_dist, ref_idx = sklearn_knn(test, train)
    got = distance.nearest(test, train, k=5, budget_mb=8)    # many blocks
    np.testing.assert_allclose(got.distances, ref_dist, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got.mean, ref_dist.mean(axis=1), atol=1e-4, rtol=0)
    assert (got.indices == ref_idx).mean() > 0.999


def test_progress_counts_every_row():
    rng = np.random.default_rng(1)
    test, train = relu_like(rng, 300, 32), relu_like(rng, 2500, 32)

    class Counter:
        rows = 0

        def update(self, n):
            self.rows += n
    counter = Counter()
    distance.nearest(test, train, budget_mb=0.1, progress=counter)
    assert counter.rows == 300


def test_cancellation_falls_back_to_exact_rows():
    """Far-from-origin points make the float32 expansion ||x||^2 - 2t.x useless; the
    certification must notice and recompute those rows exactly."""
    rng = np.random.default_rng(2)
    train = (1000 + rng.standard_normal((3000, 64))).astype(np.float32)
    test = (1000 + rng.standard_normal((50, 64))).astype(np.float32)
    ref_dist, _ = sklearn_knn(test, train, k=3)
    got = distance.nearest(test, train, k=3)
    np.testing.assert_allclose(got.distances, ref_dist, atol=1e-4, rtol=0)


def test_other_p_equals_sklearn():
    rng = np.random.default_rng(3)
    test, train = relu_like(rng, 200, 50), relu_like(rng, 3000, 50)
    ref_dist, _ = sklearn_knn(test, train, k=4, p=1)
    got = distance.nearest(test, train, k=4, p=1, budget_mb=1)
    np.testing.assert_allclose(got.distances, ref_dist, atol=1e-6, rtol=0)


@pytest.mark.parametrize("cols", [5000, 5120, 700])
def test_smallest_columns_equals_a_full_sort(cols):
    rng = np.random.default_rng(cols)
    scores = rng.integers(0, 50, (40, cols)).astype(np.float32)   # many ties
    got = np.sort(np.take_along_axis(scores, distance.smallest_columns(scores, 10), 1), axis=1)
    np.testing.assert_array_equal(got, np.sort(scores, axis=1)[:, :10])


def test_bad_input_is_a_one_line_error():
    with pytest.raises(BsattackError, match="same d"):
        distance.nearest(np.zeros((3, 4)), np.zeros((5, 3)))
    with pytest.raises(BsattackError, match="k=6"):
        distance.nearest(np.zeros((3, 4)), np.zeros((5, 4)), k=6)
    with pytest.raises(BsattackError, match="NaN"):
        distance.nearest(np.full((3, 4), np.nan), np.zeros((5, 4)))


def test_bin_table_counts_like_a_loop():
    from bsattack.report.distance_figure import bin_table
    rng = np.random.default_rng(6)
    all_d = rng.gamma(4, 2, 900)
    d = all_d[:300]
    attacked, success = rng.random(300) < 0.9, rng.random(300) < 0.3
    rows = bin_table(all_d, d, attacked, success, bins=7)
    assert sum(r["test_images"] for r in rows) == 900
    for i, r in enumerate(rows):
        last = i == len(rows) - 1
        inside = (d >= r["bin_low"]) & ((d <= r["bin_high"]) if last else (d < r["bin_high"]))
        assert r["attacked"] == np.sum(inside & attacked)
        assert r["successes"] == np.sum(inside & attacked & success)


def test_auroc_is_the_pairwise_probability():
    from bsattack.detect import auroc
    rng = np.random.default_rng(7)
    a, b = rng.normal(0, 1, 200), rng.normal(0.5, 1, 150)
    pairs = (b[None, :] > a[:, None]).mean() + 0.5 * (b[None, :] == a[:, None]).mean()
    assert auroc(a, b) == pytest.approx(pairs)


def read_csv(path):
    import csv
    with open(path) as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def test_figures_command_on_fixtures(tmp_path, fixture_data_dir, small_checkpoint, small_split):
    from click.testing import CliRunner

    import cli
    from bsattack import models
    from bsattack.attacks.pgd import PGDSettings
    from bsattack.embed import Embeddings
    from bsattack.experiment import run_blindspot
    from bsattack.shifts import ORIGINAL
    common = ["--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"),
              "--natural-checkpoint", small_checkpoint("fashion"), "--data-dir", fixture_data_dir,
              "--validation-size", "100", "--cache-dir", str(tmp_path / "cache")]
    attack = ["--attack", "pgd", "--pgd-steps", "5", "--n", "100"]
    out = tmp_path / "out"
    result = CliRunner().invoke(cli.main, ["figures", *common, *attack, "--per-class", "20",
                                           "--grid", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    split = small_split("mnist")
    records = run_blindspot(get_spec("mnist"), small_checkpoint("mnist"), ORIGINAL,
                            PGDSettings(steps=5), 100, split=split,
                            cache_dir=str(tmp_path / "cache"))
    emb = Embeddings(get_spec("mnist"), small_checkpoint("fashion"), split, tmp_path / "cache")
    ref_d = sklearn_knn(emb.get("test"), emb.get("train"))[0].mean(axis=1)
    rows = read_csv(out / "figure1b_mnist_nat.csv")
    np.testing.assert_array_equal([int(r["test_images"]) for r in rows],
                                  np.histogram(ref_d, 20)[0])
    assert sum(int(r["attacked"]) for r in rows) == records.correct.sum()
    assert sum(int(r["successes"]) for r in rows) == (records.correct & records.success_eps).sum()
    assert len(read_csv(out / "figure5a_mnist_adv.csv")) == 40
    (table,) = read_csv(out / "table1_mnist.csv")
    accuracy = models.accuracy(get_spec("mnist"), small_checkpoint("mnist"), split.test_x,
                               split.test_y)
    assert float(table["accuracy_pct"]) == pytest.approx(100 * accuracy, abs=0.01)
    assert float(table["success_pct"]) == pytest.approx(
        100 * records.success_eps[records.correct].mean(), abs=0.01)
    assert 0 < float(table["avg_kl"]) < 5
    successes = int((records.correct & records.success_eps).sum())
    correct = int(round(accuracy * len(split.test_y)))
    assert (int(table["successes"]), int(table["attacked"])) == (successes,
                                                                 int(records.correct.sum()))
    assert (int(table["correct"]), int(table["tested"])) == (correct, len(split.test_y))
    md_row = (out / "table1_mnist.md").read_text().splitlines()[-1].split(" | ")
    for k, m in ((successes, int(records.correct.sum())), (correct, len(split.test_y))):
        z = 1.959963984540054                        # Wilson's score interval, closed form
        centre = (k + z * z / 2) / (m + z * z)
        half = z / (m + z * z) * np.sqrt(k * (m - k) / m + z * z / 4)
        low, high = centre - half, centre + half
        assert f"{100 * k / m:.2f} [{100 * low:.1f}, {100 * high:.1f}]" in md_row
    for name in ("figure1a_mnist_adv.png", "figure1b_mnist_nat.png", "figure5b_mnist_nat.png",
                 "table1_mnist.md"):
        assert (out / name).stat().st_size > 0
    bad = CliRunner().invoke(cli.main, ["blindspot-histogram", *common, "--alpha", "0.8",
                                        "--beta", "0.2", "--out", str(out)])
    assert bad.exit_code == 1 and "beta" in bad.output and "Traceback" not in bad.output
    odd = CliRunner().invoke(cli.main, ["kl", *common, "--grid", "5"])
    assert odd.exit_code == 2 and "odd" in odd.output
