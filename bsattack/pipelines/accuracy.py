"""`accuracy`: a checkpoint's natural accuracy on the first test images."""
from bsattack import data, models


def natural_accuracy(spec, checkpoint, n=None, batch_size=500, data_dir=None,
                     validation_size=data.MADRY_VALIDATION_SIZE, echo=print):
    """(correct, images): the float32 network's correct predictions on the first ``n`` (None:
    all) clean test images of ``spec``."""
    split = data.load(spec, data_dir, validation_size, echo=echo)
    images, labels = split.test_x[:n], split.test_y[:n]
    predictions = models.predict(spec, checkpoint, images, batch_size)
    return int((predictions == labels).sum()), len(labels)
