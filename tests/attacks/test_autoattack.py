"""AutoAttack without FAB-T: its standard settings, the cascade (each member only on the images
the earlier ones left, success the OR of the members', evaluations summed), its options and
the leaderboard rows of Square and AutoAttack on the fixture checkpoint."""
import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

import cli
from bsattack.pipelines.leaderboard import Row
from bsattack.report import leaderboard as board_page
from bsattack.attacks import registry
from bsattack.attacks.apgd import APGD, APGDSettings
from bsattack.attacks.apgd_targeted import APGDTargeted, APGDTSettings
from bsattack.attacks.autoattack import AutoAttack, AutoAttackSettings
from bsattack.attacks.model import Model
from bsattack.attacks.square import Square, SquareSettings
from bsattack.commands.attack_options import attack_options, settings_from_options
from bsattack.datasets import get_spec
from support import FIXTURE_VALIDATION_SIZE
from support.plain_model import PlainModel, correctly_classified, recording_build

# small members, in an order in which each one fools some of the images the earlier ones left
# on the fixture network (the standard order's APGD-CE leaves its successors none there)
SMALL = AutoAttackSettings(cascade=(SquareSettings(queries=30),
                                    APGDTSettings(iterations=1, targets=1),
                                    APGDSettings(iterations=10)))


@pytest.fixture(scope="module")
def mnist(small_checkpoint, small_split):
    checkpoint = small_checkpoint("mnist")
    plain = PlainModel(get_spec("mnist"), checkpoint)
    model = Model(get_spec("mnist"), checkpoint)
    yield (plain, model, *correctly_classified(plain, small_split("mnist"), 80))
    model.close()


def test_default_settings_are_autoattacks_standard_version():
    settings = registry.get("autoattack").settings()
    apgd, apgd_t, square = settings.cascade
    assert settings.full == () and [s.name for s in settings.members] == ["apgd", "apgd-t",
                                                                          "square"]
    assert (apgd.loss, apgd.iterations, apgd.restarts) == ("ce", 100, 1)
    assert (apgd_t.targets, apgd_t.iterations, apgd_t.restarts) == (9, 100, 1)
    assert (square.queries, square.p_init, square.restarts) == (5000, 0.8, 1)
    assert not square.rescale_schedule          # AutoAttack's standard version: not rescaled
    assert settings.uses_forward_queries and "without FAB-T" in settings.describe()
    assert registry.get("square").settings().rescale_schedule


def test_cascade_runs_each_member_on_what_the_earlier_ones_left(mnist):
    """At one threshold: the first member on every image, the second on the ones it left,
    the third on the ones both left; success = OR of the three, the example of the member
    that found it, gradient evaluations from the APGDs and forward evaluations from Square."""
    plain, model, x, y, ids = mnist
    x, y, ids, eps = x[:40], y[:40], ids[:40], 0.1
    seen = []
    result = AutoAttack(model, SMALL, recording_build(seen)).run(x, y, (eps,), ids)
    success, left = np.zeros(len(x), bool), np.arange(len(x))
    grad, forward = np.zeros(len(x), np.int64), np.zeros(len(x), np.int64)
    name, expected_seen = np.full(len(x), "", object), []
    for kind, member in zip((Square, APGDTargeted, APGD), SMALL.cascade):
        assert 0 < len(left), member
        expected_seen.append((member.name, list(ids[left])))
        part = kind(model, member).run(x[left], y[left], (eps,), ids[left])
        success[left] = part.success(eps)
        grad[left] += part.grad_evals
        forward[left] += part.forward_evals
        name[left[part.found]] = member.name
        left = left[~part.found]
    assert seen == expected_seen
    assert set(name) == {"", "apgd", "apgd-t", "square"}, name    # each member finds some
    np.testing.assert_array_equal(result.success(eps), success)
    np.testing.assert_array_equal(result.found_by, name)
    np.testing.assert_array_equal(result.grad_evals, grad)
    np.testing.assert_array_equal(result.forward_evals, forward)
    np.testing.assert_array_equal(result.found, plain.predict(result.adversarial) != y)
    assert np.abs(result.adversarial - x).max() <= eps + 1e-6


def test_options_reach_the_members():
    made = []

    @click.command()
    @attack_options
    def show(**options):
        made.append(settings_from_options(options))

    result = CliRunner().invoke(show, ["--attack", "autoattack", "--square-queries", "7",
                                       "--apgd-t-targets", "4", "--seed", "3"])
    assert result.exit_code == 0, result.output
    apgd, apgd_t, square = made[0].cascade
    assert (square.queries, apgd_t.targets, square.seed, made[0].seed) == (7, 4, 3, 3)
    assert not square.rescale_schedule
    refused = CliRunner().invoke(show, ["--attack", "autoattack", "--pgd-steps", "3"])
    assert "--pgd-steps applies to the pgd attack" in str(refused.exception)


def test_leaderboard_rows_show_forward_evaluations(small_checkpoint, fixture_data_dir, tmp_path,
                                                   monkeypatch):
    from bsattack import challenge_attack
    monkeypatch.setattr(challenge_attack, "CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "board.md"
    result = CliRunner().invoke(cli.main, [
        "leaderboard", "--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"),
        "--data-dir", fixture_data_dir, "--validation-size", str(FIXTURE_VALIDATION_SIZE),
        "--n", "30", "--rows", "apgd,square,autoattack", "--apgd-iterations", "3",
        "--apgd-t-iterations", "3", "--apgd-t-targets", "2", "--square-queries", "20",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    board = out.read_text()
    assert ("| attack (this project) | accuracy [Wilson 95%] | largest L∞ | gradient evaluations "
            "per image | forward evaluations per image |") in board
    cells = {line.split("|")[1].strip().split(":")[0]: [c.strip() for c in line.split("|")[2:-1]]
             for line in board.splitlines() if line.startswith("| ") and "%" in line
             and ":" in line.split("|")[1]}
    assert cells["apgd"][3] == "—" and float(cells["apgd"][2]) > 0
    assert cells["square"][2] == "0.0" and 0 < float(cells["square"][3]) <= 21
    # at the challenge's ε the fixture network leaves Square nothing after the APGDs
    assert float(cells["autoattack"][2]) > 0 and float(cells["autoattack"][3]) >= 0
    accuracy = {k: float(v[0].split("%")[0]) for k, v in cells.items()}
    assert accuracy["autoattack"] <= accuracy["apgd"]     # APGD-CE is its first member
    rows = {r["attack"].split(":")[0]: r for r in json.loads(out.with_suffix(".json")
                                                             .read_text())["rows"]}
    assert "forward_evals_per_image" not in rows["apgd"]
    assert f"{rows['square']['forward_evals_per_image']:,.1f}" == cells["square"][3]
    assert "forward evaluations per image" in result.output


def test_boards_without_forward_queries_keep_their_columns(monkeypatch):
    monkeypatch.setattr(board_page, "checkpoint_label", lambda checkpoint: "fixture")
    text = board_page.render(get_spec("fashion"), None, 10, [Row("pgd: PGD", 0.5, 0.3, 100.0)])
    lines = text.splitlines()
    start = lines.index("| attack (this project) | accuracy [Wilson 95%] | largest L∞ | gradient "
                        "evaluations per image |")
    assert lines[start + 1:start + 3] == ["| --- | --- | --- | --- |",
                                          "| pgd: PGD | 50.00% [23.7, 76.3] | 0.3000 | 100.0 |"]
