"""mnemo's file formats against the Python packages that define them.

- GGUF: llama.cpp's own `gguf` package writes small files with every metadata type and every tensor type mnemo
  reads (quantized by the package where it can quantize, random blocks with sane scales for the K types), and
  its `dequantize` is the reference for every value; the real SmolLM2 file is compared tensor by tensor.
- safetensors: files written by Hugging Face's `safetensors` (through torch) are read by mnemo and written back;
  the package must read mnemo's files and find the same values and metadata.

The C++ side is the FormatsOracle.* tests of $MNEMO_BUILD_DIR/tests/test_io (tests/io/formats_oracle_test.cpp).
Dequantization must agree to within 1 ulp (mnemo computes each value with the same fp32 operations, so in
practice it is exact; the tests report how many values differ at all).
"""
import json
import os
import shutil
import subprocess
import tempfile

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SMOLLM2 = os.path.join(ROOT, "data", "models", "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf")

gguf = pytest.importorskip("gguf")
pytest.importorskip("safetensors")
torch = pytest.importorskip("torch")
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file as torch_save_file  # noqa: E402

Q = gguf.GGMLQuantizationType


def _run_driver(test_name, **env_vars):
    build = os.environ.get("MNEMO_BUILD_DIR")
    if not build:
        pytest.skip("MNEMO_BUILD_DIR not set (scripts/test sets it)")
    exe = os.path.join(build, "tests", "test_io")
    assert os.path.exists(exe), f"{exe} missing: build the test_io target"
    env = dict(os.environ, **{k: str(v) for k, v in env_vars.items()})
    r = subprocess.run([exe, f"--gtest_filter=FormatsOracle.{test_name}"], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "[  PASSED  ] 1 test" in r.stdout and "SKIPPED" not in r.stdout, r.stdout[-3000:]


def _ulps(a, b):
    """Per-element distance in units in the last place between two float32 arrays (NaN == NaN)."""
    a = np.ascontiguousarray(a, dtype=np.float32).view(np.int32).astype(np.int64)
    b = np.ascontiguousarray(b, dtype=np.float32).view(np.int32).astype(np.int64)
    # Map the sign-magnitude bit patterns onto a monotonic integer line.
    a = np.where(a < 0, -(a & 0x7FFFFFFF), a)
    b = np.where(b < 0, -(b & 0x7FFFFFFF), b)
    return np.abs(a - b)


def _assert_close_ulp(got, want, what):
    assert got.shape == want.shape, f"{what}: shape {got.shape} vs {want.shape}"
    if np.array_equal(np.ascontiguousarray(got, dtype=np.float32).view(np.uint32),
                      np.ascontiguousarray(want, dtype=np.float32).view(np.uint32)):
        return 0  # bit-identical (the common case; the ulp arithmetic below is slow on 100M values)
    d = _ulps(got, want)
    worst = int(d.max()) if d.size else 0
    assert worst <= 1, f"{what}: {int((d > 1).sum())} values differ by more than 1 ulp (worst {worst})"
    return int((d != 0).sum())


def _random_k_blocks(qtype, n_blocks, rng):
    """Random K-quant blocks: random quant bytes, finite fp16 scales at the layout's scale offsets."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    half_fields = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for off in half_fields:
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        raw[:, off:off + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw


# ------------------------------------------------------------------------------------------------ small GGUF

METADATA = [  # (key, writer method, value, mnemo type name)
    ("t.u8", "add_uint8", 250, "uint8"),
    ("t.i8", "add_int8", -120, "int8"),
    ("t.u16", "add_uint16", 65000, "uint16"),
    ("t.i16", "add_int16", -32000, "int16"),
    ("t.u32", "add_uint32", 4_000_000_000, "uint32"),
    ("t.i32", "add_int32", -2_000_000_000, "int32"),
    ("t.u64", "add_uint64", 2**63 + 5, "uint64"),
    ("t.i64", "add_int64", -(2**62), "int64"),
    ("t.f32", "add_float32", 0.1, "float32"),
    ("t.f64", "add_float64", 0.1, "float64"),
    ("t.yes", "add_bool", True, "bool"),
    ("t.no", "add_bool", False, "bool"),
    ("t.str", "add_string", "héllo \"wörld\"\n", "string"),
    ("t.ints", "add_array", [3, -1, 7], "array of int32"),
    ("t.floats", "add_array", [0.5, -1.25], "array of float32"),
    ("t.strs", "add_array", ["a", "", "ü"], "array of string"),
    ("t.nested", "add_array", [["x", "y"], ["z"]], "array of array"),
    ("t.bools", "add_array", [True, False, True], "array of bool"),
]


def _write_small_gguf(path, rng):
    w = gguf.GGUFWriter(str(path), "llama")
    for key, method, value, _ in METADATA:
        getattr(w, method)(key, value)
    expected = {}
    # Types the package can quantize: from random fp32 values.
    for qt in [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]:
        x = rng.standard_normal((3, 64)).astype(np.float32)
        if qt == Q.F32:
            w.add_tensor(f"w.{qt.name}", x)
        elif qt == Q.F16:
            w.add_tensor(f"w.{qt.name}", x.astype(np.float16))
        else:
            w.add_tensor(f"w.{qt.name}", gguf.quants.quantize(x, qt), raw_dtype=qt)
    # K types: random blocks (two rows of two super-blocks).
    for qt in [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
        raw = _random_k_blocks(qt, 4, rng).reshape(2, -1)
        w.add_tensor(f"w.{qt.name}", raw, raw_dtype=qt)
    # Integer and double tensors, and a 3-D one.
    w.add_tensor("i.I8", np.arange(-4, 4, dtype=np.int8))
    w.add_tensor("i.I16", np.arange(-300, 300, 100, dtype=np.int16))
    w.add_tensor("i.I32", np.array([7, -1, 0, 2**30], dtype=np.int32))
    w.add_tensor("i.I64", np.array([5, -(2**40)], dtype=np.int64))
    w.add_tensor("i.F64", np.array([0.1, -3.0, 1e10], dtype=np.float64))
    w.add_tensor("w.3d", rng.standard_normal((2, 3, 32)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return expected


def _reference_values(reader_tensor):
    t = reader_tensor
    if t.tensor_type in (Q.F32, Q.F16, Q.I8, Q.I16, Q.I32, Q.I64, Q.F64):
        return np.asarray(t.data).astype(np.float32).reshape(tuple(reversed([int(d) for d in t.shape])))
    return gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(
        tuple(reversed([int(d) for d in t.shape])))


def _compare_dump(gguf_path, out_dir):
    meta = json.loads((out_dir / "gguf_meta.json").read_text())
    reader = gguf.GGUFReader(str(gguf_path))
    got = safe_open(str(out_dir / "gguf_tensors.safetensors"), "np")
    by_name = {t["name"]: t for t in meta["tensors"]}
    assert [t.name for t in reader.tensors] == [t["name"] for t in meta["tensors"]]
    inexact = 0
    for t in reader.tensors:
        m = by_name[t.name]
        assert m["type"] == t.tensor_type.name, t.name
        assert m["shape"] == [int(d) for d in reversed(t.shape)], t.name
        assert m["offset"] == int(t.data_offset), t.name
        inexact += _assert_close_ulp(got.get_tensor(t.name), _reference_values(t), t.name)
    return meta, reader, inexact


def test_small_gguf_every_metadata_and_tensor_type(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "small.gguf"
    _write_small_gguf(path, rng)
    _run_driver("DumpGguf", MNEMO_ORACLE_GGUF=path, MNEMO_ORACLE_OUT=tmp_path)
    meta, reader, inexact = _compare_dump(path, tmp_path)
    assert inexact == 0, f"{inexact} values differ (by 1 ulp) from gguf.quants.dequantize"
    assert meta["version"] == 3 and meta["alignment"] == 32
    md = meta["metadata"]
    assert md["general.architecture"] == {"type": "string", "value": "llama"}
    for key, _, value, tname in METADATA:
        assert md[key]["type"] == tname, key
        v = md[key]["value"]
        if tname == "float32":
            assert v == float(np.float32(value)), key
        elif tname == "array of float32":
            assert v == [float(np.float32(x)) for x in value], key
        else:
            assert v == value, key
    assert len(reader.tensors) == 19


# ------------------------------------------------------------------------------------------------ SmolLM2

def _reader_field_value(field):
    types_ = field.types
    if types_[0] == gguf.GGUFValueType.ARRAY:
        if types_[1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if types_[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    return field.parts[field.data[0]].tolist()[0]


@pytest.fixture
def big_tmp(tmp_path):
    """A scratch directory in memory when the machine has /dev/shm (the SmolLM2 dump is 540 MB of fp32)."""
    if os.path.isdir("/dev/shm"):
        d = tempfile.mkdtemp(prefix="mnemo_formats_", dir="/dev/shm")
        yield __import__("pathlib").Path(d)
        shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path


def test_smollm2_every_tensor_and_key_matches_gguf(big_tmp):
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not present (scripts/setup fetches it)")
    _run_driver("DumpGguf", MNEMO_ORACLE_GGUF=SMOLLM2, MNEMO_ORACLE_OUT=big_tmp)
    meta, reader, inexact = _compare_dump(SMOLLM2, big_tmp)
    assert inexact == 0, f"{inexact} values differ (by 1 ulp) from gguf.quants.dequantize"
    assert {t.tensor_type.name for t in reader.tensors} == {"F32", "Q4_1", "Q8_0"}
    md = meta["metadata"]
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert keys == list(md.keys())
    for k in keys:
        f = reader.fields[k]
        want_type = gguf.GGUFValueType(f.types[0]).name.lower()
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            want_type += " of " + gguf.GGUFValueType(f.types[1]).name.lower()
        assert md[k]["type"] == want_type, k
        want = _reader_field_value(f)
        if isinstance(want, float):
            want = float(np.float32(want))
        assert md[k]["value"] == want, k


# ------------------------------------------------------------------------------------------------ safetensors

def test_safetensors_round_trip_with_the_reference_package(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "f32": torch.randn(3, 5, generator=g),
        "f16": torch.randn(7, generator=g).to(torch.float16),
        "bf16": torch.randn(4, 4, generator=g).to(torch.bfloat16),
        "f64": torch.randn(2, generator=g).to(torch.float64),
        "i64": torch.tensor([1, -2, 2**40]),
        "i32": torch.tensor([[3, -4]], dtype=torch.int32),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    src = tmp_path / "py.safetensors"
    torch_save_file(tensors, str(src), metadata={"format": "pt", "note": "ünïcode"})
    _run_driver("RewriteSafetensors", MNEMO_ORACLE_ST=src, MNEMO_ORACLE_OUT=tmp_path)

    for name in ["st_f32.safetensors", "st_bf16.safetensors"]:
        with safe_open(str(tmp_path / name), "pt") as f:
            assert f.metadata() == {"format": "pt", "note": "ünïcode"}, name
        raw = (tmp_path / name).read_bytes()
        assert (8 + int.from_bytes(raw[:8], "little")) % 8 == 0, f"{name}: data not 8-byte aligned"

    from safetensors.torch import load_file
    f32 = load_file(str(tmp_path / "st_f32.safetensors"))
    assert set(f32) == set(tensors)
    for k, t in tensors.items():
        assert f32[k].dtype == torch.float32, k
        assert f32[k].shape == t.shape, k
        assert torch.equal(f32[k], t.to(torch.float32)), k
    bf16 = load_file(str(tmp_path / "st_bf16.safetensors"))
    assert set(bf16) == {"f32", "f16", "bf16", "f64", "scalar", "empty"}
    for k, t in bf16.items():
        assert t.dtype == torch.bfloat16, k
        # torch rounds fp32 -> bf16 to nearest even, as mnemo does (f64 is first rounded to fp32 by mnemo).
        assert torch.equal(t, tensors[k].to(torch.float32).to(torch.bfloat16)), k


# ------------------------------------------------------------------------------------------------ mnemo inspect

def test_inspect_verb_lists_what_gguf_reads():
    exe = os.environ.get("MNEMO_BIN")
    if not exe:
        pytest.skip("MNEMO_BIN not set (scripts/test sets it)")
    if not os.path.exists(SMOLLM2):
        pytest.skip(f"{SMOLLM2} not present (scripts/setup fetches it)")
    r = subprocess.run([exe, "inspect", SMOLLM2, "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    reader = gguf.GGUFReader(SMOLLM2)
    assert got["format"] == "gguf" and got["version"] == 3
    assert [(t["name"], t["type"], t["shape"], t["bytes"], t["offset"]) for t in got["tensors"]] == [
        (t.name, t.tensor_type.name, [int(d) for d in reversed(t.shape)], int(t.n_bytes), int(t.data_offset))
        for t in reader.tensors]
    assert got["metadata"]["tokenizer.ggml.tokens"]["type"] == "array of string"
    assert len(got["metadata"]["tokenizer.ggml.tokens"]["value"]) == 9  # 8 items and the "... N more" note
    bad = subprocess.run([exe, "inspect", os.path.join(ROOT, "README.md")], capture_output=True, text=True)
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1 and "README.md" in bad.stderr
