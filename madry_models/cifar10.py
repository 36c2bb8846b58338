"""Madry CIFAR10-challenge network (``cifar10_challenge/model.py``), restated for tf.compat.v1.

A pre-activation wide ResNet (filters 16 -> 160 -> 320 -> 640, three stages of five residual
units, strides 1, 2, 2): per-image standardisation of [0, 255] pixels, ``init_conv`` 3x3,
residual units (batch norm + leaky ReLU 0.1, 3x3 convs without biases, shortcut = average pool
plus zero-padded channels when the width changes), a final batch norm + leaky ReLU, the global
average pool (the paper's h(x) for CIFAR, 640-d) and the ``logit`` layer.

Batch norm is the eval mode of ``tf.contrib.layers.batch_norm`` (moving statistics, epsilon
0.001), written with plain variables named ``<scope>/BatchNorm/{beta,gamma,moving_mean,
moving_variance}`` exactly as in the official ``adv_trained`` / ``naturally_trained``
checkpoints, so those restore unchanged.  The training mode (batch statistics) is not built:
the project never trains CIFAR models.  ``widths`` exists so that tests can use a narrow
network with the same names; the official one is (16, 160, 320, 640).
"""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from madry_models.builders import checkpoint_builder

tf.compat.v1.disable_eager_execution()   # graphs, as in the reference code

tf1 = tf.compat.v1

OFFICIAL_WIDTHS = (16, 160, 320, 640)
UNITS_PER_STAGE = 5
STRIDES = (1, 2, 2)
LEAKINESS = 0.1
BN_EPSILON = 0.001          # tf.contrib.layers.batch_norm default
BN_PARAMS = ("beta", "gamma", "moving_mean", "moving_variance")


def residual_units(widths=OFFICIAL_WIDTHS):
    """(scope, in_filters, out_filters, stride, activate_before_residual) of the 15 units."""
    units = []
    for stage in range(3):
        for i in range(UNITS_PER_STAGE):
            first = i == 0
            units.append((f"unit_{stage + 1}_{i}", widths[stage if first else stage + 1],
                          widths[stage + 1], STRIDES[stage] if first else 1, first and stage == 0))
    return units


def _bn_shapes(scope, channels):
    return {f"{scope}/BatchNorm/{p}": [channels] for p in BN_PARAMS}


def variable_shapes(widths=OFFICIAL_WIDTHS, num_classes=10):
    """{official checkpoint name: shape} in creation order, for the given widths."""
    shapes = {"input/init_conv/DW": [3, 3, 3, widths[0]]}
    for name, w_in, w_out, _, shared in residual_units(widths):
        activation = "shared_activation" if shared else "residual_only_activation"
        shapes.update(_bn_shapes(f"{name}/{activation}", w_in))
        shapes[f"{name}/sub1/conv1/DW"] = [3, 3, w_in, w_out]
        shapes.update(_bn_shapes(f"{name}/sub2", w_out))
        shapes[f"{name}/sub2/conv2/DW"] = [3, 3, w_out, w_out]
    shapes.update(_bn_shapes("unit_last", widths[3]))
    shapes["logit/DW"] = [widths[3], num_classes]
    shapes["logit/biases"] = [num_classes]
    return shapes


def widths_from_shapes(shapes):
    """Inverse of :func:`variable_shapes`: read the four widths off a checkpoint's shapes."""
    return (shapes["input/init_conv/DW"][3], shapes["unit_1_0/sub1/conv1/DW"][3],
            shapes["unit_2_0/sub1/conv1/DW"][3], shapes["unit_3_0/sub1/conv1/DW"][3])


@dataclass
class CifarModel:
    """One CIFAR10-challenge network applied to ``x01``; every tensor the project needs."""
    x01: tf.Tensor
    logits: tf.Tensor
    predictions: tf.Tensor
    embedding: tf.Tensor           # global average pool output (640-d; the paper's h(x))
    variables: dict                # official checkpoint name -> tf.Variable
    pixel_scale = 255.0            # the network reads [0, 255] pixels: x01 * 255


def _initializer(name, shape):
    """The official initialisers: He-normal convs, uniform-unit-scaling FC, zero biases,
    BN beta 0 / gamma 1, moving mean 0 / variance 1."""
    leaf = name.rsplit("/", 1)[1]
    if leaf == "DW" and name != "logit/DW":
        return tf1.random_normal(shape, stddev=np.sqrt(2.0 / (shape[0] * shape[1] * shape[3])))
    if name == "logit/DW":
        limit = np.sqrt(3.0 / shape[0])
        return tf1.random_uniform(shape, -limit, limit)
    return tf.ones(shape) if leaf in ("gamma", "moving_variance") else tf.zeros(shape)


def _leaky_relu(x):
    return tf1.where(tf.less(x, 0.0), LEAKINESS * x, x)


def build_cifar10(x01=None, scope=None, widths=OFFICIAL_WIDTHS, trainable=True):
    """Build the network on ``x01`` ([N,32,32,3], or flattened [N,3072], in [0,1]; a
    placeholder when None).

    ``scope`` lets several models live in one graph; the keys of ``variables`` stay the
    official checkpoint names whatever the scope.
    """
    for w_in, w_out in zip(widths, widths[1:]):
        if (w_out - w_in) % 2:
            raise ValueError(f"widths {widths}: each increase must be even (channel zero-padding)")
    if x01 is None:
        x01 = tf1.placeholder(tf.float32, [None, 32, 32, 3], name="x_input")
    shapes = variable_shapes(widths)
    variables = {}

    def var(name):
        movable = trainable and not name.endswith(("moving_mean", "moving_variance"))
        variables[name] = tf1.Variable(_initializer(name, shapes[name]), name=name,
                                       trainable=movable)
        return variables[name]

    def batch_norm(bn_scope, x):
        beta, gamma, mean, variance = (var(f"{bn_scope}/BatchNorm/{p}") for p in BN_PARAMS)
        return tf.nn.batch_normalization(x, mean, variance, beta, gamma, BN_EPSILON)

    def conv(name, x, stride):
        return tf.nn.conv2d(x, var(name), [1, stride, stride, 1], "SAME")

    with tf1.name_scope(scope or ""):
        pixels = tf.reshape(x01, [-1, 32, 32, 3]) * CifarModel.pixel_scale
        x = conv("input/init_conv/DW", tf.image.per_image_standardization(pixels), 1)
        for name, w_in, w_out, stride, shared in residual_units(widths):
            if shared:
                x = _leaky_relu(batch_norm(f"{name}/shared_activation", x))
                shortcut = x
            else:
                shortcut = x
                x = _leaky_relu(batch_norm(f"{name}/residual_only_activation", x))
            x = conv(f"{name}/sub1/conv1/DW", x, stride)
            x = _leaky_relu(batch_norm(f"{name}/sub2", x))
            x = conv(f"{name}/sub2/conv2/DW", x, 1)
            if w_in != w_out:
                shortcut = tf.nn.avg_pool2d(shortcut, stride, stride, "VALID")
                pad = (w_out - w_in) // 2
                shortcut = tf.pad(shortcut, [[0, 0], [0, 0], [0, 0], [pad, pad]])
            x = x + shortcut
        x = _leaky_relu(batch_norm("unit_last", x))
        embedding = tf.reduce_mean(x, [1, 2])
        logits = tf.matmul(embedding, var("logit/DW")) + var("logit/biases")
        predictions = tf.argmax(logits, 1)
    return CifarModel(x01, logits, predictions, embedding, variables)


# the registry's builder: official widths, given widths, or those of a checkpoint's shapes
build_for = checkpoint_builder(build_cifar10, widths_from_shapes, OFFICIAL_WIDTHS, dict.fromkeys(
    ("input/init_conv/DW", "unit_1_0/sub1/conv1/DW", "unit_2_0/sub1/conv1/DW",
     "unit_3_0/sub1/conv1/DW"), 4))
