"""One line stating what the attacks of a command just cost."""


def evaluations_line(results):
    """The gradient evaluations the ``results`` spent now (forward-only ones beside them when
    there are any), the attack time summed over workers, and the network's raw
    forward+backward rate measured in the same run.  A composite's result includes its
    members' costs."""
    spent = sum(r.new_grad_evals for r in results)
    forward = sum(r.new_forward_evals for r in results)
    seconds = sum(r.seconds for r in results)
    rates = [r.raw_rate for r in results if r.new_grad_evals]
    if not spent and not forward:
        return "all results came from the cache (no gradient evaluations now)"
    queries = f" and {forward:,} forward evaluations" if forward else ""
    if not spent:
        return f"0 gradient evaluations{queries} in {seconds:.0f} s"
    return (f"{spent:,} gradient evaluations{queries} in {seconds:.0f} s ({spent / seconds:,.0f}/s"
            f"{' gradient evaluations' if forward else ''}; the network's raw forward+backward "
            f"rate here: {min(rates):,.0f}-{max(rates):,.0f}/s)")
