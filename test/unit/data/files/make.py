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

# Images for the image-folder reader: PNG (lossless, 28x28 gray from Fashion-MNIST), the same as JPEG, an RGB PNG,
# and the arrays the reader must produce (torch's bilinear, align_corners=False, for the resized case).
import gzip
import torch
from PIL import Image
os.makedirs(p("images", "gray"), exist_ok=True)
os.makedirs(p("images", "jpeg"), exist_ok=True)
os.makedirs(p("images", "rgb"), exist_ok=True)
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as fh:
    imgs = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:3]
for i, im in enumerate(imgs):
    Image.fromarray(im, "L").save(p("images", "gray", f"img{i}.png"))
    Image.fromarray(im, "L").save(p("images", "jpeg", f"img{i}.jpg"), quality=95)
np.save(p("images", "gray_expected.npy"), (imgs.astype(np.float32) / 255.0).reshape(3, 1, 28, 28))
jpeg_px = np.stack([np.asarray(Image.open(p("images", "jpeg", f"img{i}.jpg")).convert("L")) for i in range(3)])
np.save(p("images", "jpeg_pil.npy"), jpeg_px.astype(np.float32).reshape(3, 1, 28, 28))
small = torch.nn.functional.interpolate(torch.from_numpy(imgs.astype(np.float32)).reshape(3, 1, 28, 28), size=(14, 20),
                                        mode="bilinear", align_corners=False)
np.save(p("images", "gray_resized_14x20.npy"), small.numpy())
rng = np.random.default_rng(0)
rgb = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
Image.fromarray(rgb, "RGB").save(p("images", "rgb", "a.png"))
np.save(p("images", "rgb_expected_nhwc.npy"), ((rgb.astype(np.float32) / 255.0 - 0.5) / 0.25).reshape(1, 5, 7, 3))
