# Writes the small .npy/.npz/.pb files the data-reader tests read, with real numpy (run with /usr/bin/python3).
# Values are arange-based so the tests can check them exactly.
import os, numpy as np
from onnx import numpy_helper
here = os.path.dirname(os.path.abspath(__file__))
def p(*a): return os.path.join(here, *a)
os.makedirs(p("npy"), exist_ok=True)
for i in range(3):  # folder of single samples [1,2,3] and one stacked file
    np.save(p("npy", f"s{i}.npy"), (np.arange(6, dtype=np.float32) + 10 * i).reshape(1, 2, 3))
np.save(p("npy", "s10.npy"), (np.arange(24, dtype=np.float32) + 100).reshape(4, 2, 3))
np.save(p("big_endian_f8.npy"), np.arange(6, dtype=">f8").reshape(2, 3))
np.save(p("int64.npy"), np.arange(4, dtype=np.int64) - 2)
np.save(p("bool.npy"), np.array([True, False, True]))
np.save(p("fortran.npy"), np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)))
np.save(p("wrong_shape.npy"), np.zeros((1, 3, 3), dtype=np.float32))
np.save(p("float64.npy"), np.zeros((1, 2, 3), dtype=np.float64))
x = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
ids = np.array([[1, 2], [3, 4]], dtype=np.int64)
np.savez(p("two_inputs.npz"), x=x, ids=ids)
np.savez_compressed(p("two_inputs_deflate.npz"), x=x, ids=ids)
np.savez(p("bad_key.npz"), x=x, idz=ids)
os.makedirs(p("pb", "test_data_set_0"), exist_ok=True)
os.makedirs(p("pb", "test_data_set_1"), exist_ok=True)
for k in range(2):
    t = numpy_helper.from_array(x[k:k+1] + k, "x")
    open(p("pb", f"test_data_set_{k}", "input_0.pb"), "wb").write(t.SerializeToString())
    t = numpy_helper.from_array(ids[k:k+1], "")  # unnamed: goes to input 1 by position
    open(p("pb", f"test_data_set_{k}", "input_1.pb"), "wb").write(t.SerializeToString())
