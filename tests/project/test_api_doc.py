"""docs/API.md's examples run as written (the Python API a researcher copies)."""
import os
import re

import pytest

from support import ROOT

DOC = os.path.join(ROOT, "docs", "API.md")


def blocks():
    with open(DOC) as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), re.S)


def test_the_doc_has_both_examples():
    assert len(blocks()) == 2


@pytest.mark.parametrize("index", [0, 1])
def test_api_example_runs(index, capsys):
    exec(compile(blocks()[index], f"docs/API.md block {index}", "exec"), {})
    printed = capsys.readouterr().out
    assert ("gradient evaluations per image" in printed) if index == 0 else ("Eq. 3" in printed)
