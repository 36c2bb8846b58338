"""--precision: the bf16 oracle is a mixed-precision rewrite of the same network, every
prediction in the records is float32's, and precision is part of the cache key."""
import numpy as np
import pytest

from bsattack import experiment, precision
from bsattack.attacks.fgsm import FGSMSettings
from bsattack.attacks.model import Model
from bsattack.datasets import get_spec
from bsattack.errors import BsattackError
from bsattack.shifts import BlindSpot
from bsattack.transforms import to_pm


def test_resolve_refuses_unknown_and_keeps_explicit_choices(monkeypatch):
    assert precision.resolve("fp32") == ("fp32", "requested")
    assert precision.resolve("auto")[0] in ("fp32", "bf16")
    # bf16 asked for where nothing runs it natively is float32 arithmetic: said so, as fp32
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "fma"})
    chosen, why = precision.resolve("bf16")
    assert chosen == "fp32" and "no native bfloat16" in why
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.resolve("bf16") == ("bf16", "requested")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2"})
    monkeypatch.setattr(precision, "_gpu_capability", lambda: (8, 6))
    assert precision.resolve("bf16") == ("bf16", "requested")
    with pytest.raises(BsattackError):
        precision.resolve("fp16")


def test_auto_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "_gpu_capability", lambda: None)
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert precision.resolve("auto") == ("bf16", "CPU with amx_bf16")
    monkeypatch.setattr(precision, "_cpu_flags", lambda: {"avx2"})
    assert precision.resolve("auto")[0] == "fp32"
    monkeypatch.setattr(precision, "_gpu_capability", lambda: (7, 5))
    assert precision.resolve("auto")[0] == "fp32"
    monkeypatch.setattr(precision, "_gpu_capability", lambda: (8, 0))
    assert precision.resolve("auto")[0] == "bf16"


def test_bf16_oracle_is_close_to_float32_and_verified_predictions_are_float32(
        small_checkpoint, small_split):
    split = small_split("mnist")
    x = to_pm(split.test_x[:200]).reshape(200, -1)
    y = split.test_y[:200]
    exact, mixed = Model(get_spec("mnist"), small_checkpoint("mnist")), Model(
        get_spec("mnist"), small_checkpoint("mnist"), "bf16")
    try:
        _, g32, z32 = exact.value_and_grad(x, y, "xent")
        _, g16, z16 = mixed.value_and_grad(x, y, "xent")
        scale = np.abs(z32).max()
        # the same network, rounded: close, but not float32's numbers
        assert np.abs(z16 - z32).max() < 0.05 * scale
        cosine = (g16 * g32).sum(1) / (np.linalg.norm(g16, axis=1) * np.linalg.norm(g32, axis=1)
                                       + 1e-12)
        assert np.median(cosine) > 0.95
        np.testing.assert_array_equal(mixed.verified_predict(x), exact.predict(x))
        # rows the bf16 oracle calls misclassified (here: every row, against wrong labels)
        # carry float32's logits, so an attack stops only where float32 is fooled
        wrong = (y + 1) % 10
        _, _, checked = mixed.value_and_grad(x, wrong, "xent")
        flagged = z16.argmax(1) != wrong
        np.testing.assert_array_equal(checked[flagged], z32[flagged])
        np.testing.assert_array_equal(mixed.logits(x), exact.logits(x))
    finally:
        exact.close()
        mixed.close()


class _LowPrecisionSaysFooled:
    """A model whose attack-side predictions claim every example fooled while the float32
    network (``verified_predict``) disagrees for the rows in ``rejected``."""

    def __init__(self, model, rejected_label_of):
        self.model, self.rejected = model, rejected_label_of
        self.bounds, self.dim = model.bounds, model.dim

    def __getattr__(self, name):
        return getattr(self.model, name)

    def verified_predict(self, x, batch_size=500):
        prediction = self.model.predict(x, batch_size)
        return self.rejected(x, prediction)


def test_a_success_float32_rejects_is_not_counted(small_checkpoint, small_split):
    split = small_split("fashion")
    n = 100
    x = to_pm(split.test_x[:n]).reshape(n, -1)
    labels = split.test_y[:n].astype(np.int64)
    model = Model(get_spec("fashion"), small_checkpoint("fashion"))
    try:
        clean = model.predict(x)
        payload = {"settings": FGSMSettings(), "names": ["fgsm"], "x": x, "labels": labels,
                   "ids": np.arange(n), "limits": (0.1,), "known": {}}
        honest = experiment._run_chunk(model, payload)
        fooled = np.flatnonzero(honest["adv_prediction"] >= 0)
        fooled = fooled[honest["adv_prediction"][fooled] != labels[fooled]]
        assert len(fooled) >= 2

        # the adversarial rows come in the order of the correctly classified images
        correct = np.flatnonzero(clean == labels)

        def reject_adversarial(batch, prediction):
            if len(batch) == len(correct) and not np.array_equal(batch, x[correct]):
                return labels[correct]
            return prediction
        strict = experiment._run_chunk(_LowPrecisionSaysFooled(model, reject_adversarial),
                                       payload)
        assert np.all(strict["adv_prediction"][correct] == labels[correct])
        np.testing.assert_array_equal(strict["linf"], honest["linf"])
    finally:
        model.close()


def test_precision_is_part_of_the_cache_key(small_checkpoint, small_split):
    split = small_split("fashion")
    keys = {p: experiment._file_key(get_spec("fashion"), small_checkpoint("fashion"), split, 0.1,
                                    BlindSpot(0.9, 0.0), FGSMSettings(), 500, p)
            for p in ("fp32", "bf16")}
    assert keys["fp32"] != keys["bf16"]
    assert keys["bf16"]["precision"] == "bf16"
