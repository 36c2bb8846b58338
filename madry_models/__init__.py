"""The Madry challenge networks in tf.compat.v1 graphs, with the official variable names.

The package itself imports nothing heavy (its error type is needed without TensorFlow); the
network and checkpoint modules import TensorFlow and switch eager execution off."""
