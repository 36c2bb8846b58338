"""The results page (``README.md`` of a reproduction's folder), rendered from the
machine-readable summaries the steps wrote there (``*.json``) and the run's record
(``reproduce.json``: command, steps, environment).  No number on the page is typed: each comes
from those files, each rate with its Wilson 95% interval, each claim with its verdict
(:mod:`bsattack.claims`).  Renders; runs nothing.
"""
import glob
import json
import os

from bsattack import claims, stats
from bsattack.outputs import save_text
from bsattack.precision import stated
from bsattack.report.tables import rate_with_interval as _rate

RECORD = "reproduce.json"


def load_summaries(folder):
    """{kind: [summary, ...]} of every ``*.json`` summary in ``folder`` (the run's record
    under 'run'), each with its file name under 'file'."""
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as handle:
            summary = json.load(handle)
        summary["file"] = os.path.basename(path)
        kind = "run" if summary["file"] == RECORD else summary.get("kind")
        if kind:
            found.setdefault(kind, []).append(summary)
    return found


def _link(folder, name):
    """A Markdown link to ``name`` when it exists in ``folder``, else the bare name."""
    return f"[{name}]({name})" if os.path.exists(os.path.join(folder, name)) else name


def claim_list(found, missing, specs):
    """Every checked claim, in the page's order; ``specs``: the data sets' specs (the paper's
    Table 1 and figure numbers)."""
    specs = {spec.name: spec for spec in specs}
    tables = {t["dataset"]: t for t in found.get("table", [])}
    out = [claims.check_blind_spots(d, t) for d, t in tables.items()]
    distance = {}
    for fig in found.get("distance", []):
        distance.setdefault(fig["dataset"], []).append(fig)
    out += [claims.check_distance(d, figs) for d, figs in distance.items()]
    histograms = {}
    for hist in found.get("histogram", []):
        histograms.setdefault(hist["dataset"], []).append(hist)
    out += [claims.check_detectability(d, h) for d, h in histograms.items()]
    rows = {t["dataset"]: t for t in found.get("table1", [])}
    paper = {name: spec.paper.table1 for name, spec in specs.items()
             if spec.paper.table1[0] is not None}
    out.append(claims.check_kl_order(rows, paper, {d: why for d, why in missing.items()
                                                   if d in paper and d not in rows}))
    out.append(claims.check_cw_vs_pgd(tables))
    checks = found.get("masking", []) or [None]
    masking = [claims.check_masking(check, list(tables.values()) if i == 0 else ())
               for i, check in enumerate(checks)]
    out += [claim for claim in masking if claim is not None]
    for dataset, why in missing.items():
        spec = specs[dataset]
        if spec.paper.figure:
            out.append(claims.untestable(
                f"{dataset}: success rises with the distance D",
                f"Figure {spec.paper.figure}", why))
    return out


def _claims_table(items):
    lines = ["| # | claim | paper's evidence | ours (95% interval) | verdict |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {i} | {c.claim} | {c.paper} | {c.ours} | **{c.verdict}** |"
              for i, c in enumerate(items, 1)]
    lines += ["", "How each verdict is decided:", ""]
    lines += [f"{i}. {c.rule}." for i, c in enumerate(items, 1)]
    return lines


def _table_section(folder, table):
    eps = table["eps"]
    cells = [c for c in table["cells"] if "attacks" in c]
    names = list(cells[0]["attacks"]) if cells else []
    stem = table["file"][:-5]
    lines = [f"### Table {table['table']} ({table['dataset']}, ε = {eps:g})", "",
             f"Files: {_link(folder, stem + '.md')}, {_link(folder, stem + '.csv')}. "
             f"Attack: {table['attack']}. Success over the attacked (correctly classified) "
             f"images, % [Wilson 95%]; the paper's columns are its C&W L∞ on its models.", ""]
    head = ["α", "β", "accuracy %"] + [f"{n} @{eps:g}" for n in names] + [
        f"{names[-1]} @α·{eps:g}" if names else "", "paper accuracy %", f"paper @{eps:g}",
        f"paper @α·{eps:g}"]
    lines += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for cell in table["cells"]:
        paper = cell["paper"]
        row = [f"{paper['alpha']:g}", f"{paper['beta']:g}"]
        if "attacks" in cell:
            row.append(_rate(cell["attacked"], cell["n"]))
            row += [_rate(cell["attacks"][n]["eps"], cell["attacked"]) for n in names]
            row.append(_rate(cell["attacks"][names[-1]]["alpha_eps"], cell["attacked"])
                       if cell["alpha"] < 1 else "—")
        else:
            row += ["not run"] * (len(names) + 2)
        row += [f"{paper['accuracy']:.1f}", f"{paper['success_eps']:.2f}",
                "—" if paper["success_alpha_eps"] is None else f"{paper['success_alpha_eps']:.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    paired = [(c, p) for c in cells for p in c.get("paired", ())]
    if paired:
        lines += ["", "The same images, two attacks (images only one of them fooled, exact "
                      "McNemar p):", "",
                  "| α | β | pair | only A @ε | only B @ε | p @ε | only A @α·ε | only B @α·ε | "
                  "p @α·ε |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for cell, pair in paired:
            row = [f"{cell['alpha']:g}", f"{cell['beta']:g}", f"A = {pair['a']}, B = {pair['b']}"]
            for key in ("eps", "alpha_eps"):
                if key == "alpha_eps" and cell["alpha"] == 1:
                    row += ["—"] * 3
                    continue
                test = stats.mcnemar_counts(pair[key]["only_a"], pair[key]["only_b"])
                row += [str(test.only_a), str(test.only_b), f"{test.p_value:.2g}"]
            lines.append("| " + " | ".join(row) + " |")
    return lines + ["", _table_cost(cells)]


def _table_cost(cells):
    """What the cells' attack cost, its members included, cached or not: gradient and
    forward-only evaluations, and the compute time when every cell recorded it."""
    last = [list(c["attacks"].values())[-1] for c in cells]
    evals = sum(a["grad_evals"] for a in last)
    forward = sum(a.get("forward_evals", 0) for a in last)
    seconds = [c.get("compute_seconds") for c in cells]
    known = cells and all(s is not None for s in seconds)
    return ("Cost of the table's attack (its members included), cached or not: "
            f"{evals:,} gradient evaluations" + (f", {forward:,} forward evaluations"
                                                 if forward else "")
            + (f"; {sum(seconds):,.0f} s of compute" if known else "") + ".")


def _figures_section(folder, found):
    lines = []
    for fig in found.get("distance", []):
        stem = fig["file"][:-5]
        rho = stats.spearman_interval(fig["spearman"], fig["attacked"], fig["p_value"])
        lines.append(f"- Figure {fig['figure']} ({fig['dataset']}, h = {fig['extractor']}): "
                     f"{_link(folder, stem + '.png')}, {_link(folder, stem + '.csv')}; "
                     f"{_rate(fig['successes'], fig['attacked'])}% of the attacked images "
                     f"fooled at ε = {fig['eps']:g}; Spearman ρ(D, success) = {rho.value:.3f} "
                     f"[{rho.low:.3f}, {rho.high:.3f}], p = {rho.p_value:.2g}")
    for hist in found.get("histogram", []):
        stem = hist["file"][:-5]
        area = stats.auroc_interval(hist["auroc"], hist["n_scaled"], hist["n_original"])
        lines.append(f"- Figure 5 ({hist['dataset']}, h = {hist['extractor']}, α = "
                     f"{hist['alpha']:g}, β = {hist['beta']:g}): {_link(folder, stem + '.png')}, "
                     f"{_link(folder, stem + '.csv')}; AUROC of D = {area.value:.3f} "
                     f"[{area.low:.3f}, {area.high:.3f}] ({area.n_negative} original, "
                     f"{area.n_positive} scaled)")
    for row in found.get("table1", []):
        stem = row["file"][:-5]
        r = row["row"]
        kl = claims.kl_interval(row["per_class_kl"])
        lines.append(f"- Table 1 ({row['dataset']}): {_link(folder, stem + '.md')}; avg K-L "
                     f"{kl.value:.4f} [{kl.low:.4f}, {kl.high:.4f}] (paper {r['paper_avg_kl']}), "
                     f"success {_rate(row['successes'], row['attacked'])}% (paper "
                     f"{r['paper_success_pct']}%), accuracy {r['accuracy_pct']}% (paper "
                     f"{r['paper_accuracy_pct']}%)")
    return lines


def _per_image(value):
    return "—" if value is None else format(value, ",.1f")


def _leaderboard_section(folder, board):
    n = board["n"]
    written = next((line[len("command: "):] for line in board.get("header", [])
                    if line.startswith("command: ")), None)
    forward = any("forward_evals_per_image" in r for r in board["rows"])
    lines = [f"{_link(folder, board['file'][:-5] + '.md')} (checkpoint {board['checkpoint']}, "
             f"first {n:,} test images" + (f"; written by `{written}`" if written else "")
             + "):", "",
             "| attack | accuracy % [95%] | gradient evaluations per image |"
             + (" forward evaluations per image |" if forward else ""),
             "| --- | --- | --- |" + (" --- |" if forward else "")]
    lines += [f"| {r['attack']} | {_rate(r['correct'], n)} | {_per_image(r['evals_per_image'])} |"
              + (f" {_per_image(r.get('forward_evals_per_image'))} |" if forward else "")
              for r in board["rows"]]
    return lines


def _masking_section(folder, check):
    lines = [f"{_link(folder, check['file'][:-5] + '.md')} (first {check['n']:,} test images "
             f"of each setting; written by `{check['command']}`). Square makes forward passes "
             f"only: an image only it fools is one the gradient attacks miss. \"Gradient members\" "
             f"is the worst case without Square (`--worst-square-queries 0`); the last column "
             f"is what it reaches with Square as its last member at AutoAttack's budget "
             f"(`--worst-square-queries 5000`) on these images.", "",
             "| setting | threshold | gradient members % [95%] | Square % [95%] | "
             "only gradient members | "
             "only Square (ids) | McNemar p | gradient members ∪ Square % [95%] |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for block in check["blocks"]:
        for row in block["rows"]:
            ids = ", ".join(map(str, row["only_square_ids"]))
            lines.append(
                f"| {block['dataset']} α = {block['alpha']:g}, β = {block['beta']:g} | "
                f"{row['threshold']:g} | {_rate(row['worst']['k'], row['worst']['n'])} | "
                f"{_rate(row['square']['k'], row['square']['n'])} | {row['only_worst']} | "
                f"{row['only_square']}" + (f" ({ids})" if ids else "") + f" | {row['p']:.2g} | "
                f"{_rate(row['worst']['k'] + row['only_square'], row['attacked'])} |")
    return lines


def _environment_section(run):
    env = run.get("environment", {})
    v, cpu = env.get("versions", {}), env.get("cpu", {})
    lines = [f"- Python {v.get('python')}, TensorFlow {v.get('tensorflow')}, numpy "
             f"{v.get('numpy')} ({v.get('platform')})",
             f"- CPU: {cpu.get('model')}, {cpu.get('cores')} cores; flags: "
             f"{', '.join(cpu.get('flags', [])) or 'none of those that matter here'}"]
    precision = env.get("precision", "fp32")
    if precision != "fp32":          # a float32 run's page is as before precisions
        lines.append(f"- precision of the attacks: {stated(precision)} (the embeddings are "
                     f"float32's)")
    for rate in env.get("raw_rates", []):
        lines.append(f"- the network's raw forward+backward rate ({rate['dataset']}, batch "
                     f"{rate['batch']}{'' if precision == 'fp32' else f', {precision}'}): "
                     f"{rate['rate']:,.0f} image-gradients/s, measured at the start of the run")
    for entry in env.get("checkpoints", []):
        lines.append(f"- checkpoint {entry['checkpoint']}: sha256 {entry['sha256']}")
    for entry in env.get("data", []):
        state = {"file": "the published file", True: "the published file",
                 "content": "the published content, recompressed"}.get(
                     entry["published"], "NOT the published data")
        lines.append(f"- data {entry['file']}: sha256 {entry['sha256'][:16]}… ({state})")
    return lines


def _steps_section(run):
    def count(value):
        return "—" if value is None else format(value, ",")

    lines = ["Wall time of this run's steps; a step whose results were in the cache reads them "
             "instead of computing them (its evaluations run: 0; the tables above count every "
             "evaluation behind their cells, cached or not). Forward evaluations are Square's "
             "queries (forward passes only); the rate is gradient evaluations per second.", "",
             "| step | wall time | gradient evaluations run | forward evaluations run | rate |",
             "| --- | --- | --- | --- | --- |"]
    steps = run.get("steps", [])
    for step in steps:
        evals = step.get("new_grad_evals")
        rate = (f"{evals / step['seconds']:,.0f}/s" if evals and step["seconds"] > 0 else "—")
        lines.append(f"| {step['name']} | {step['seconds']:,.0f} s | {count(evals)} | "
                     f"{count(step.get('new_forward_evals'))} | {rate} |")
    total = sum(s["seconds"] for s in steps)
    lines.append(f"| all | {total:,.0f} s | "
                 f"{sum(s.get('new_grad_evals') or 0 for s in steps):,} | "
                 f"{sum(s.get('new_forward_evals') or 0 for s in steps):,} | |")
    return lines


def render(folder, found, specs, rendered_by=None):
    """The page's Markdown from ``found`` (:func:`load_summaries` of ``folder``), the claims
    checked with the paper's numbers of ``specs``;
    ``rendered_by``: the command rendering it, when not the run that computed the summaries
    (``reproduce --report-only``)."""
    run = (found.get("run") or [{}])[0]
    command = run.get("command", "python cli.py reproduce")
    missing = run.get("missing", {})
    source = ("from the summaries (`*.json`) in this folder: those its steps wrote and, where a "
              "section names one, another command's")
    writer, origin = command, f"Written by `{command}` {source}."
    if rendered_by and rendered_by != command:
        writer += f"; re-rendered by {rendered_by}"
        origin = origin[:-1] + f"; this page re-rendered from them by `{rendered_by}`."
    lines = [f"<!-- written by: {writer} -->", "", "# Reproduction results", "",
             f"{origin} Our numbers are measured on the checkpoints listed under Environment "
             f"(by content hash); the paper's numbers are the paper's, on the authors' models. "
             f"Rates: % of the images in question with the Wilson 95% interval in brackets.", "",
             "## The paper's claims, checked", ""]
    lines += _claims_table(claim_list(found, missing, specs))
    if found.get("table"):
        lines += ["", "## Tables 2–3", ""]
        for table in found["table"]:
            lines += _table_section(folder, table) + [""]
    figures = _figures_section(folder, found)
    if figures:
        lines += ["", "## Figures 1, 2, 5 and Table 1", ""] + figures
    for board in found.get("leaderboard", []):
        lines += ["", f"## {board['dataset']} challenge leaderboard", ""]
        lines += _leaderboard_section(folder, board)
    for check in found.get("masking", []):
        lines += ["", "## Gradient-masking check", ""] + _masking_section(folder, check)
    if run:
        lines += ["", "## Environment", ""] + _environment_section(run)
        lines += ["", "## Where the time went", ""] + _steps_section(run)
    return "\n".join(lines) + "\n"


def write(folder, specs, rendered_by=None):
    """Render ``folder``/README.md from the summaries in ``folder`` (``specs``,
    ``rendered_by``: as in :func:`render`); returns its path and the claims checked on it."""
    found = load_summaries(folder)
    path = os.path.join(folder, "README.md")
    save_text(path, render(folder, found, specs, rendered_by))
    run = (found.get("run") or [{}])[0]
    return path, claim_list(found, run.get("missing", {}), specs)
