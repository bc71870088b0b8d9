"""zegcag: zero-shot semantic segmentation on Detectron2.

Detectron2 is not listed as a requirement because it is not on PyPI under its own name:
``make setup`` (tools/setup_env.py) keeps an installed one or builds Detectron2 v0.6 from source.
"""
from setuptools import find_packages, setup

setup(
    name="zegcag",
    version="0.1.0",
    description="Zero-shot semantic segmentation (ZegFormer, CaGNet, baselines) on Detectron2",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["zegcag", "zegcag.*"]),
    package_data={
        "zegcag.data": ["splits/*.json"],
        "zegcag.embeddings": ["vectors/*/*.npy", "vectors/*/*.json", "templates/*.json"],
        "zegcag.model_zoo": ["*.pth"],
    },
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "numpy",
        "scipy",
        "pillow",
        "opencv-python-headless",
        "pycocotools",
        "fvcore",
        "iopath",
        "open_clip_torch",
        "tqdm",
        "tensorboard",
    ],
    extras_require={"test": ["pytest", "pytest-timeout"]},
)
