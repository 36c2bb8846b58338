"""pyproject.toml: the `bsattack` console script is cli.py's group, and an install carries every
package and data file the code reads."""
import fnmatch
import importlib
import os

import pytest

from support import ROOT

tomllib = pytest.importorskip("tomllib")
PACKAGES = ("bsattack", "madry_models")


def project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as handle:
        return tomllib.load(handle)


def package_folders():
    for top in PACKAGES:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            yield folder, files


def test_console_script_is_the_cli_group():
    import cli
    module, attribute = project()["project"]["scripts"]["bsattack"].split(":")
    assert getattr(importlib.import_module(module), attribute) is cli.main


def test_every_code_folder_is_a_package():
    for folder, files in package_folders():
        if any(f.endswith(".py") for f in files):
            assert "__init__.py" in files, f"{folder} would be left out of an install"


def test_every_data_file_is_package_data():
    patterns = [p for globs in project()["tool"]["setuptools"]["package-data"].values()
                for p in globs]
    for folder, files in package_folders():
        for name in files:
            if not name.endswith((".py", ".pyc")):
                assert any(fnmatch.fnmatch(name, p) for p in patterns), \
                    f"{os.path.join(folder, name)} is not in pyproject.toml's package-data"
