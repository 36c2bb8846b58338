"""The challenge's files: `attack` writes one (the attack in chunks, converted to file units,
checked by the challenge's rules, saved, scored); `evaluate` scores one as MadryLab's
run_attack.py does.  Both take the data set's :class:`bsattack.datasets.DatasetSpec` and a
resolved checkpoint."""
from dataclasses import dataclass

import numpy as np

from bsattack import challenge, challenge_attack, data, models
from bsattack.outputs import check_writable_file
from bsattack.progress import silent


@dataclass(frozen=True)
class AttackFile:
    """What `attack` wrote: the file's shape, its largest L∞ (file units), the gradient
    evaluations per image, the checkpoint's accuracy on the adversarial examples and the
    forward-only evaluations per image (0 for an attack without forward queries)."""
    shape: tuple
    largest: float
    evals_per_image: float
    accuracy: float
    forward_per_image: float = 0.0


def attack(settings, spec, checkpoint, out, data_dir=None,
           validation_size=data.MADRY_VALIDATION_SIZE, n=None, cache_dir=None, executor=None,
           echo=print, progress=silent, precision="fp32"):
    """Adversarial examples of ``settings`` (its gradient oracle in ``precision``) for the
    first ``n`` (None: all) test images, in the challenge's file units and layout, checked
    against the clean images and saved to ``out``; the accuracy is the float32 network's."""
    check_writable_file(out, "--out")
    split = data.load(spec, data_dir, validation_size, echo=echo)
    n = n or len(split.test_x)
    with progress(n, settings.name) as bar:
        examples = challenge_attack.adversarial_examples(settings, spec, checkpoint, split, n,
                                                         cache_dir=cache_dir, echo=echo,
                                                         progress=bar.update, executor=executor,
                                                         precision=precision)
    adv = examples.adversarial
    file_values = challenge_attack.to_file_units(spec, adv)
    clean, labels = challenge.clean_test_images(split, spec, n)
    largest = challenge.check_attack(file_values, clean, spec)
    challenge.save_atomic(out, file_values)
    predictions = models.predict(spec, checkpoint, adv, spec.challenge.batch_size)
    return AttackFile(file_values.shape, largest, examples.evals_per_image,
                      float(np.mean(predictions == labels)), examples.forward_per_image)


def evaluate(spec, checkpoint, attack_file, pred_out, data_dir=None,
             validation_size=data.MADRY_VALIDATION_SIZE, n=None, echo=print):
    """run_attack.py on ``attack_file`` against the first ``n`` (None: the challenge's 10,000)
    test images: its checks, the accuracy (printed through ``echo``), the predictions saved to
    ``pred_out``.  Returns the accuracy in [0, 1]."""
    split = data.load(spec, data_dir, validation_size, echo=echo)
    return challenge.evaluate(spec, checkpoint, attack_file, split,
                              n or challenge.CHALLENGE_SIZE, pred_out, echo=echo)
