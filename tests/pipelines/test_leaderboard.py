"""`attack` (challenge-format files, cached and resumable) and `leaderboard` (the project's
rows next to the published boards) on the fixture checkpoint and data."""
import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import cli
from bsattack import challenge, challenge_attack, chunks, models, stats
from bsattack.pipelines import leaderboard
from bsattack.report.leaderboard import LEADERBOARDS_PATH
from bsattack.datasets import get_spec
from support import FIXTURE_VALIDATION_SIZE

N = 40


def cli_args(small_checkpoint, fixture_data_dir, *extra):
    return ["--dataset", "mnist", "--checkpoint", small_checkpoint("mnist"), "--data-dir",
            fixture_data_dir, "--validation-size", str(FIXTURE_VALIDATION_SIZE), "--n", str(N),
            *map(str, extra)]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(challenge_attack, "CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("attack", [["--attack", "pgd"], ["--attack", "pgd", "--pgd-loss", "cw"],
                                    ["--attack", "cw"], ["--attack", "apgd",
                                                         "--apgd-iterations", "20"]])
def test_attack_file_is_valid_and_scores_as_printed(attack, small_checkpoint, small_split,
                                                     fixture_data_dir, cache_dir, tmp_path):
    out = tmp_path / "attack.npy"
    runner = CliRunner()
    result = runner.invoke(cli.main, ["attack", *cli_args(small_checkpoint, fixture_data_dir,
                                                          *attack, "--out", out)])
    assert result.exit_code == 0, result.output
    x = np.load(out)
    split = small_split("mnist")
    clean, labels = split.test_x[:N], split.test_y[:N]
    assert x.shape == (N, 784) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1 and np.abs(x - clean).max() <= 0.3 + 1e-6
    adv_acc = models.accuracy(get_spec("mnist"), small_checkpoint("mnist"), x, labels)
    nat_acc = models.accuracy(get_spec("mnist"), small_checkpoint("mnist"), clean, labels)
    assert adv_acc < nat_acc                       # the narrow fixture model is not robust
    assert f"on it: {100 * adv_acc:.2f}%" in result.output
    scored = runner.invoke(cli.main, ["evaluate", *cli_args(small_checkpoint, fixture_data_dir,
                                                            "--attack-file", out, "--pred-out",
                                                            tmp_path / "pred.npy")])
    assert scored.exit_code == 0, scored.output
    assert f"Accuracy: {100 * adv_acc:.2f}%" in scored.output


def test_attack_resumes_from_cached_chunks(small_checkpoint, small_split, cache_dir,
                                           monkeypatch):
    from bsattack.attacks.pgd import LinfPGD, PGDSettings
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 15)
    settings = challenge_attack.with_challenge_defaults(PGDSettings(steps=10), get_spec("mnist"),
                                                        given=("steps",))
    assert (settings.steps, settings.step_size) == (10, 0.01)
    calls = []
    real_run = LinfPGD.run

    def flaky(self, x, y, thresholds, ids=None):
        calls.append(int(ids[0]))
        if ids[0] == 15 and len(calls) == 2:
            raise KeyboardInterrupt            # the run is killed in the second chunk
        return real_run(self, x, y, thresholds, ids)
    monkeypatch.setattr(LinfPGD, "run", flaky)
    split = small_split("mnist")
    checkpoint = small_checkpoint("mnist")
    with pytest.raises(KeyboardInterrupt):
        challenge_attack.adversarial_examples(settings, get_spec("mnist"), checkpoint, split, N)
    first = challenge_attack.adversarial_examples(settings, get_spec("mnist"), checkpoint, split,
                                                  15).adversarial
    assert calls == [0, 15]                    # chunk 0 came from the cache
    counted = []
    examples = challenge_attack.adversarial_examples(settings, get_spec("mnist"), checkpoint,
                                                     split, N, progress=counted.append)
    full = examples.adversarial
    # PGD-10 stops at an image's first misclassified iterate: 1..11 evaluations each
    assert ((examples.grad_evals >= 1) & (examples.grad_evals <= 11)).all()
    assert calls == [0, 15, 15, 30]            # only the missing chunks were attacked
    np.testing.assert_array_equal(full[:15], first)
    assert sum(counted) == N
    clean, _ = challenge.clean_test_images(split, get_spec("mnist"), N)
    assert challenge.check_attack(full, clean, get_spec("mnist")) <= 0.3 + 1e-6
    monkeypatch.setattr(LinfPGD, "run", real_run)
    monkeypatch.setattr(chunks, "CHUNK_SIZE", 40)
    fresh = challenge_attack.adversarial_examples(settings, get_spec("mnist"), checkpoint, split, N,
                                                  cache_dir=str(cache_dir / "fresh"))
    np.testing.assert_array_equal(fresh.adversarial, full)   # the file of an uninterrupted run
    np.testing.assert_array_equal(fresh.grad_evals, examples.grad_evals)


def test_leaderboard_rows_and_published_tables(small_checkpoint, small_split, fixture_data_dir,
                                               cache_dir, tmp_path):
    out = tmp_path / "board.md"
    result = CliRunner().invoke(cli.main, ["leaderboard", *cli_args(
        small_checkpoint, fixture_data_dir, "--rows", "pgd", "--pgd-restarts", "2",
        "--pgd-steps", "10", "--out", out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    split = small_split("mnist")
    nat = models.accuracy(get_spec("mnist"), small_checkpoint("mnist"), split.test_x[:N],
                          split.test_y[:N])
    share = stats.wilson(int(round(nat * N)), N)
    assert (f"| no attack (natural accuracy) | {100 * nat:.2f}% "
            f"[{100 * share.low:.1f}, {100 * share.high:.1f}] |") in text
    assert "| pgd: PGD-10 (step 0.01, xent loss, 2 random start(s)" in text
    assert "mnist_small/checkpoint-300" in text and f"first {N} mnist test images" in text
    with open(LEADERBOARDS_PATH) as handle:
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
    with open(LEADERBOARDS_PATH) as handle:
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


@pytest.mark.parametrize("args,message", [
    (["--rows", "pgd,fgsm"],
     "Error: unknown leaderboard rows fgsm (known: pgd, pgd-cw, cw, apgd, apgd-dlr, apgd-t, square, autoattack, worst, worst-square)"),
    (["--rows", "pgd-cw", "--pgd-loss", "xent"], "Error: row pgd-cw sets --pgd-loss cw"),
    (["--rows", "pgd", "--pgd-steps", "nan"], "Error: Invalid value for '--pgd-steps'"),
])
def test_bad_rows_are_one_line_errors(args, message, small_checkpoint, fixture_data_dir,
                                      cache_dir):
    result = CliRunner().invoke(cli.main, ["leaderboard", *cli_args(
        small_checkpoint, fixture_data_dir, *args)])
    assert result.exit_code != 0
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0].startswith(message), result.output
    assert "Traceback" not in result.output


def test_worst_row_is_at_most_every_other_row(small_checkpoint, fixture_data_dir, cache_dir,
                                              tmp_path):
    """The worst case fools every image its members fool (PGD, C&W, then APGD on the rest),
    so its accuracy is at most theirs; on the fixture it is also at most the other rows'."""
    out = tmp_path / "board.md"
    result = CliRunner().invoke(cli.main, ["leaderboard", *cli_args(
        small_checkpoint, fixture_data_dir, "--rows", "pgd,pgd-cw,cw,apgd,apgd-dlr,worst",
        "--pgd-steps", "2", "--pgd-step-size", "0.01", "--max-iterations", "1",
        "--apgd-iterations", "2", "--out", out)])
    assert result.exit_code == 0, result.output
    rows = {line.split("|")[1].strip().split(":")[0]: float(line.split("|")[2].split("%")[0])
            for line in out.read_text().split("## Published")[0].splitlines()
            if line.startswith("| ") and "%" in line and "(this project)" not in line}
    assert set(rows) == {"no attack (natural accuracy)", "pgd", "pgd-cw", "cw", "apgd",
                         "apgd-dlr", "worst"}
    others = [v for k, v in rows.items() if k != "worst"]
    assert all(rows["worst"] <= v for v in others), rows
    assert rows["worst"] < max(rows["pgd"], rows["cw"], rows["apgd"]), rows   # not all 0%
    evals = {line.split("|")[1].strip().split(":")[0]: float(line.split("|")[4].replace(",", ""))
             for line in out.read_text().split("## Published")[0].splitlines()
             if line.startswith("| ") and "%" in line and "(this project)" not in line}
    # the worst case's count is its members' (the pgd and cw rows' own runs) plus APGD's
    # (each shown to 0.1)
    assert evals["worst"] >= evals["pgd"] + evals["cw"] - 0.1 > 0, evals
    assert evals["no attack (natural accuracy)"] == 0


def test_cifar10_attack_file_in_0_255_and_evaluate(tmp_path, cache_dir):
    """CIFAR rules end to end on the synthetic data set and the narrow CIFAR checkpoint:
    the file is (N, 32, 32, 3) in [0, 255], ε = 8 on that scale, and evaluate accepts it."""
    from support import FIXTURES
    from support.cifar_synthetic import write_dataset
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
    expected = models.accuracy(get_spec("cifar10"), small, x.astype(np.float32) / 255, test_y)
    assert f"Accuracy: {100 * expected:.2f}%" in scored.output
    over = test_x.astype(np.float32)
    over[1, 2, 3, 0] += 8.0002 if over[1, 2, 3, 0] < 200 else -8.0002
    np.save(out, over)
    refused = runner.invoke(cli.main, ["evaluate", *common, "--attack-file", out])
    assert refused.exit_code == 1 and "1 of 12 images are over budget" in refused.output
