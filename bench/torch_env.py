"""PyTorch set-up shared by the benchmarks that hold mnemo to it.

Debian's python3-torch 1.13 is built with BLAS_INFO=generic: it calls whatever libblas.so.3 the system's
alternatives select, on these machines the Netlib reference BLAS (~2 GFLOP/s). A benchmark that wants PyTorch at its
best runs it in a child process whose LD_LIBRARY_PATH puts OpenBLAS's libblas.so.3 first: a directory from Debian's
libopenblas0-openmp, installed or unpacked (docs/performance.md), found here by openblas_dir("auto").
"""
import json
import os
import subprocess
import sys
import types

BLAS_CANDIDATES = ["/usr/lib/x86_64-linux-gnu/openblas-openmp",
                   "/work/perf-openblas/usr/lib/x86_64-linux-gnu/openblas-openmp"]


def openblas_dir(choice):
    """The directory a --torch-blas value names: "auto" = the first candidate holding libblas.so.3 (None, with a
    warning, when there is none), "system" = None (the BLAS as installed), anything else = that directory."""
    if choice == "system":
        return None
    if choice != "auto":
        return choice
    found = next((d for d in BLAS_CANDIDATES if os.path.exists(os.path.join(d, "libblas.so.3"))), None)
    if not found:
        print("warning: no OpenBLAS libblas.so.3 found; PyTorch runs on the system BLAS", file=sys.stderr)
    return found


def env_with_blas(blas_dir):
    """This process's environment with blas_dir (if any) first on LD_LIBRARY_PATH."""
    env = dict(os.environ)
    if blas_dir:
        rest = [p for p in env.get("LD_LIBRARY_PATH", "").split(":") if p]
        env["LD_LIBRARY_PATH"] = ":".join([blas_dir] + rest)
    return env


def run_child(script, args, blas_dir):
    """Run `python script args...` (blas_dir, if any, first on LD_LIBRARY_PATH); its last line of output as JSON."""
    env = env_with_blas(blas_dir)
    cmd = [sys.executable, os.path.abspath(script), *map(str, args)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, env=env, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def loaded_blas():
    """The BLAS libraries this process has loaded (what torch's matrix products run on)."""
    with open("/proc/self/maps") as f:
        return sorted({line.split()[-1] for line in f if "blas" in line.split()[-1]})


def hf_llama_from_gguf(gguf, threads):
    """transformers' LlamaForCausalLM from a GGUF file (dequantized to fp32, LM head tied to the embeddings, as the
    file has it), in eval mode, with torch on `threads` threads."""
    try:
        import sentencepiece  # noqa: F401
    except ImportError:  # the gguf package imports it for its writer only; transformers checks for its spec
        import importlib.machinery

        stub = types.ModuleType("sentencepiece")
        stub.__spec__ = importlib.machinery.ModuleSpec("sentencepiece", None)
        sys.modules["sentencepiece"] = stub
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    m = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf), gguf_file=os.path.basename(gguf),
                                             torch_dtype=torch.float32)
    m.lm_head.weight = m.model.embed_tokens.weight
    return m.eval()


def reexec_with_openblas(choice="auto"):
    """For benchmarks that run torch in their own process: start this script again with OpenBLAS's libblas.so.3
    first on LD_LIBRARY_PATH (the dynamic loader reads it only at start), unless it already is or `choice` says
    otherwise. Call before importing torch."""
    blas_dir = openblas_dir(choice)
    if blas_dir and blas_dir not in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        os.execve(sys.executable, [sys.executable, *sys.argv], env_with_blas(blas_dir))
