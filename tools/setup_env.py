#!/usr/bin/env python3
"""Set up a Python environment for zegcag: torch, Detectron2 and the package itself.

Run by ``make setup`` with the interpreter of the target virtual environment. Standard library
only, idempotent: each step first checks whether its result is already there, and a finished
set-up is recorded in a stamp file so that a second run downloads nothing.

Steps:
1. torch/torchvision: kept if an importable torch >= 2.1 exists, else ``pip install $TORCH_PACKAGES``.
2. Detectron2: kept if importable (a source build with compiled ops, or an earlier run of this
   script). Otherwise the PyPI sdist ``pb1-detectron2==0.6`` (Detectron2 v0.6 without its C++
   sources) is built as pure Python, with a placeholder ``detectron2._C`` whose ops raise a
   RuntimeError, and with the minimal patches for numpy 2 / Pillow >= 10 / setuptools >= 81
   listed in ``D2_SOURCE_PATCHES``.
3. zegcag in editable mode with its ``test`` extra.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TORCH = "torch==2.14.1 torchvision==0.29.1"
D2_SDIST = "pb1-detectron2==0.6"
D2_SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"
PLACEHOLDER_MARK = "zegcag placeholder for the compiled Detectron2 extension"

PLACEHOLDER_C = f'''"""{PLACEHOLDER_MARK}.

This Detectron2 was installed from the PyPI sdist without its C++/CUDA sources. Pure-Python
parts (config, data, modeling, engine, evaluation) work; a compiled op raises RuntimeError.
"""


def get_compiler_version():
    return "none (detectron2._C is a pure-Python placeholder)"


def get_cuda_version():
    return "none"


def has_cuda():
    return False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)

    def _missing(*args, **kwargs):
        raise RuntimeError(
            f"detectron2._C.{{name}} is a compiled op, and this Detectron2 was installed without its "
            "C++/CUDA extension. For a full build: pip install 'git+https://github.com/facebookresearch/detectron2.git' "
            "(needs a compiler and, for CUDA ops, the CUDA toolkit)."
        )

    return _missing
'''

# (file glob, old, new): the smallest edits that let Detectron2 0.6 run on current numpy/Pillow/setuptools.
D2_SOURCE_PATCHES = [
    ("detectron2/**/*.py", "Image.LINEAR", "Image.BILINEAR"),  # removed in Pillow 10 (an import-time default)
    ("detectron2/**/*.py", "Image.ANTIALIAS", "Image.LANCZOS"),  # removed in Pillow 10
]
NUMPY_ALIAS = re.compile(r"\bnp\.(int|float|bool|str|object)\b(?!_)")  # aliases removed in numpy 1.24


def log(msg: str) -> None:
    print(f"[zegcag setup] {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def probe(code: str) -> str | None:
    """Run ``code`` in this interpreter; its stdout, or None when it fails."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def pip(*args: str) -> None:
    run([sys.executable, "-m", "pip", *args])


def ensure_torch(spec: str) -> None:
    version = probe("import torch, torchvision; print(torch.__version__)")
    if version:
        major, minor = (int(x) for x in re.findall(r"\d+", version)[:2])
        if (major, minor) >= (2, 1):
            log(f"torch {version} already installed: kept")
            return
        log(f"torch {version} is older than 2.1: upgrading")
    pip("install", *spec.split())


def detectron2_state() -> str:
    """'full' (compiled ops), 'placeholder' (built by this script) or 'missing'."""
    out = probe(
        "import detectron2, detectron2._C as c, detectron2.data, detectron2.modeling;"
        "print(getattr(c, '__doc__', '') or '')"
    )
    if out is None:
        return "missing"
    return "placeholder" if PLACEHOLDER_MARK in out else "full"


def patch_detectron2_sdist(root: Path) -> None:
    """Make the sdist installable without torch at build time and without csrc."""
    setup_py = root / "setup.py"
    text = setup_py.read_text()
    text = text.replace("import torch\nfrom torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension\n", "")
    text = re.sub(r"torch_ver = .*?\nassert torch_ver.*?\n", "", text)
    text = re.sub(r"def get_extensions\(\):.*?return ext_modules\n", "", text, flags=re.S)
    text = text.replace(
        'package_data={"detectron2.model_zoo": get_model_zoo_configs()},',
        'package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},',
    )
    text = text.replace("ext_modules=get_extensions(),", "ext_modules=[],")
    text = text.replace('cmdclass={"build_ext": torch.utils.cpp_extension.BuildExtension},', "")
    text = text.replace('"black==21.4b2",', "")  # only used by LazyConfig.to_py, and broken with click >= 8.1
    if "get_extensions()" in text or "import torch" in text:
        raise RuntimeError(f"unexpected Detectron2 setup.py layout in {setup_py}: cannot strip the C++ extension")
    setup_py.write_text(text)
    shutil.rmtree(root / "pb1_detectron2.egg-info", ignore_errors=True)
    (root / "detectron2" / "_C.py").write_text(PLACEHOLDER_C)

    for py in [*root.glob("detectron2/**/*.py"), *root.glob("projects/**/*.py")]:
        old = py.read_text()
        new = NUMPY_ALIAS.sub(r"\1", old)
        for _, a, b in D2_SOURCE_PATCHES:
            new = new.replace(a, b)
        if py.name == "model_zoo.py" and py.parent.name == "model_zoo":  # setuptools >= 81 has no pkg_resources
            new = new.replace("import pkg_resources\n", "").replace(
                'pkg_resources.resource_filename(\n        "detectron2.model_zoo", os.path.join("configs", config_path)\n    )',
                'os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", config_path)',
            )
        if new != old:
            py.write_text(new)


def ensure_detectron2() -> None:
    state = detectron2_state()
    if state != "missing":
        log(f"detectron2 already installed ({state} build): kept")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        pip("download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation", D2_SDIST, "-d", tmp)
        sdist = next(tmp_path.glob("pb1*detectron2-0.6.tar.gz"))
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        if digest != D2_SDIST_SHA256:
            raise RuntimeError(f"{sdist.name}: sha256 {digest} differs from the expected {D2_SDIST_SHA256}")
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src = next(p for p in tmp_path.iterdir() if p.is_dir())
        patch_detectron2_sdist(src)
        pip("install", str(src))  # with its dependencies (fvcore, iopath, yacs, pycocotools, ...)
    if detectron2_state() != "placeholder":
        raise RuntimeError("detectron2 was installed but does not import; see the pip output above")
    log("detectron2 0.6 installed as pure Python (placeholder detectron2._C)")


def stamp_key() -> str:
    h = hashlib.sha256((REPO / "setup.py").read_bytes())
    h.update(str(REPO).encode())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch", default=os.environ.get("TORCH_PACKAGES", DEFAULT_TORCH),
                        help="pip requirement(s) for torch/torchvision when none is installed (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="redo every step even if the stamp says done")
    args = parser.parse_args()

    stamp = Path(sys.prefix) / ".zegcag-setup-stamp"
    if not args.force and stamp.is_file() and stamp.read_text() == stamp_key() and detectron2_state() != "missing":
        log(f"environment {sys.prefix} already set up: nothing to do")
        return
    ensure_torch(args.torch)
    ensure_detectron2()
    pip("install", "-e", f"{REPO}[test]")
    stamp.write_text(stamp_key())
    log(f"done: {sys.prefix}")


if __name__ == "__main__":
    main()
