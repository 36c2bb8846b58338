"""The results page rendered from a small, hand-made set of summaries: its numbers are the
inputs' (rates, Wilson intervals in closed form), its verdicts follow the stated rules; and
``reproduce --quick`` on the fixtures writes it."""
import json
import math
import os
import re
import subprocess
import sys

import pytest

from bsattack import claims
from bsattack.datasets import DATASETS
from bsattack.report import readme
from support import ROOT

Z = 1.959963984540054


def wilson(k, n):
    p = k / n
    centre = (2 * k + Z * Z) / (2 * (n + Z * Z))
    half = Z * math.sqrt(Z * Z + 4 * k * (1 - p)) / (2 * (n + Z * Z))
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def cell(alpha, beta, n, attacked, cw, pgd, worst, only_cw, only_pgd, paper):
    def attack(k):
        return {"eps": k, "alpha_eps": k // 2, "grad_evals": 100 * attacked, "found_by": {}}
    return {"alpha": alpha, "beta": beta, "n": n, "attacked": attacked,
            "thresholds": [alpha * 0.1, 0.1],
            "attacks": {"cw": attack(cw), "pgd": attack(pgd), "worst": attack(worst)},
            "paired": [{"a": "cw", "b": "pgd",
                        "eps": {"only_a": only_cw, "only_b": only_pgd},
                        "alpha_eps": {"only_a": 0, "only_b": 0}}],
            "seconds": 1.0, "new_grad_evals": 100 * attacked, "raw_rate": 1000.0,
            "paper": paper}


def paper_row(alpha, beta, success):
    return {"alpha": alpha, "beta": beta, "accuracy": 86.0, "success_eps": success,
            "success_alpha_eps": None if alpha == 1 else success / 2}


def write_summaries(folder, pgd_ahead=False):
    """Fashion: the blind spots hold (success 100/800 -> 400/800, accuracy 80% -> 79.5%);
    MNIST: they do not (success does not rise); C&W vs PGD as asked."""
    fashion = {"kind": "table", "dataset": "fashion", "table": 3, "eps": 0.1,
               "header": ["command: test"], "attack": "worst case", "checkpoint": "x",
               "cells": [cell(1.0, 0.0, 1000, 800, 90, 80, 100, 15, 5, paper_row(1.0, 0.0, 6.4)),
                         cell(0.9, 0.0, 1000, 795, 390, 380, 400, 12, 2,
                              paper_row(0.9, 0.0, 25.7))]}
    mnist = {"kind": "table", "dataset": "mnist", "table": 2, "eps": 0.3,
             "header": ["command: test"], "attack": "worst case", "checkpoint": "x",
             "cells": [cell(1.0, 0.0, 500, 490, 100, 100, 110, 0, 0, paper_row(1.0, 0.0, 9.7)),
                       cell(0.9, 0.0, 500, 488, 95, 120 if pgd_ahead else 95, 112,
                            0, 25 if pgd_ahead else 0, paper_row(0.9, 0.0, 75.2))]}
    distance = {"kind": "distance", "dataset": "fashion", "extractor": "adv", "figure": 2,
                "header": [], "eps": 0.1, "n": 1000, "attacked": 800, "successes": 100,
                "spearman": 0.3, "p_value": 1e-10, "auroc": 0.6}
    histogram = {"kind": "histogram", "dataset": "fashion", "extractor": "adv", "header": [],
                 "alpha": 0.9, "beta": 0.0, "auroc": 0.52, "n_original": 1000, "n_scaled": 1000,
                 "mean_original": 3.0, "mean_scaled": 3.1}
    table1 = [{"kind": "table1", "dataset": d, "header": [], "row": {
        "avg_kl": kl, "paper_avg_kl": 0.1, "paper_success_pct": 9.7, "accuracy_pct": 97.0,
        "paper_accuracy_pct": 98.2}, "attacked": 800, "successes": k,
        "per_class_kl": {str(c): kl + 0.001 * c for c in range(10)}}
        for d, kl, k in (("fashion", 0.02, 100), ("mnist", 0.05, 200))]
    run = {"command": "python cli.py reproduce --quick", "steps": [
        {"name": "fashion: Table 3", "seconds": 10.0, "new_grad_evals": 5000}],
        "environment": {"versions": {"python": "3", "tensorflow": "2", "numpy": "1",
                                     "platform": "linux"},
                        "cpu": {"model": "cpu", "cores": 2, "flags": ["avx2"]},
                        "checkpoints": [], "data": [], "raw_rates": []},
        "missing": {"cifar10": "the cifar10 data were not available to this run"}}
    files = {"table3_fashion_worst.json": fashion, "table2_mnist_worst.json": mnist,
             "figure2a_fashion_adv.json": distance, "figure5a_fashion_adv.json": histogram,
             "table1_fashion.json": table1[0], "table1_mnist.json": table1[1],
             "reproduce.json": run}
    for name, content in files.items():
        with open(os.path.join(folder, name), "w") as handle:
            json.dump(content, handle)


def claim_rows(text):
    claims_part = text.split("## The paper's claims, checked")[1].split("How each verdict")[0]
    rows = [line for line in claims_part.splitlines() if re.match(r"\| \d+ \|", line)]
    return {int(r.split("|")[1]): r for r in rows}


def test_page_numbers_are_the_inputs_and_verdicts_follow_the_rules(tmp_path):
    write_summaries(tmp_path)
    text = open(readme.write(str(tmp_path), DATASETS.values())[0]).read()
    assert text.splitlines()[0] == "<!-- written by: python cli.py reproduce --quick -->"
    rows = claim_rows(text)
    fashion = next(r for r in rows.values() if "fashion: slightly" in r)
    # the α = 1 success 100/800 with its closed-form Wilson interval
    low, high = wilson(100, 800)
    assert f"12.5% [{low:.1f}, {high:.1f}] (100/800)" in fashion
    assert fashion.rstrip().endswith("**holds** |")
    mnist = next(r for r in rows.values() if "mnist: slightly" in r)
    assert "**does not hold**" in mnist or "**inconclusive**" in mnist
    # table cells: the worst case at α = 0.9 (400 of 795) with its interval
    low, high = wilson(400, 795)
    assert f"{100 * 400 / 795:.2f} [{low:.1f}, {high:.1f}]" in text
    cifar = next(r for r in rows.values() if "cifar10: success rises" in r)
    assert "**cannot be tested here**" in cifar
    cw = next(r for r in rows.values() if "at least as strong as PGD-100" in r)
    assert "**holds**" in cw
    kl = next(r for r in rows.values() if "divergence" in r)
    assert "**holds**" in kl and "cifar10: not run" in kl


def test_pgd_significantly_ahead_makes_the_cw_claim_fail(tmp_path):
    write_summaries(tmp_path, pgd_ahead=True)
    text = readme.render(str(tmp_path), readme.load_summaries(str(tmp_path)), DATASETS.values())
    cw = next(r for r in claim_rows(text).values() if "at least as strong as PGD-100" in r)
    assert "**does not hold**" in cw and "mnist α=0.9 β=0 @ε 25 vs 0" in cw


def newcombe(k1, n1, k2, n2):
    (a_low, a_high), (b_low, b_high) = wilson(k1, n1), wilson(k2, n2)
    a, b = 100 * k1 / n1, 100 * k2 / n2
    return (a - b, a - b - math.hypot(a - a_low, b_high - b),
            a - b + math.hypot(a_high - a, b - b_low))


@pytest.mark.parametrize("n, attacked_scaled, verdict", [
    (2000, 1990, claims.HOLDS),        # 0.5 points fewer correctly classified
    (200, 171, claims.UNSURE),         # 3.5 points on 200 images: the interval includes 2
    (2000, 1800, claims.FAILS)])       # 10 points, its interval above 2
def test_blind_spot_verdicts_follow_the_accuracy_falls_interval(n, attacked_scaled, verdict):
    base_attacked = 2000 if n == 2000 else 178
    table = {"table": 3, "cells": [
        cell(1.0, 0.0, n, base_attacked, 10, 10, 10, 0, 0, paper_row(1.0, 0.0, 6.4)),
        cell(0.9, 0.0, n, attacked_scaled, 150, 150, 150, 0, 0, paper_row(0.9, 0.0, 25.7))]}
    found = claims.check_blind_spots("fashion", table)
    assert found.verdict == verdict
    fall, low, high = newcombe(base_attacked, n, attacked_scaled, n)
    assert f"largest accuracy fall (α = 0.9, β = 0): {fall:+.1f} points [{low:+.1f}, " \
           f"{high:+.1f}]" in found.ours


def test_detectability_verdicts_follow_the_auroc_interval():
    hist = {"extractor": "adv", "alpha": 0.9, "beta": 0.0, "mean_original": 1.0,
            "mean_scaled": 1.0, "n_original": 2000, "n_scaled": 2000}
    assert claims.check_detectability("x", [{**hist, "auroc": 0.55}]).verdict == claims.HOLDS
    assert claims.check_detectability("x", [{**hist, "auroc": 0.80}]).verdict == claims.FAILS
    assert claims.check_detectability("x", [{**hist, "auroc": 0.70}]).verdict == claims.UNSURE


def test_reproduce_quick_writes_the_page(tmp_path, fixture_data_dir, small_checkpoint):
    ckpt = small_checkpoint("fashion")
    command = [sys.executable, "cli.py", "reproduce", "--quick", "--datasets", "fashion",
               "--data-dir", fixture_data_dir, "--validation-size", "100",
               "--fashion-checkpoint", ckpt, "--fashion-natural-checkpoint", ckpt,
               "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    text = open(tmp_path / "quick" / "README.md").read()
    assert text.startswith("<!-- written by: python cli.py reproduce --quick")
    assert "## The paper's claims, checked" in text and "where the time went" in done.stdout
    table = json.load(open(tmp_path / "quick" / "table3_fashion_worst.json"))
    first = table["cells"][0]
    low, high = wilson(first["attacks"]["worst"]["eps"], first["attacked"])
    assert f"[{low:.1f}, {high:.1f}]" in text
    # the verdicts are printed too, one line per claim row of the page
    printed = re.findall(r"^  (\d+)\. (holds|does not hold|inconclusive|cannot be tested "
                         r"here): ", done.stdout, re.M)
    rows = claim_rows(text)
    assert [int(n) for n, _ in printed] == sorted(rows)
    assert all(f"**{verdict}**" in rows[int(n)] for n, verdict in printed)
    table_md = tmp_path / "quick" / "table3_fashion_worst.md"
    before = table_md.read_text().splitlines()
    table_md.write_text("a page an older rendering wrote\n")
    again = subprocess.run(command + ["--report-only"], cwd=ROOT, capture_output=True,
                           text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    rendered = open(tmp_path / "quick" / "README.md").read()
    first = rendered.splitlines()[0]
    assert first.startswith(text.splitlines()[0][:-4] + "; re-rendered by python cli.py "
                            "reproduce --quick") and first.endswith(" --report-only -->")
    assert claim_rows(rendered) == rows
    # the table's Markdown is rendered again from its CSV and JSON: the same page, its header
    # naming the command that rendered it
    after = table_md.read_text().splitlines()
    header_end = next(i for i, line in enumerate(before) if not line.startswith("<!--"))
    assert after[:header_end] == before[:header_end]
    assert after[header_end].startswith("<!-- rendered from table3_fashion_worst.json and "
                                        "table3_fashion_worst.csv by: python cli.py reproduce")
    assert after[header_end + 1:] == before[header_end:]


@pytest.mark.parametrize("page", ["README.md", "results/README.md", "results/quick/README.md",
                                  "bench/README.md", "ARCHITECTURE.md"])
def test_every_repository_path_a_page_names_exists(page):
    path = os.path.join(ROOT, page)
    if not os.path.exists(path):
        pytest.skip(f"{page} not present")
    folder = os.path.dirname(path)
    text = open(path).read()
    missing = []
    for link in re.findall(r"\]\(([^)#\s]+)\)", text):
        if "://" not in link and not os.path.exists(os.path.join(folder, link)):
            missing.append(link)
    for name in re.findall(r"`((?:results|runs|bench|tests|bsattack|docs|checkpoints)/[\w./-]+)`",
                           text):
        if "*" not in name and not os.path.exists(os.path.join(ROOT, name)):
            missing.append(name)
    assert not missing, f"{page} names paths that do not exist: {missing}"


WRITER = re.compile(r"python (cli\.py|bench/\w+\.py)")


def named_writer(path):
    """The command named in the first lines of a results file (PNG: its Description), or None."""
    if path.endswith(".png"):
        from PIL import Image
        with Image.open(path) as image:
            head = image.info.get("Description", "")
    elif path.endswith(".json"):
        head = json.dumps(json.load(open(path)), ensure_ascii=False)[:2000]
    else:
        head = "\n".join(open(path, encoding="utf-8").read().splitlines()[:3])
    found = WRITER.search(head)
    return found.group(0) if found else None


def test_every_file_under_results_names_the_command_that_wrote_it():
    files = [os.path.join(folder, name)
             for folder, _, names in os.walk(os.path.join(ROOT, "results")) for name in names]
    assert len(files) > 20
    assert [os.path.relpath(f, ROOT) for f in files if named_writer(f) is None] == []


def test_a_file_without_its_command_is_found(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bsattack.outputs import save_figure
    fig = plt.figure()
    save_figure(fig, str(tmp_path / "bare.png"))
    save_figure(fig, str(tmp_path / "named.png"), ["command: python cli.py figures"])
    plt.close(fig)
    (tmp_path / "bare.csv").write_text("a,b\n1,2\n")
    assert named_writer(str(tmp_path / "bare.png")) is None
    assert named_writer(str(tmp_path / "bare.csv")) is None
    assert named_writer(str(tmp_path / "named.png")) == "python cli.py"


def test_leaderboard_section_names_its_command_and_counts_forward_evaluations(tmp_path):
    """The page's leaderboard rows: accuracy as correct/n with its Wilson interval, gradient
    and (when a row has them) forward evaluations per image, and the command that wrote it."""
    board = {"kind": "leaderboard", "dataset": "mnist", "n": 200, "checkpoint": "ck",
             "header": ["command: python cli.py leaderboard --n 200", "precision: x"],
             "rows": [{"attack": "pgd", "correct": 150, "accuracy": 0.75, "largest_linf": 0.3,
                       "evals_per_image": 80.0},
                      {"attack": "square", "correct": 140, "accuracy": 0.7, "largest_linf": 0.3,
                       "evals_per_image": 0.0, "forward_evals_per_image": 3210.5}]}
    with open(tmp_path / "leaderboard_mnist.json", "w") as handle:
        json.dump(board, handle)
    text = open(readme.write(str(tmp_path), DATASETS.values())[0]).read()
    section = text.split("## mnist challenge leaderboard")[1]
    assert "written by `python cli.py leaderboard --n 200`" in section
    low, high = wilson(140, 200)
    assert f"| square | 70.00 [{low:.1f}, {high:.1f}] | 0.0 | 3,210.5 |" in section
    assert "| pgd | 75.00" in section and section.count("forward evaluations per image") == 1
    assert re.search(r"\| pgd \| [^|]+ \| 80\.0 \| — \|", section)


def masking_summary(only_square):
    """A masking check (bench/square_check.py's summary) of one setting at two thresholds."""
    def row(threshold, worst, square, only_w, only_s, ids):
        return {"threshold": threshold, "attacked": 200,
                "worst": {"value": worst / 200, "low": 0, "high": 1, "k": worst, "n": 200},
                "square": {"value": square / 200, "low": 0, "high": 1, "k": square, "n": 200},
                "only_worst": only_w, "only_square": only_s, "only_square_ids": ids, "p": 0.5}
    return {"kind": "masking", "command": "python bench/square_check.py --n 200", "n": 200,
            "blocks": [{"dataset": "mnist", "alpha": 0.9, "beta": 0.0, "checkpoint": "ck",
                        "rows": [row(0.27, 70, 68, 4, 2 if only_square else 0,
                                     [36, 48] if only_square else []),
                                 row(0.3, 180, 170, 10, 0, [])]}]}


@pytest.mark.parametrize("only_square", [True, False])
def test_masking_claim_fails_exactly_when_square_alone_fools_an_image(tmp_path, only_square):
    with open(tmp_path / "square_check.json", "w") as handle:
        json.dump(masking_summary(only_square), handle)
    text = open(readme.write(str(tmp_path), DATASETS.values())[0]).read()
    row = next(r for r in claim_rows(text).values() if "not gradient-masked" in r)
    if only_square:
        assert "**does not hold**" in row and "@0.27: only Square 2 (ids 36, 48)" in row
    else:
        assert "**holds**" in row and "ids" not in row
    section = text.split("## Gradient-masking check")[1]
    low, high = wilson(68, 200)
    assert "| mnist α = 0.9, β = 0 | 0.27 | 35.00 [" in section
    assert f"34.00 [{low:.1f}, {high:.1f}]" in section
    assert "written by `python bench/square_check.py --n 200`" in section
    low, high = wilson(70 + (2 if only_square else 0), 200)      # the union: worst + only Square
    union = 100 * (70 + (2 if only_square else 0)) / 200
    assert f"| 0.5 | {union:.2f} [{low:.1f}, {high:.1f}] |" in section


def test_a_tables_cost_is_what_its_cells_recorded_cached_or_not(tmp_path):
    """Gradient and forward evaluations summed over the cells' last attack; the compute time
    only when every cell recorded it (a cell cached before times were kept has none)."""
    write_summaries(tmp_path)
    path = os.path.join(tmp_path, "table3_fashion_worst.json")
    with open(path) as handle:
        table = json.load(handle)
    for cell_, seconds, forward in zip(table["cells"], (2.5, 4.0), (300, 700)):
        cell_["compute_seconds"] = seconds
        cell_["attacks"]["worst"]["forward_evals"] = forward
    with open(path, "w") as handle:
        json.dump(table, handle)
    text = open(readme.write(str(tmp_path), DATASETS.values())[0]).read()
    evals = 100 * 800 + 100 * 795
    assert (f"Cost of the table's attack (its members included), cached or not: {evals:,} "
            "gradient evaluations, 1,000 forward evaluations; 6 s of compute.") in text
    # the MNIST cells recorded no time and no forward evaluations
    assert (f"cached or not: {100 * 490 + 100 * 488:,} gradient evaluations.") in text


@pytest.mark.parametrize("square_alone", [0, 3])
def test_masking_claim_counts_the_tables_square_only_images(square_alone):
    cells = [cell(1.0, 0.0, 2000, 1900, 10, 10, 20, 0, 0, paper_row(1.0, 0.0, 6.4)),
             cell(0.9, 0.0, 2000, 1890, 150, 150, 160, 0, 0, paper_row(0.9, 0.0, 25.7))]
    for c in cells:
        c["attacks"]["worst"]["forward_evals"] = 1000
    cells[1]["attacks"]["worst"]["found_by"] = {"cw": 150, "square": square_alone}
    found = claims.check_masking(None, [{"table": 3, "dataset": "fashion", "cells": cells}])
    assert found.verdict == (claims.FAILS if square_alone else claims.HOLDS)
    assert (f"Table 3 (fashion, first 2,000 test images, Square last in the worst case): only "
            f"Square @ε {square_alone} of 3,790 attacked") in found.ours
    assert ("(α=0.9 β=0: 3)" in found.ours) == bool(square_alone)
    assert claims.check_masking(None, [{"table": 3, "dataset": "fashion",
                                        "cells": cells[:0]}]) is None
