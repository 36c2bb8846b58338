"""An independent numpy forward pass of the MNIST-challenge network (no TensorFlow), the
oracle the checkpoint, training and shipped-model tests compare logits against."""
import numpy as np


def numpy_forward(weights, images):
    """Independent forward pass: conv SAME stride 1, ReLU, 2x2 max-pool, twice, then two FCs."""
    def conv_same(x, w):
        k = w.shape[0]
        pad = k // 2
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        out = np.zeros(x.shape[:3] + (w.shape[3],), np.float64)
        for i in range(k):
            for j in range(k):
                out += np.tensordot(xp[:, i:i + x.shape[1], j:j + x.shape[2], :], w[i, j], axes=1)
        return out

    def pool(x):
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

    h = images.reshape(-1, 28, 28, 1).astype(np.float64)
    h = pool(np.maximum(conv_same(h, weights["Variable"]) + weights["Variable_1"], 0))
    h = pool(np.maximum(conv_same(h, weights["Variable_2"]) + weights["Variable_3"], 0))
    h = np.maximum(h.reshape(len(h), -1) @ weights["Variable_4"] + weights["Variable_5"], 0)
    return h @ weights["Variable_6"] + weights["Variable_7"]
