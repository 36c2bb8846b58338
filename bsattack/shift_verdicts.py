"""The blind-spot verdict of every setting of :func:`bsattack.pipelines.beyond.run_settings`
(the paper's x' = αx + β points and the :mod:`bsattack.shifts` families), against the original
test set.

A setting is a **blind spot** when its accuracy stays within 1 point of the original's and its
success at ε rises by more than two standard errors of the difference of the two rates
(pooled two-proportion standard error over the attacked images), so noise on N images is not
read as a rise.  A family is a blind-spot family when at least one of its strengths is.

Public API: ``shift_rows(summaries)``, ``family_verdicts(rows)``, ``RISE_SIGMAS``.
"""
import math

ACCURACY_TOLERANCE = 0.01       # "within 1 point of the original"
RISE_SIGMAS = 2.0


def _rise_se(p0, n0, p1, n1):
    if not n0 or not n1:
        return float("nan")
    pooled = (p0 * n0 + p1 * n1) / (n0 + n1)
    return math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n0 + 1 / n1))


def shift_rows(summaries):
    """One row per setting with its change against the 'original' summary and the verdict."""
    base = summaries["original"]
    rows = []
    for label, s in summaries.items():
        change = s["accuracy"] - base["accuracy"]
        rise = s["success_eps"] - base["success_eps"]
        se = _rise_se(base["success_eps"], base["attacked"], s["success_eps"], s["attacked"])
        keeps = abs(change) <= ACCURACY_TOLERANCE + 1e-12
        rises = rise > RISE_SIGMAS * se
        if label == "original":
            verdict, why = "", "reference"
        else:
            verdict = "yes" if keeps and rises else "no"
            why = "; ".join(filter(None, [
                "" if keeps else f"accuracy changes {100 * change:+.1f} pts",
                "" if rises else f"success rise {100 * rise:+.1f} pts ≤ {RISE_SIGMAS:g} SE"]))
        rows.append({"setting": label, "family": s["family"], "strength": s["strength"],
                     "accuracy": s["accuracy"], "accuracy_n": s.get("accuracy_n", s.get("n", "")),
                     "accuracy_change": change,
                     "attacked": s["attacked"], "success_eps": s["success_eps"],
                     "success_rise": rise, "rise_se": se, "blind_spot": verdict, "why": why})
    return rows


def family_verdicts(rows):
    """{family: list of the strengths that are blind spots} for every family in ``rows``."""
    out = {}
    for r in rows:
        if r["setting"] == "original":
            continue
        out.setdefault(r["family"], [])
        if r["blind_spot"] == "yes":
            out[r["family"]].append(r["strength"] or r["setting"])
    return out
