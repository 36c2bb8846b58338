"""Square: its p schedule, every query inside the ε-ball and the box, forward evaluations
counted query by query, the first misclassified query kept, results per test index (not per
batch), the known optimum of a linear two-class network, and the command line."""
import csv
import os

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner

from bsattack.attacks.model import LogitsModel, Model
from bsattack.attacks.square import Square, SquareSettings, window_fraction
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from cli import main
from support import FIXTURE_VALIDATION_SIZE
from support.plain_model import PlainModel, correctly_classified

TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def mnist(small_checkpoint, small_split):
    checkpoint = small_checkpoint("mnist")
    plain = PlainModel(get_spec("mnist"), checkpoint)
    model = Model(get_spec("mnist"), checkpoint)
    x, y, ids = correctly_classified(plain, small_split("mnist"), 60)
    yield plain, model, x[:10], y[:10], ids[:10]
    model.close()


class Recorder:
    """Wraps ``model.logits``: every query (the rows) and what it answered; gradients refused."""

    def __init__(self, model):
        self.model, self.queries, self.answers = model, [], []
        self.real = model.logits

    def __enter__(self):
        def logits(x, batch_size=500):
            answer = self.real(x, batch_size)
            self.queries.append(np.array(x, copy=True))
            self.answers.append(answer)
            return answer

        def no_gradient(*args, **kwargs):
            raise AssertionError("Square asked for a gradient")
        self.model.logits, self.model.value_and_grad = logits, no_gradient
        return self

    def __exit__(self, *exc):
        del self.model.logits, self.model.value_and_grad

    @property
    def rows(self):
        return np.concatenate(self.queries)


def test_schedule_halves_p_at_autoattacks_iterations():
    p = 0.8
    assert [window_fraction(i, 10000, p, False) for i in (0, 10, 11, 50, 51, 8000, 8001)] == \
        [p, p, p / 2, p / 2, p / 4, p / 256, p / 512]
    # rescaled to 5,000 queries: iteration i stands for ⌊2i⌋ of the 10,000
    assert [window_fraction(i, 5000, p, True) for i in (5, 6, 25, 26)] == [p, p / 2, p / 2, p / 4]
    assert window_fraction(4999, 5000, p, False) == p / 128


@pytest.mark.parametrize("kwargs", [{"queries": 0}, {"restarts": 0}, {"p_init": float("nan")},
                                    {"p_init": 1.5}, {"p_init": 0.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(BsattackError):
        SquareSettings(**kwargs)


@pytest.mark.parametrize("option", [["--square-queries", "0"], ["--square-p-init", "1.5"],
                                    ["--square-p-init", "nan"]])
def test_bad_options_are_one_line_errors(option, small_checkpoint, fixture_data_dir):
    result = CliRunner().invoke(main, ["blindspot", "--dataset", "mnist", "--checkpoint",
                                       small_checkpoint("mnist"), "--data-dir", fixture_data_dir,
                                       "--attack", "square", *option])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error:") and "Traceback" not in result.output, result.output


def test_every_query_is_feasible_and_counted(mnist):
    """Alone, each image's queries are exactly its forward evaluations (≤ queries + 1, all of
    them when it is never fooled), all inside the ball and the box; the queries before the last
    are classified correctly and a fooled image's example is its last query; in batches of 3
    the results are the same (every draw keyed by the test index)."""
    plain, model, x, y, ids = mnist
    eps, settings = 0.12, SquareSettings(queries=40, batch_size=3)
    with Recorder(model) as batched:
        together = Square(model, settings).run(x, y, (eps,), ids)
    assert batched.rows.shape[0] == together.forward_evals.sum()
    assert not together.grad_evals.any()
    assert 0 < together.found.sum() < len(x), together.found
    for i in range(len(x)):
        with Recorder(model) as alone:
            single = Square(model, settings).run(x[i:i + 1], y[i:i + 1], (eps,), ids[i:i + 1])
        queries, answers = alone.rows, np.concatenate(alone.answers)
        assert len(queries) == single.forward_evals[0] == together.forward_evals[i]
        assert np.abs(queries - x[i]).max() <= eps + TOLERANCE
        assert queries.min() >= model.bounds[0] and queries.max() <= model.bounds[1]
        predicted = answers.argmax(axis=1)
        assert (predicted[:-1] == y[i]).all()
        if single.found[0]:
            assert predicted[-1] != y[i] and len(queries) <= settings.queries + 1
            np.testing.assert_array_equal(single.adversarial[0], queries[-1])
            assert plain.predict(single.adversarial)[0] != y[i]
        else:
            assert predicted[-1] == y[i] and len(queries) == settings.queries + 1
        np.testing.assert_array_equal(single.adversarial[0], together.adversarial[i])
        assert single.linf[0] == together.linf[i]
    for batch in batched.queries:             # the batch's queries, all feasible
        near = np.abs(batch[:, None, :] - x[None]).max(axis=2).min(axis=1)
        assert near.max() <= eps + TOLERANCE


def test_two_thresholds_add_the_queries(mnist):
    """An image fooled at the smaller threshold is decided; the others are attacked again at
    the larger one and their queries add up."""
    _, model, x, y, ids = mnist
    settings = SquareSettings(queries=30)
    small, large = (Square(model, settings).run(x, y, (t,), ids) for t in (0.05, 0.12))
    both = Square(model, settings).run(x, y, (0.05, 0.12), ids)
    expected = small.forward_evals + np.where(small.found, 0, large.forward_evals)
    np.testing.assert_array_equal(both.forward_evals, expected)
    np.testing.assert_array_equal(both.success(0.12), small.found | large.found)
    assert (both.forward_evals > settings.queries + 1).any()


def test_the_test_index_keys_the_draws(mnist):
    _, model, x, y, ids = mnist
    starts = []
    for image_id in (ids[0], ids[0] + 1000):
        with Recorder(model) as recorder:
            Square(model, SquareSettings(queries=1)).run(x[:1], y[:1], (0.12,), [image_id])
        starts.append(recorder.queries[0])
    assert np.abs(starts[0] - starts[1]).max() > 0


def test_reaches_the_optimum_of_a_linear_two_class_network():
    """Logits W x + b with two competing classes: the smallest margin within the ε-ball is
    m(x) − ε‖w_y − w_o‖₁ (at the corner x − ε·sign(w_y − w_o)); Square must fool exactly the
    images whose smallest margin is negative (by a clear gap, so float rounding cannot
    decide)."""
    rng = np.random.default_rng(3)
    height, width = 3, 4
    dim = height * width
    w = np.concatenate([rng.normal(size=(dim, 2)), np.zeros((dim, 1))], 1).astype(np.float32)
    b = np.array([0, 0, -1e3], np.float32)    # a third class that never competes (the
                                              # oracle's DLR loss needs three)
    model = LogitsModel(lambda t: tf.matmul(t, tf.constant(w)) + tf.constant(b), dim,
                        (-10.0, 10.0), image_shape=(height, width, 1))
    x = rng.uniform(-1, 1, size=(200, dim)).astype(np.float32)
    logits = (x @ w + b)[:, :2]
    y = logits.argmax(axis=1)
    eps = 0.1
    diff = np.where(y[:, None] == 0, w[:, 0] - w[:, 1], w[:, 1] - w[:, 0])
    best_margin = np.abs(logits[:, 0] - logits[:, 1]) - eps * np.abs(diff).sum(axis=1)
    clear = np.abs(best_margin) > 0.05
    result = Square(model, SquareSettings(queries=300)).run(x[clear], y[clear], (eps,),
                                                            np.flatnonzero(clear))
    should = best_margin[clear] < 0
    assert 0 < should.sum() < len(should)
    np.testing.assert_array_equal(result.found, should)
    model.close()


def test_image_shape_must_hold_the_inputs():
    with pytest.raises(BsattackError):
        LogitsModel(lambda t: t, 12, (0.0, 1.0), image_shape=(3, 3, 1))


def test_blindspot_records_forward_evaluations(small_checkpoint, fixture_data_dir, tmp_path):
    """Square's records carry forward_evals and the closing line names them; PGD's records
    keep the columns they had."""
    common = ["blindspot", "--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"),
              "--data-dir", fixture_data_dir, "--validation-size", str(FIXTURE_VALIDATION_SIZE),
              "--n", "12", "--alpha", "0.9", "--beta", "0.05", "--cache-dir",
              str(tmp_path / "cache")]
    runs = {}
    for attack in (["--attack", "square", "--square-queries", "15"],
                   ["--attack", "pgd", "--pgd-steps", "3"]):
        out = tmp_path / attack[1]
        result = CliRunner().invoke(main, [*common, *attack, "--out", str(out)])
        assert result.exit_code == 0, result.output
        stem = os.path.join(out, f"mnist_{attack[1]}_a0.9_b0.05.csv")
        with open(stem) as handle:
            rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
        runs[attack[1]] = (result.output, rows)
    output, rows = runs["square"]
    forward = [int(r["forward_evals"]) for r in rows if r["correct"] == "True"]
    assert sum(forward) > 0 and max(forward) <= 2 * 16
    assert all(r["grad_evals"] == "0" for r in rows)
    assert f"0 gradient evaluations and {sum(forward):,} forward evaluations" in output
    output, rows = runs["pgd"]
    assert "forward_evals" not in rows[0] and "forward evaluations" not in output


def test_chunks_cached_before_forward_evaluations_read_as_zeros():
    from bsattack import experiment
    np.testing.assert_array_equal(experiment._forward_evals({"linf": np.zeros(3)}),
                                  np.zeros(3, np.int64))
