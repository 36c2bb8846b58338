"""An ART classifier over a restored network (:class:`bsattack.attacks.model.Model`), for
ART's class-gradient attacks (CarliniLInfMethod) in the model's tf.compat.v1 session.

ART sees flat inputs in [0, 1] (the model's units + 0.5, ``clip_values`` (0, 1)); ``predict``
returns logits, ``class_gradient`` the gradient of one logit per image w.r.t. the input, from
one gradient op added to the model's graph.  The estimator counts the images it was asked to
differentiate (``grad_evals``: images × class_gradient calls, × classes when ``label`` is None)
and to predict (``predict_evals``: forward passes only).  Needs adversarial-robustness-toolbox.
"""
import numpy as np
import tensorflow as tf
from art.estimators.classification.classifier import ClassGradientsMixin, ClassifierMixin
from art.estimators.estimator import BaseEstimator

from bsattack.attacks.model import SHIFT

tf1 = tf.compat.v1


class ModelClassifier(ClassGradientsMixin, ClassifierMixin, BaseEstimator):
    """``model`` (a :class:`~bsattack.attacks.model.Model`) as an ART classifier on [0, 1]."""

    estimator_params = BaseEstimator.estimator_params + ClassifierMixin.estimator_params

    def __init__(self, model):
        super().__init__(model=model, clip_values=(0.0, 1.0), preprocessing=None)
        self.nb_classes = int(model.logits_tensor.shape[1])
        self.grad_evals = 0
        self.predict_evals = 0

        def build(net):
            label = tf1.placeholder(tf.int64, [None], name="art_class")
            picked = tf.reduce_sum(tf.one_hot(label, self.nb_classes) * net.model.logits)
            return label, tf.gradients(picked, net.x01)[0]
        self._label, self._gradient = model.add_ops(build)

    @property
    def input_shape(self):
        return (self._model.dim,)

    def predict(self, x, batch_size=128, **kwargs):
        """Logits [N, classes] of ``x`` in [0, 1]."""
        self.predict_evals += len(x)
        return self._model.logits(np.asarray(x, np.float32) - np.float32(SHIFT), batch_size)

    def class_gradient(self, x, label=None, **kwargs):
        """d logit / d x, [N, 1, ...] for one class (an int, or one per image), [N, classes,
        ...] for ``label`` None."""
        classes = range(self.nb_classes) if label is None else [label]
        flat = np.asarray(x, np.float32).reshape(len(x), self._model.dim)
        grads = [self._model.sess.run(self._gradient, {
            self._model.x: flat,
            self._label: np.broadcast_to(np.asarray(c, np.int64), (len(x),))}) for c in classes]
        self.grad_evals += len(x) * len(grads)
        return np.stack(grads, axis=1).reshape((len(x), len(grads)) + np.shape(x)[1:])

    def fit(self, x, y, **kwargs):
        raise NotImplementedError("ModelClassifier wraps a trained network; it does not train")
