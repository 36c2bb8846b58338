"""Madry et al.'s PGD (``mnist_challenge/pgd_attack.py``) as one in-graph ``tf.while_loop``,
for adversarial training, where the adversary must run inside the training graph.

From x_nat: optional uniform random start in [-ε, ε] (clipped to the box), then ``steps``
times x += a·sign(∇loss), clipped to [x_nat − ε, x_nat + ε] and then to the box.  Loss 'xent'
is the summed cross-entropy; 'cw' is −relu(z_true − max_{j≠true} z_j + 50) with the true logit
masked by −1e4, as in the reference.  (The attacks' own PGD, :mod:`bsattack.attacks.pgd`,
runs the same steps from Python with per-image random starts and early stops.)
"""
import tensorflow as tf

from bsattack.errors import BsattackError

tf1 = tf.compat.v1
LOSSES = ("xent", "cw")
CW_MARGIN = 50.0          # confidence of the reference's 'cw' loss
MASK = 1e4                # the reference masks the true logit with -1e4 before the max


def per_image_loss(logits, y, loss="xent"):
    """The attacker's objective per image (to be maximised): cross-entropy or C&W margin."""
    if loss == "xent":
        return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    if loss == "cw":
        mask = tf.one_hot(y, tf.shape(logits)[1], dtype=logits.dtype)
        correct = tf.reduce_sum(mask * logits, axis=1)
        wrong = tf.reduce_max((1 - mask) * logits - MASK * mask, axis=1)
        return -tf.nn.relu(correct - wrong + CW_MARGIN)
    raise BsattackError(f"unknown PGD loss '{loss}' (known: {', '.join(LOSSES)})")


def pgd_graph(logits_fn, x_nat, y, eps, step_size, steps, loss="xent", random_start=True,
              box=(0.0, 1.0), seed=None):
    """Tensor of PGD adversarial examples for ``x_nat`` (same units as ``logits_fn`` takes).

    ``eps``/``step_size`` may be floats or scalar tensors; ``steps`` an int or scalar tensor.
    """
    lower, upper = box
    x_nat = tf.convert_to_tensor(x_nat)
    lo = tf.maximum(x_nat - eps, lower)
    hi = tf.minimum(x_nat + eps, upper)
    if random_start:
        noise = tf1.random_uniform(tf.shape(x_nat), -1.0, 1.0, seed=seed) * eps
        x_start = tf.clip_by_value(x_nat + noise, lower, upper)
    else:
        x_start = x_nat

    def body(i, x):
        objective = tf.reduce_sum(per_image_loss(logits_fn(x), y, loss))
        grad = tf.gradients(objective, x)[0]
        x = x + step_size * tf.sign(grad)
        return i + 1, tf.clip_by_value(x, lo, hi)   # ε-ball ∩ box (ball clip, then box clip)

    _, x_adv = tf.while_loop(lambda i, x: i < steps, body, [tf.constant(0), x_start])
    return tf.stop_gradient(x_adv)
