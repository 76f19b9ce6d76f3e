"""ONNX Runtime's own Python quantizer (onnxruntime.quantization) on one model, in several configs.

Runs INSIDE the trixie chroot built by bench/peer/setup-chroot.sh (python3-onnxruntime 1.21); bench/peer/compare.ts
drives it. Each config runs in a fresh child process so its wall time and peak RSS (os.wait4's ru_maxrss, the same
kernel counter /usr/bin/time reports) cover one quantization only, imports included, as a user would see it.

  python3 ort_quantize.py --model M.onnx --calib calib.npz --out-dir DIR [--configs default,all] [--batch 32]
  python3 ort_quantize.py --model M.onnx --calib CALIB_DIR --out-dir DIR --configs default,pre-pc-u8s8-minmax,dynamic
  python3 ort_quantize.py --list

--calib is an .npz (the whole calibration batch under the input's name) or a folder in `ptq quantize --calib`'s
contract, as bench/corpus/inputs.ts writes it: one sample per file, either *.npy (single-input models) or
test_data_set_*/input_<i>.pb TensorProtos named after their inputs; each sample is fed as it is (no re-batching).
'dynamic' = quantize_dynamic(model, out) with every argument at its default (no calibration data used).

Prints one JSON object per config on stdout: {"config", "file", "ok", "wallSeconds", "quantSeconds",
"peakRssBytes", "error"?, "notes"}.
"""
import argparse
import json
import os
import subprocess
import sys
import time

METHODS = ("minmax", "entropy", "percentile")
# activation/weight types; on x86 without VNNI ORT's u8*s8 kernel can saturate, and its docs suggest reduce_range
# (7-bit weights, "u8s8r") or u8u8 there, so both are in the grid.
TYPES = ("u8s8", "s8s8", "u8u8", "u8s8r")
GRANULARITY = ("pt", "pc")  # per-tensor, per-channel weights


def all_configs():
    """'default' = quantize_static with every argument left at its default, on the model as given.
    The grid = ORT's documented recipe: quant_pre_process first, then QDQ with each weight granularity, type pair
    and calibration method."""
    grid = [f"pre-{g}-{t}-{m}" for m in METHODS for t in TYPES for g in GRANULARITY]
    return ["default"] + grid


def parse_config(name):
    if name in ("default", "dynamic"):
        return None
    pre, gran, types, method = name.split("-")
    if pre != "pre" or gran not in GRANULARITY or types not in TYPES or method not in METHODS:
        raise SystemExit(f"ort_quantize: unknown config {name!r}; run --list")
    return {"per_channel": gran == "pc", "types": types, "method": method}


def calib_reader(npz_path, input_name, batch, fixed_batch):
    # Imported late: onnx.reference must be imported before onnxruntime in this Debian build.
    import numpy as np

    with np.load(npz_path) as z:
        keys = list(z.keys())
        if input_name in keys:
            x = z[input_name]
        elif len(keys) == 1:
            x = z[keys[0]]
        else:
            raise SystemExit(f"ort_quantize: {npz_path} has {keys}, none named {input_name!r}")
    step = fixed_batch or batch
    # a fixed-batch model cannot take the short tail
    starts = range(0, len(x) - step + 1 if fixed_batch else len(x), step)
    return list_reader([{input_name: np.ascontiguousarray(x[i : i + step], dtype=np.float32)} for i in starts])


def list_reader(feeds):
    """A CalibrationDataReader over a list of feed dicts."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(feeds):
                return None
            self.i += 1
            return feeds[self.i - 1]

        def rewind(self):
            self.i = 0

    return Reader()


def folder_reader(folder, graph_inputs):
    """One sample per file of a `ptq quantize --calib` folder, fed as written (each file holds its own batch)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    names = [i.name for i in graph_inputs]
    samples = []
    for entry in sorted(os.listdir(folder)):
        full = os.path.join(folder, entry)
        if entry.endswith(".npy"):
            if len(names) != 1:
                raise SystemExit(f"ort_quantize: {full} is a bare .npy but the model has {len(names)} inputs {names}")
            samples.append({names[0]: np.load(full)})
        elif entry.startswith("test_data_set_") and os.path.isdir(full):
            feed = {}
            for pb in sorted(f for f in os.listdir(full) if f.startswith("input_") and f.endswith(".pb")):
                t = onnx.TensorProto()
                with open(os.path.join(full, pb), "rb") as f:
                    t.ParseFromString(f.read())
                feed[t.name] = numpy_helper.to_array(t)
            missing = [n for n in names if n not in feed]
            if missing:
                raise SystemExit(f"ort_quantize: {full} has no tensor for input(s) {missing}")
            samples.append(feed)
    if not samples:
        raise SystemExit(f"ort_quantize: {folder} holds no *.npy nor test_data_set_* sample")
    return list_reader(samples)


def upgraded(model_path, work, notes, minimum=11):
    """quantize_static needs opset >= 11 (QDQ), per-channel QDQ >= 13 (DequantizeLinear's axis: ORT 1.21 writes
    an invalid model below that, without a warning); older models are converted first, as a user would."""
    import onnx
    from onnx import version_converter

    m = onnx.load(model_path)
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset >= minimum:
        return model_path
    out = os.path.join(work, os.path.basename(model_path).replace(".onnx", f".{os.getpid()}.opset13.onnx"))
    onnx.save(version_converter.convert_version(m, 13), out)
    notes.append(f"opset {opset} upgraded to 13 with onnx.version_converter first")
    return out


Q_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "ConvInteger")


def what_was_quantized(path):
    """Quantized ops and int8/uint8 weights in the written file, subgraphs included: ORT quantizes only weights that are
    initializers, and may write a model with nothing quantized without saying so."""
    import onnx

    ops = weights = 0

    def walk(g):
        nonlocal ops, weights
        weights += sum(1 for t in g.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) and t.name.endswith("_quantized"))
        for n in g.node:
            ops += n.op_type in Q_OPS or n.op_type.startswith("QLinear")
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sub in a.graphs:
                    walk(sub)

    walk(onnx.load(path).graph)
    return {"quantizedOps": ops, "quantizedWeights": weights}


def quantize_one(args):
    import onnx.reference  # noqa: F401  (must precede onnxruntime; see setup-chroot.sh)
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    t0 = time.perf_counter()
    notes = []
    cfg = parse_config(args.config)
    work = os.path.dirname(os.path.abspath(args.out))
    model = upgraded(args.model, work, notes, 13 if cfg and cfg["per_channel"] else 11)
    if args.config == "dynamic":
        quantize_dynamic(model, args.out)
        if model != args.model:
            os.remove(model)
        print(json.dumps({"quantSeconds": time.perf_counter() - t0, "notes": notes, **what_was_quantized(args.out)}))
        return
    inp = onnx.load(model, load_external_data=False).graph
    inits = {i.name for i in inp.initializer}
    graph_inputs = [i for i in inp.input if i.name not in inits]
    if os.path.isdir(args.calib):
        reader = folder_reader(args.calib, graph_inputs)
    else:
        graph_input = graph_inputs[0]
        dim0 = graph_input.type.tensor_type.shape.dim[0] if graph_input.type.tensor_type.shape.dim else None
        fixed = dim0.dim_value if dim0 is not None and dim0.HasField("dim_value") else 0
        reader = calib_reader(args.calib, graph_input.name, args.batch, fixed)
    if cfg is None:
        quantize_static(model, args.out, reader)
    else:
        pre = args.out.replace(".onnx", ".pre.onnx")
        try:
            quant_pre_process(model, pre)
        except Exception as e:  # ORT's recipe says "where it works": a model it cannot pre-process is quantized as given
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            notes.append(f"quant_pre_process failed ({type(e).__name__}: {first[:200]}); quantized the model as given")
            if os.path.exists(pre):
                os.remove(pre)
            pre = model
        act = QuantType.QInt8 if cfg["types"] == "s8s8" else QuantType.QUInt8
        weight = QuantType.QUInt8 if cfg["types"] == "u8u8" else QuantType.QInt8
        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}[cfg["method"]]
        quantize_static(
            pre,
            args.out,
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=cfg["per_channel"],
            activation_type=act,
            weight_type=weight,
            calibrate_method=method,
            reduce_range=cfg["types"] == "u8s8r",
        )
        if pre != model:
            os.remove(pre)
    if model != args.model:
        os.remove(model)
    print(json.dumps({"quantSeconds": time.perf_counter() - t0, "notes": notes, **what_was_quantized(args.out)}))


def run_all(args):
    names = all_configs() if args.configs == "all" else [c for part in args.configs.split(",") for c in (all_configs() if part == "all" else [part])]
    base = os.path.splitext(os.path.basename(args.model))[0]
    for name in dict.fromkeys(names):
        parse_config(name)
        out = os.path.join(args.out_dir, f"{base}.ort-{name}.onnx")
        # timeout(1) ends a config that runs too long; wait4 still reports the peak RSS of what it ran.
        limit = ["timeout", "-k", "5", str(args.timeout)] if args.timeout else []
        cmd = limit + [sys.executable, os.path.abspath(__file__), "--one", "--config", name, "--model", args.model, "--calib", args.calib, "--out", out, "--batch", str(args.batch)]
        t0 = time.perf_counter()
        log = out.replace(".onnx", ".log")
        with open(log, "wb") as err:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
            # stderr (ORT's warnings) goes to a file so it cannot fill a pipe; wait4, not p.wait(), reaps the
            # child so that its own rusage (peak RSS) is returned.
            stdout = p.stdout.read()
            _, status, usage = os.wait4(p.pid, 0)
        with open(log, "rb") as f:
            stderr = f.read()
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        rec = {"config": name, "file": out, "log": log, "ok": p.returncode == 0 and os.path.exists(out), "wallSeconds": wall, "peakRssBytes": usage.ru_maxrss * 1024}
        if rec["ok"]:
            rec.update(json.loads(stdout.decode().strip().splitlines()[-1]))
        else:
            lines = [l for l in stderr.decode().strip().splitlines() if l.strip()]
            timed_out = args.timeout and p.returncode in (124, 137)
            rec["error"] = f"timed out after {args.timeout} s" if timed_out else (lines or ["exit %d" % p.returncode])[-1]
        print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--calib", help="an .npz with the calibration batch under the model's input name (or a single array)")
    ap.add_argument("--out-dir")
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--configs", default="all", help="comma-separated config names, or 'all' (default: every static config; 'dynamic' is named on its own)")
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=32, help="calibration batch size (default 32, as `ptq quantize`)")
    ap.add_argument("--timeout", type=int, default=0, help="seconds per config (0 = no limit)")
    ap.add_argument("--list", action="store_true", help="print the config names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(all_configs() + ["dynamic"]))
        return
    if args.one:
        quantize_one(args)
        return
    if not (args.model and args.calib and args.out_dir):
        ap.error("--model, --calib and --out-dir are required")
    run_all(args)


if __name__ == "__main__":
    main()
