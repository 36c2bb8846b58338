"""display_path: result headers name paths a reader can reproduce."""
import os

from bsattack.display import PROJECT_ROOT, display_path


def test_inside_the_project_root_is_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_path(os.path.join(PROJECT_ROOT, "checkpoints", "fashion_adv")) == \
        os.path.join("checkpoints", "fashion_adv")
    assert display_path(PROJECT_ROOT) == "."


def test_relative_input_is_read_from_the_current_folder(tmp_path, monkeypatch):
    root = tmp_path / "clone"
    (root / "results").mkdir(parents=True)
    monkeypatch.chdir(root)
    assert display_path("results/x.md", root=root) == os.path.join("results", "x.md")
    assert display_path(str(root / "results" / ".." / "results"), root=root) == "results"


def test_sibling_of_the_root_goes_through_dot_dot(tmp_path, monkeypatch):
    root, shared = tmp_path / "work" / "clone", tmp_path / "work" / "shared" / "data"
    root.mkdir(parents=True)
    monkeypatch.chdir(root)
    assert display_path(shared, root=root) == os.path.join("..", "shared", "data")


def test_inside_the_current_folder_outside_the_root(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.chdir(runs)
    assert display_path(runs / "out" / "t.md", root="/nonexistent/clone") == \
        os.path.join("out", "t.md")


def test_unrelated_folder_stays_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert display_path("/opt/models/ckpt", root="/srv/clone") == "/opt/models/ckpt"


def test_a_png_names_the_command_that_wrote_it(tmp_path):
    """save_figure puts the header lines into the PNG's Description text chunk."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from bsattack.outputs import save_figure
    fig = plt.figure()
    header = ["python cli.py figures --dataset mnist", "checkpoint: x (sha256 ab)"]
    save_figure(fig, str(tmp_path / "f.png"), header)
    save_figure(fig, str(tmp_path / "g.png"))
    plt.close(fig)
    assert Image.open(tmp_path / "f.png").info["Description"] == "\n".join(header)
    assert "Description" not in Image.open(tmp_path / "g.png").info


def test_a_checkpoint_is_named_by_its_files_and_their_hash():
    import hashlib

    from bsattack.display import checkpoint_label
    from support import FIXTURES
    import pathlib
    folder = pathlib.Path(FIXTURES) / "checkpoints" / "mnist_small"
    prefix = open(folder / "checkpoint").read().split('"')[1]
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name == prefix + ".index" or name.startswith(prefix + ".data-"):
            digest.update(name[len(prefix):].encode() + (folder / name).read_bytes())
    label = checkpoint_label(folder)
    assert label == (f"{os.path.join('tests', 'fixtures', 'checkpoints', 'mnist_small', prefix)}"
                     f" (sha256 {digest.hexdigest()[:16]})")
    assert checkpoint_label(folder, "ab" * 32) == label.split(" (")[0] + f" (sha256 {'ab' * 8})"
