"""The Madry challenge networks in tf.compat.v1 graphs, with the official variable names."""
import tensorflow as tf

tf.compat.v1.disable_eager_execution()
