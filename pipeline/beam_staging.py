"""This project as a package for Beam workers on other hosts (tensorflow/tfx#3435, #4764).

Beam workers unpickle the DoFns they run, and some of ours live in this
project (the AnomalyEvaluator's error pass in `components/evaluator/`,
`score`'s handler and writer in `pipeline/batch_scoring/`), so a worker must be
able to import `components` and `pipeline`. Two things go wrong without this
module when the Beam args name a runner outside this process:

- TFX's BaseBeamExecutor, given Beam args without a dependency flag, builds an
  "ephemeral" sdist of TFX itself before every Beam component
  (`tfx.utils.dependency_utils`: 2-3 s and a 49 MB copy of TFX in /tmp each
  time) and stages it: it holds TFX, not this project;
- so workers that install what the job stages (Dataflow, the Beam SDK
  container's boot on Flink/Spark) still cannot import this project.

`with_project_package(args)` adds `--extra_package=<sdist of this project>`;
TFX then sees a dependency flag and builds nothing. The sdist's path depends
only on the sources (content-addressed), so the same code gives the same Beam
args and TFX's cache, which keys on them, still hits. An EXTERNAL worker pool
installs nothing that is staged: there the project must be installed
(docs/runners.md, "Running on a Beam cluster").
"""
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional, Sequence

# The Beam options TFX's make_beam_dependency_flags takes as "dependencies given".
DEPENDENCY_OPTIONS = ("extra_packages", "setup_file", "requirements_file",
                      "sdk_container_image", "worker_harness_container_image")
# Runners whose workers are this process or its children (they import what we import).
IN_PROCESS_RUNNERS = {"directrunner", "bundlebaseddirectrunner", "switchingdirectrunner",
                      "interactiverunner", "testdirectrunner"}
PACKAGES = ("pipeline", "components")
CACHE_DIR_NAME = "anomaly-pipeline-sdist"


def _options(args: Sequence[str]) -> dict:
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(list(args)).get_all_options()


def _runner_key(runner: str) -> str:
    """Beam's normalization of a runner name: `direct`, `DirectRunner` and
    `apache_beam...DirectRunner` are one runner."""
    name = runner.rsplit(".", 1)[-1].lower()
    return name if name.endswith("runner") else name + "runner"


def needs_project_package(args: Sequence[str]) -> bool:
    """True when `args` name a runner outside this process and no dependency option."""
    if not args:
        return False
    options = _options(args)
    runner = options.get("runner")
    if not runner or _runner_key(runner) in IN_PROCESS_RUNNERS:
        return False
    return not any(options.get(name) for name in DEPENDENCY_OPTIONS)


def project_root() -> Optional[str]:
    """The source tree `pipeline` is imported from, when it holds setup.py (an
    editable install, as `make venv` makes); None for an installed copy."""
    import pipeline

    root = os.path.dirname(os.path.dirname(os.path.abspath(pipeline.__file__)))
    return root if os.path.isfile(os.path.join(root, "setup.py")) else None


def source_files(root: str) -> List[str]:
    """setup.py and every file of the packages (no bytecode), relative, sorted."""
    files = ["setup.py"]
    for pkg in PACKAGES:
        for d, dirs, names in os.walk(os.path.join(root, pkg)):
            dirs[:] = sorted(x for x in dirs if x != "__pycache__")
            files += sorted(os.path.relpath(os.path.join(d, n), root)
                            for n in names if not n.endswith((".pyc", ".pyo")))
    return files


def source_digest(root: str, files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode() + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            digest.update(f.read() + b"\0")
    return digest.hexdigest()[:16]


def build_project_sdist(root: Optional[str] = None, cache_dir: Optional[str] = None
                        ) -> Optional[str]:
    """Path of an sdist of the project at `root` (default: project_root()), or
    None when there is no source tree or the build fails (logged).

    Built once per content into <cache_dir>/<sha256 of the sources>/ (default
    cache_dir: <tmp>/anomaly-pipeline-sdist): from a copy of setup.py and the
    packages, so the checkout is left untouched, and moved into place
    atomically, so concurrent runs are safe.
    """
    root = root or project_root()
    if root is None:
        return None
    files = source_files(root)
    out_dir = os.path.join(cache_dir or os.path.join(tempfile.gettempdir(), CACHE_DIR_NAME),
                           source_digest(root, files))
    built = sorted(n for n in os.listdir(out_dir) if n.endswith(".tar.gz")) \
        if os.path.isdir(out_dir) else []
    if len(built) == 1:
        return os.path.join(out_dir, built[0])
    os.makedirs(out_dir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="build-", dir=out_dir)
    try:
        src, dist = os.path.join(tmp, "src"), os.path.join(tmp, "dist")
        for rel in files:
            os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
            shutil.copy2(os.path.join(root, rel), os.path.join(src, rel))
        proc = subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", dist],
                              cwd=src, capture_output=True, text=True)
        made = os.listdir(dist) if os.path.isdir(dist) else []
        if proc.returncode != 0 or len(made) != 1:
            logging.warning("could not build an sdist of the project for Beam workers: %s",
                            (proc.stderr or proc.stdout).strip()[-500:])
            return None
        path = os.path.join(out_dir, made[0])
        os.replace(os.path.join(dist, made[0]), path)
        return path
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def with_project_package(args: Sequence[str]) -> List[str]:
    """`args` plus `--extra_package=<project sdist>` for a runner outside this
    process without a dependency option; otherwise `args` unchanged."""
    args = list(args)
    if not needs_project_package(args):
        return args
    sdist = build_project_sdist()
    if sdist is None:
        logging.warning("Beam workers get no package of this project: install it where they "
                        "run, or pass --extra_package/--setup_file/--sdk_container_image")
        return args
    logging.info("staging the project for Beam workers: --extra_package=%s", sdist)
    return args + [f"--extra_package={sdist}"]
