"""`attack` (challenge-format files, cached and resumable) and `leaderboard` (the project's
rows next to the published boards) on the fixture checkpoint and data."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from bsattack import challenge, challenge_attack, leaderboard, models
from conftest import FIXTURE_VALIDATION_SIZE

N = 40


def cli_args(small_checkpoint, fixture_data_dir, *extra):
    return ["--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"), "--data-dir",
            fixture_data_dir, "--validation-size", str(FIXTURE_VALIDATION_SIZE), "--n", str(N),
            *map(str, extra)]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(challenge_attack, "CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("attack", ["pgd", "pgd-cw", "cw"])
def test_attack_file_is_valid_and_scores_as_printed(attack, small_checkpoint, small_split,
                                                     fixture_data_dir, cache_dir, tmp_path):
    out = tmp_path / "attack.npy"
    runner = CliRunner()
    result = runner.invoke(cli.main, ["attack", *cli_args(small_checkpoint, fixture_data_dir,
                                                          "--attack", attack, "--out", out)])
    assert result.exit_code == 0, result.output
    x = np.load(out)
    split = small_split("mnist")
    clean, labels = split.test_x[:N], split.test_y[:N]
    assert x.shape == (N, 784) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and np.abs(x - clean).max() <= 0.3 + 1e-6
    adv_acc = models.accuracy("mnist", small_checkpoint("mnist"), x, labels)
    nat_acc = models.accuracy("mnist", small_checkpoint("mnist"), clean, labels)
    assert adv_acc < nat_acc                       # the narrow fixture model is not robust
    assert f"on it: {100 * adv_acc:.2f}%" in result.output
    scored = runner.invoke(cli.main, ["evaluate", *cli_args(small_checkpoint, fixture_data_dir,
                                                            "--attack-file", out, "--pred-out",
                                                            tmp_path / "pred.npy")])
    assert scored.exit_code == 0, scored.output
    assert f"Accuracy: {100 * adv_acc:.2f}%" in scored.output


def test_attack_resumes_from_cached_chunks(small_checkpoint, small_split, cache_dir,
                                           monkeypatch):
    monkeypatch.setattr(challenge_attack, "CHUNK", 15)
    settings = challenge_attack.settings_for("pgd", "mnist")
    calls = []
    real_run = challenge_attack._Runner.run

    def flaky(self, x01, y, first_id, progress):
        calls.append(first_id)
        if first_id == 15 and len(calls) == 2:
            raise KeyboardInterrupt            # the run is killed in the second chunk
        return real_run(self, x01, y, first_id, progress)
    monkeypatch.setattr(challenge_attack._Runner, "run", flaky)
    split = small_split("mnist")
    with pytest.raises(KeyboardInterrupt):
        challenge_attack.adversarial_examples(settings, small_checkpoint("mnist"), split, N)
    first = challenge_attack.adversarial_examples(settings, small_checkpoint("mnist"), split, 15)
    assert calls == [0, 15]                    # chunk 0 came from the cache
    counted = []
    full = challenge_attack.adversarial_examples(settings, small_checkpoint("mnist"), split, N,
                                                 progress=counted.append)
    assert calls == [0, 15, 15, 30]            # only the missing chunks were attacked
    np.testing.assert_array_equal(full[:15], first)
    assert sum(counted) == N * settings.restarts
    clean, _ = challenge.clean_test_images(split, "mnist", N)
    assert challenge.check_attack(full, clean, "mnist") <= 0.3 + 1e-6


def test_leaderboard_rows_and_published_tables(small_checkpoint, small_split, fixture_data_dir,
                                               cache_dir, tmp_path):
    out = tmp_path / "board.md"
    result = CliRunner().invoke(cli.main, ["leaderboard", *cli_args(
        small_checkpoint, fixture_data_dir, "--attacks", "pgd", "--restarts", "2", "--out", out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    split = small_split("mnist")
    nat = models.accuracy("mnist", small_checkpoint("mnist"), split.test_x[:N], split.test_y[:N])
    assert f"| no attack (natural accuracy) | {100 * nat:.2f}% |" in text
    assert "mnist_small/checkpoint-300" in text and f"first {N} mnist test images" in text
    with open(leaderboard.LEADERBOARDS_PATH) as handle:
        published = json.load(handle)["mnist"]
    for kind in ("white_box", "black_box"):
        for entry in published[kind]["entries"]:
            assert f"| {entry['rank']} | {entry['attack']} | {entry['submitter']} | " \
                   f"{entry['accuracy']:.2f}% |" in text
    white = text.split("## Published white-box")[1].split("## Published black-box")[0]
    black = text.split("## Published black-box")[1]
    ours = text.split("## Published white-box")[0]
    assert "| attack (this project) |" in ours
    for kind, board in (("white_box", white), ("black_box", black)):
        # the published boards stay as published, without the project's rows
        rows = [line for line in board.splitlines() if line.startswith("| ") and "%" in line]
        accuracies = [float(line.split("|")[4].strip(" %")) for line in rows]
        assert accuracies == sorted(accuracies)
        assert len(rows) == len(published[kind]["entries"])


def test_published_boards_are_consistent():
    with open(leaderboard.LEADERBOARDS_PATH) as handle:
        boards = json.load(handle)
    sizes = {("mnist", "white_box"): 18, ("mnist", "black_box"): 8,
             ("cifar10", "white_box"): 11, ("cifar10", "black_box"): 4}
    for (dataset, kind), size in sizes.items():
        entries = boards[dataset][kind]["entries"]
        assert [e["rank"] for e in entries] == list(range(1, size + 1))
        assert [e["accuracy"] for e in entries] == sorted(e["accuracy"] for e in entries)
        assert boards[dataset]["source"].startswith("https://github.com/MadryLab/")
    assert boards["mnist"]["white_box"]["entries"][12]["accuracy"] == 89.62
    assert boards["cifar10"]["white_box"]["entries"][7]["accuracy"] == 47.04


def test_unknown_attack_is_one_line_error(small_checkpoint, fixture_data_dir, cache_dir):
    result = CliRunner().invoke(cli.main, ["leaderboard", *cli_args(
        small_checkpoint, fixture_data_dir, "--attacks", "pgd,fgsm")])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: unknown attack 'fgsm' (known: pgd, pgd-cw, cw)"


def test_cifar10_attack_file_in_0_255_and_evaluate(tmp_path, cache_dir):
    """CIFAR rules end to end on the synthetic data set and the narrow CIFAR checkpoint:
    the file is (N, 32, 32, 3) in [0, 255], ε = 8 on that scale, and evaluate accepts it."""
    from cifar_synthetic import write_dataset
    from conftest import FIXTURES
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    _, _, test_x, test_y = write_dataset(folder, per_batch=8, n_test=12, seed=3)
    small = os.path.join(FIXTURES, "checkpoints", "cifar10_small")
    common = ["--dataset", "cifar10", "--checkpoint", small, "--data-dir", str(folder.parent),
              "--n", "12"]
    out = tmp_path / "attack.npy"
    runner = CliRunner()
    result = runner.invoke(cli.main, ["attack", *common, "--attack", "pgd", "--out", out,
                                      "--batch-size", "12"])
    assert result.exit_code == 0, result.output
    x = np.load(out)
    assert x.shape == (12, 32, 32, 3) and x.min() >= 0 and x.max() <= 255
    assert np.abs(x - test_x.astype(np.float64)).max() <= 8 + 1e-4
    scored = runner.invoke(cli.main, ["evaluate", *common, "--attack-file", out,
                                      "--pred-out", tmp_path / "pred.npy"])
    assert scored.exit_code == 0, scored.output
    pred = np.load(tmp_path / "pred.npy")
    assert f"Accuracy: {100 * np.mean(pred == test_y):.2f}%" in scored.output
    expected = models.accuracy("cifar10", small, x.astype(np.float32) / 255, test_y)
    assert f"Accuracy: {100 * expected:.2f}%" in scored.output
    over = test_x.astype(np.float32)
    over[1, 2, 3, 0] += 8.0002 if over[1, 2, 3, 0] < 200 else -8.0002
    np.save(out, over)
    refused = runner.invoke(cli.main, ["evaluate", *common, "--attack-file", out])
    assert refused.exit_code == 1 and "1 of 12 images are over budget" in refused.output
