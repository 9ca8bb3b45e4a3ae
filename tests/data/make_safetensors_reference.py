"""tests/data/from_python.safetensors, written by Python's safetensors (0.8.0) with numpy.

Run: python3 tests/data/make_safetensors_reference.py
tests/checkpoint.rs loads it into a wgrad tree, and writes the same tree back: the bytes must
be identical (so Python reads what wgrad writes).
"""
import os

import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
tensors = {
    "layers.0.w": np.array([[0.5, -1.0, 2.0], [1e-3, 3.5e8, -0.0]], dtype=np.float32),
    "layers.0.b": np.array([0.25, -0.125, 7.0], dtype=np.float32),
    "layers.1.w": np.array([[1.0], [2.0], [-3.0]], dtype=np.float32),
    "steps": np.array([7, -2147483648], dtype=np.int32),
    "mask": np.array([True, False, True]),
    "half": np.array([1.5, -65504.0], dtype=np.float16),
}
save_file(tensors, os.path.join(here, "from_python.safetensors"),
          metadata={"framework": "numpy", "epoch": "12"})
# Without metadata the header is deterministic: wgrad's file must equal this one byte for byte.
# (Without the f16 tensor: adapters without shader-f16, llvmpipe's GL, cannot hold one.)
plain = {k: v for k, v in tensors.items() if k != "half"}
save_file(plain, os.path.join(here, "from_python_plain.safetensors"))
