"""Madry MNIST-challenge network (``mnist_challenge/model.py``), restated for tf.compat.v1.

conv 5x5x32 -> max-pool 2 -> conv 5x5x64 -> max-pool 2 -> FC 1024 (ReLU) -> FC 10.
Input: [N, 784] float32 in [0, 1], no normalisation.  The eight variables are created in the
official order and named ``Variable`` ... ``Variable_7`` relative to the model's scope, which is
how the official checkpoints name them.  ``widths`` only exists so that tests can use a narrow
network with the same naming; the official one is (32, 64, 1024).
"""
from dataclasses import dataclass

import tensorflow as tf

from madry_models.builders import checkpoint_builder

tf.compat.v1.disable_eager_execution()   # graphs, as in the reference code

tf1 = tf.compat.v1

OFFICIAL_WIDTHS = (32, 64, 1024)
# Official creation order: W_conv1, b_conv1, W_conv2, b_conv2, W_fc1, b_fc1, W_fc2, b_fc2.
VARIABLE_NAMES = ["Variable"] + [f"Variable_{i}" for i in range(1, 8)]


def variable_shapes(widths=OFFICIAL_WIDTHS, num_classes=10):
    """Shape of each official variable name for the given (conv1, conv2, fc1) widths."""
    c1, c2, fc = widths
    shapes = [[5, 5, 1, c1], [c1], [5, 5, c1, c2], [c2], [7 * 7 * c2, fc], [fc], [fc, num_classes],
              [num_classes]]
    return dict(zip(VARIABLE_NAMES, shapes))


def widths_from_shapes(shapes):
    """Inverse of :func:`variable_shapes`: read (conv1, conv2, fc1) widths off a checkpoint."""
    return (shapes["Variable"][-1], shapes["Variable_2"][-1], shapes["Variable_5"][0])


@dataclass
class MnistModel:
    """One MNIST-challenge network applied to ``x01``; every tensor the project needs."""
    x01: tf.Tensor
    logits: tf.Tensor
    predictions: tf.Tensor
    embedding: tf.Tensor           # first FC layer after ReLU (the paper's h(x))
    variables: dict                # official checkpoint name -> tf.Variable
    pixel_scale = 1.0              # inputs are [0,1]: model_input = (x + 0.5) * pixel_scale


def build_mnist(x01=None, scope=None, widths=OFFICIAL_WIDTHS, trainable=True):
    """Build the network on ``x01`` ([N,784] in [0,1]; a placeholder when None).

    ``scope`` lets several models (natural and adversarial) live in one graph; the checkpoint
    names in ``variables`` stay the official ones whatever the scope.
    """
    if x01 is None:
        x01 = tf1.placeholder(tf.float32, [None, 784], name="x_input")
    shapes = variable_shapes(widths)

    def weight(name):
        init = tf1.truncated_normal(shapes[name], stddev=0.1)
        return tf1.Variable(init, name=name, trainable=trainable)

    def bias(name):
        return tf1.Variable(tf1.constant(0.1, shape=shapes[name]), name=name, trainable=trainable)

    with tf1.name_scope(scope or ""):
        w_conv1, b_conv1 = weight("Variable"), bias("Variable_1")
        w_conv2, b_conv2 = weight("Variable_2"), bias("Variable_3")
        w_fc1, b_fc1 = weight("Variable_4"), bias("Variable_5")
        w_fc2, b_fc2 = weight("Variable_6"), bias("Variable_7")

        image = tf.reshape(x01, [-1, 28, 28, 1])
        h = tf.nn.relu(tf.nn.conv2d(image, w_conv1, [1, 1, 1, 1], "SAME") + b_conv1)
        h = tf.nn.max_pool2d(h, 2, 2, "SAME")
        h = tf.nn.relu(tf.nn.conv2d(h, w_conv2, [1, 1, 1, 1], "SAME") + b_conv2)
        h = tf.nn.max_pool2d(h, 2, 2, "SAME")
        h = tf.reshape(h, [-1, 7 * 7 * widths[1]])
        embedding = tf.nn.relu(tf.matmul(h, w_fc1) + b_fc1)
        logits = tf.matmul(embedding, w_fc2) + b_fc2
        predictions = tf.argmax(logits, 1)
    variables = dict(zip(VARIABLE_NAMES, [w_conv1, b_conv1, w_conv2, b_conv2, w_fc1, b_fc1,
                                          w_fc2, b_fc2]))
    return MnistModel(x01, logits, predictions, embedding, variables)



# the registry's builder: official widths, given widths, or those of a checkpoint's shapes
build_for = checkpoint_builder(build_mnist, widths_from_shapes, OFFICIAL_WIDTHS, {"Variable": 4, "Variable_2": 4, "Variable_5": 1})
