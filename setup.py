"""Package for the TFX autoencoder anomaly-detection pipeline.

`make lock` compiles `requirements.lock` from the dependencies declared here; the
venv is always installed from that lock, never from these ranges directly.
"""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "tfx==1.16.0",
    # An unpinned resolve picks a newer Beam whose tfx-bsl import fails on `dill`.
    "apache-beam[gcp]==2.61.0",
    "pandas>=1.5,<2",
    "pyarrow>=10",
    "scikit-learn>=1.3,<1.6",
    "scipy>=1.10",
    "matplotlib>=3.7",
    # The CLI's progress bars on a terminal (pipeline/console.py); also a Keras dependency.
    "rich>=13",
    # tensorboard 2.16 (TF 2.16's) imports pkg_resources, which setuptools 81 removed:
    # without this pin the README's TensorBoard command fails.
    "setuptools<81",
]

EXTRAS = {
    "airflow": ["apache-airflow==2.10.5"],
    # `compile --target kubeflow-v2`: TFX's KFP v2 compiler imports only
    # kfp.pipeline_spec; 0.2.x keeps protobuf < 4 (TFX 1.16 needs 3.20).
    "kfp": ["kfp-pipeline-spec==0.2.2"],
    # starlette 1.x removed `app.route`, which `mlflow models serve` (2.x) uses.
    "mlflow": ["mlflow>=2.10,<3", "starlette<1"],
    # import-linter 2.15 is the last release for Python 3.10 (2.16+ need 3.11).
    "test": ["pytest>=7", "pytest-timeout", "psutil", "import-linter>=2.3,<2.16"],
}
EXTRAS["all"] = sorted({r for v in EXTRAS.values() for r in v})

setup(
    name="tfx-anomaly-pipeline",
    version="0.1.0",
    description="Production TFX pipeline for autoencoder anomaly detection on tabular data",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "components", "components.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["anomaly-pipeline=pipeline.cli:main"]},
)
