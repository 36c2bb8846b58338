"""The worst case's Square member (``--worst-square-queries``, 0 leaves it out): it runs last,
only on the images every gradient member left at each threshold."""
from dataclasses import replace

import click
import numpy as np
import pytest
from click.testing import CliRunner

from bsattack.attacks.apgd import APGD, APGDSettings
from bsattack.attacks.model import Model
from bsattack.attacks.pgd import PGDSettings
from bsattack.attacks.square import Square
from bsattack.attacks.worst import WorstCase, WorstSettings
from bsattack.commands.attack_options import attack_options, settings_from_options
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from support.plain_model import PlainModel, correctly_classified, recording_build


def test_square_is_appended_once_and_only_when_asked():
    default, gradient_only = WorstSettings(), WorstSettings(square_queries=0)
    assert [s.name for s in default.cascade] == ["apgd", "apgd-t"]
    assert [s.name for s in gradient_only.cascade_stages] == ["apgd", "apgd-t"]
    assert default.cascade_stages[-1].queries == 2000 and default.uses_forward_queries
    with_square = WorstSettings(square_queries=40, batch_size=7, seed=2)
    *gradient, square = with_square.cascade_stages
    assert [s.name for s in gradient] == ["apgd", "apgd-t"] and square.name == "square"
    assert (square.queries, square.batch_size, square.seed) == (40, 7, 2)
    assert with_square.uses_forward_queries and not gradient_only.uses_forward_queries
    assert with_square.key() != default.key() != gradient_only.key() and "Square (40 queries" in with_square.describe()
    # rebuilding (as the option handling does) keeps one Square member; the query count
    # alone decides whether it runs, and how long
    again = with_square.map_members(lambda s: s)
    assert [s.name for s in again.cascade_stages].count("square") == 1
    assert replace(with_square, square_queries=0).key() == gradient_only.key()
    assert replace(with_square, square_queries=80).cascade_stages[-1].queries == 80
    assert [s.name for s in with_square.members] == ["cw", "pgd", "apgd", "apgd-t", "square"]
    with pytest.raises(BsattackError, match="must be >= 0"):
        WorstSettings(square_queries=-1)


def _settings(args):
    made = []

    @click.command()
    @attack_options
    def show(**options):
        made.append(settings_from_options(options))

    result = CliRunner().invoke(show, args)
    return made[0] if made else result


def test_the_option_and_squares_own_options_reach_the_member():
    settings = _settings(["--attack", "worst", "--worst-square-queries", "25",
                          "--square-p-init", "0.5", "--seed", "4"])
    square = settings.cascade_stages[-1]
    assert (square.name, square.queries, square.p_init, square.seed) == ("square", 25, 0.5, 4)
    assert _settings(["--attack", "worst"]).key() == WorstSettings().key()
    # Square is a member, but the worst case sets its query count (never ignored silently)
    refused = _settings(["--attack", "worst", "--square-queries", "25"])
    assert "--square-queries does not apply to --attack worst" in str(refused.exception)
    refused = _settings(["--attack", "worst", "--worst-square-queries", "0",
                         "--square-p-init", "0.5"])
    assert "--square-p-init applies to the square attack" in str(refused.exception)
    refused = _settings(["--attack", "pgd", "--worst-square-queries", "25"])
    assert "--worst-square-queries applies to the worst attack" in str(refused.exception)
    # 0 leaves Square out; below it, click's own range error
    assert _settings(["--attack", "worst", "--worst-square-queries", "0"]).key() == \
        WorstSettings(square_queries=0).key()
    below = _settings(["--attack", "worst", "--worst-square-queries", "-1"])
    assert below.exit_code == 2 and "x>=0" in below.output


def test_square_runs_last_on_the_images_the_gradient_members_left(small_checkpoint, small_split):
    checkpoint = small_checkpoint("mnist")
    plain, model = PlainModel(get_spec("mnist"), checkpoint), Model(get_spec("mnist"), checkpoint)
    try:
        x, y, ids = correctly_classified(plain, small_split("mnist"), 40)
        limits = (0.05, 0.1)
        settings = WorstSettings(full=(PGDSettings(steps=1, step_size=0.001),),
                                 cascade=(APGDSettings(iterations=1),), square_queries=200)
        seen = []
        result = WorstCase(model, settings, build=recording_build(seen)).run(x, y, limits, ids)
        # per threshold, largest first: APGD on what the full members left, then Square on
        # exactly what APGD left too (below the largest, only images fooled at the larger one)
        runs = [(name, attacked) for name, attacked in seen if name in ("apgd", "square")]
        assert [name for name, _ in runs] == ["apgd", "square", "apgd", "square"]
        rows = {int(i): k for k, i in enumerate(ids)}
        forward = np.zeros(len(x), np.int64)
        for (_, apgd_ids), (_, square_ids), limit in zip(runs[0::2], runs[1::2],
                                                         sorted(limits, reverse=True)):
            at = [rows[int(i)] for i in apgd_ids]
            apgd = APGD(model, settings.cascade[0]).run(x[at], y[at], (limit,), ids[at])
            assert square_ids == [i for i, hit in zip(apgd_ids, apgd.success(limit)) if not hit]
            at = [rows[int(i)] for i in square_ids]
            square = Square(model, settings.cascade_stages[-1]).run(x[at], y[at], (limit,), ids[at])
            forward[at] += square.forward_evals
            assert np.all(square.forward_evals[~square.found] == 201)   # queries + 1 each
        assert len(runs[1][1]) > 0
        np.testing.assert_array_equal(result.forward_evals, forward)
        assert np.all(result.found == (plain.predict(result.adversarial) != y))
        assert np.abs(result.adversarial - x).max() <= max(limits) + 1e-6
    finally:
        model.close()
