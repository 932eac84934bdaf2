"""Fixtures for the test-support code itself: one .npy per dtype the C++ reader accepts."""
import pathlib
import numpy as np

out = pathlib.Path(__file__).resolve().parents[1] / "data" / "support"
out.mkdir(parents=True, exist_ok=True)
np.save(out / "arange_f4.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
np.save(out / "ids_i8.npy", np.array([[5, -1], [7, 2**40]], dtype=np.int64))
np.save(out / "scalar_f8.npy", np.array(2.5, dtype=np.float64))
