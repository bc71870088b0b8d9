"""tools/setup_env.py: the Detectron2 sdist patch, on a miniature copy of the sdist's layout."""
from __future__ import annotations

import subprocess
import sys

import pytest

from zegcag_testing import load_script

SETUP_PY = '''import glob
import torch
from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension
from setuptools import setup
torch_ver = [int(x) for x in torch.__version__.split(".")[:2]]
assert torch_ver >= [1, 8], "Requires PyTorch >= 1.8"
def get_extensions():
    ext_modules = []
    return ext_modules
setup(
    name="detectron2",
    install_requires=["black==21.4b2", "yacs"],
    ext_modules=get_extensions(),
    package_data={"detectron2.model_zoo": get_model_zoo_configs()},
    cmdclass={"build_ext": torch.utils.cpp_extension.BuildExtension},
)
'''


def load_setup_env():
    return load_script("tools/setup_env.py")


@pytest.fixture
def fake_sdist(tmp_path):
    root = tmp_path / "pb1-detectron2-0.6"
    (root / "detectron2/data").mkdir(parents=True)
    (root / "detectron2/model_zoo").mkdir(parents=True)
    (root / "setup.py").write_text(SETUP_PY)
    (root / "detectron2/data/transform.py").write_text(
        "from PIL import Image\nimport numpy as np\ndef f(interp=Image.LINEAR):\n    return np.zeros(2, dtype=np.float), np.float32\n")
    (root / "detectron2/model_zoo/model_zoo.py").write_text(
        'import os\nimport pkg_resources\ndef get_config_file(config_path):\n    cfg_file = pkg_resources.resource_filename(\n'
        '        "detectron2.model_zoo", os.path.join("configs", config_path)\n    )\n    return cfg_file\n')
    return root


def test_patch_removes_extension_and_fixes_removed_apis(fake_sdist):
    setup_env = load_setup_env()
    setup_env.patch_detectron2_sdist(fake_sdist)
    setup_py = (fake_sdist / "setup.py").read_text()
    assert "import torch" not in setup_py and "get_extensions" not in setup_py and "black" not in setup_py
    compile(setup_py, "setup.py", "exec")
    transform = (fake_sdist / "detectron2/data/transform.py").read_text()
    assert "Image.BILINEAR" in transform and "dtype=float)" in transform and "np.float32" in transform
    zoo = (fake_sdist / "detectron2/model_zoo/model_zoo.py").read_text()
    assert "pkg_resources" not in zoo and "os.path.dirname" in zoo
    placeholder = fake_sdist / "detectron2/_C.py"
    assert setup_env.PLACEHOLDER_MARK in placeholder.read_text()


def test_placeholder_op_raises_a_clear_error(fake_sdist, tmp_path):
    load_setup_env().patch_detectron2_sdist(fake_sdist)
    code = "import _C\nprint(_C.get_compiler_version())\n_C.nms_rotated(1, 2)\n"
    res = subprocess.run([sys.executable, "-c", code], cwd=fake_sdist / "detectron2", capture_output=True, text=True)
    assert "placeholder" in res.stdout
    assert res.returncode != 0 and "RuntimeError: detectron2._C.nms_rotated is a compiled op" in res.stderr


def test_unexpected_setup_py_is_refused(fake_sdist):
    (fake_sdist / "setup.py").write_text("import torch\nsetup(ext_modules=get_extensions())\n")
    with pytest.raises(RuntimeError, match="unexpected Detectron2 setup.py"):
        load_setup_env().patch_detectron2_sdist(fake_sdist)


def test_installed_detectron2_is_detected():
    assert load_setup_env().detectron2_state() in ("placeholder", "full")
