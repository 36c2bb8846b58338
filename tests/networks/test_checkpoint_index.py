"""A ``checkpoint`` index file naming a checkpoint outside its folder: the folder's own files
of that name are restored (and hashed), and a folder without them is refused in one line
naming the foreign path, never silently restoring another folder's network."""
import os
import shutil

import pytest

from bsattack.errors import BsattackError
from madry_models import checkpoint as ckpt


@pytest.fixture
def folders(tmp_path, small_checkpoint):
    """Two checkpoint folders holding different networks under the same step name."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    shutil.copytree(small_checkpoint("mnist"), mine)
    shutil.copytree(small_checkpoint("fashion"), other)
    assert ckpt.content_hash(str(mine)) != ckpt.content_hash(str(other))
    return mine, other


def point_index(folder, target):
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "{target}"\n')


def test_an_absolute_index_elsewhere_means_the_folders_own_files(folders):
    mine, other = folders
    before = ckpt.content_hash(str(mine))
    point_index(mine, other / "checkpoint-300")
    assert ckpt.resolve_prefix(str(mine)) == str(mine / "checkpoint-300")
    assert ckpt.content_hash(str(mine)) == before


def test_an_index_elsewhere_the_folder_lacks_is_refused(folders):
    mine, other = folders
    for name in os.listdir(mine):
        if name.startswith("checkpoint-300"):
            os.rename(mine / name, mine / name.replace("-300", "-200"))
    for target in (other / "checkpoint-300", "../other/checkpoint-300"):
        point_index(mine, target)
        with pytest.raises(BsattackError, match=r"names .*other/checkpoint-300, outside .*mine "
                                                r"\(found: checkpoint-200\)"):
            ckpt.resolve_prefix(str(mine))


def test_an_index_inside_the_folder_is_followed(folders):
    mine, _ = folders
    shutil.copy(mine / "checkpoint-300.index", mine / "checkpoint-100.index")
    shutil.copy(mine / "checkpoint-300.data-00000-of-00001",
                mine / "checkpoint-100.data-00000-of-00001")
    for target in ("checkpoint-100", mine / "checkpoint-100"):
        point_index(mine, target)
        assert ckpt.resolve_prefix(str(mine)) == str(mine / "checkpoint-100")
