"""pipeline/beam_staging.py: the project's sdist for Beam workers outside this process
(`make test-distributed` runs it on a worker host for real)."""
import os
import shutil
import tarfile

import pytest

from pipeline import beam_staging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("args", [
    [], ["--direct_num_workers=2"], ["--runner=DirectRunner"], ["--runner", "direct"],
    ["--runner=apache_beam.runners.direct.direct_runner.DirectRunner"],
    ["--runner=SwitchingDirectRunner", "--direct_running_mode=multi_processing"],
])
def test_in_process_runners_need_no_package(args):
    assert not beam_staging.needs_project_package(args)


@pytest.mark.parametrize("args", [
    ["--runner=PortableRunner", "--job_endpoint=h:8099", "--environment_type=EXTERNAL"],
    ["--runner", "FlinkRunner"], ["--runner=DataflowRunner"], ["--runner=spark"],
])
def test_runners_elsewhere_need_the_package(args):
    assert beam_staging.needs_project_package(args)


@pytest.mark.parametrize("flag", ["--setup_file=/s/setup.py", "--extra_package=/x.tar.gz",
                                  "--requirements_file=r.txt", "--sdk_container_image=img"])
def test_a_dependency_flag_of_the_user_wins(flag):
    assert not beam_staging.needs_project_package(["--runner=PortableRunner", flag])
    assert beam_staging.with_project_package(["--runner=PortableRunner", flag]) == \
        ["--runner=PortableRunner", flag]


def _copy_project(dst):
    os.makedirs(dst)
    shutil.copy2(os.path.join(ROOT, "setup.py"), dst)
    for pkg in beam_staging.PACKAGES:
        shutil.copytree(os.path.join(ROOT, pkg), os.path.join(dst, pkg),
                        ignore=shutil.ignore_patterns("__pycache__"))
    return str(dst)


@pytest.mark.slow
def test_sdist_holds_the_project_and_its_path_depends_only_on_the_sources(tmp_path):
    src = _copy_project(tmp_path / "src")
    cache = str(tmp_path / "cache")
    path = beam_staging.build_project_sdist(src, cache)
    assert path and path.endswith(".tar.gz") and os.path.dirname(os.path.dirname(path)) == cache
    with tarfile.open(path) as t:
        names = t.getnames()
    # The modules whose DoFns Beam workers unpickle.
    for module in ("components/evaluator/error_pass.py", "pipeline/batch_scoring/beam_job.py"):
        assert any(n.endswith(module) for n in names), module
    assert any(n.endswith("PKG-INFO") for n in names)
    assert not any("__pycache__" in n for n in names)
    # Same sources, same path, not rebuilt: the Beam args (TFX's cache key) stay the same.
    mtime = os.path.getmtime(path)
    assert beam_staging.build_project_sdist(src, cache) == path
    assert os.path.getmtime(path) == mtime
    # Changed sources, another path; the checkout gets no build leftovers.
    with open(os.path.join(src, "components", "errors.py"), "a", encoding="utf-8") as f:
        f.write("# changed\n")
    changed = beam_staging.build_project_sdist(src, cache)
    assert changed and changed != path and os.path.isfile(path)
    assert sorted(os.listdir(src)) == ["components", "pipeline", "setup.py"]


def test_no_source_tree_no_package(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_staging, "project_root", lambda: None)
    assert beam_staging.build_project_sdist(cache_dir=str(tmp_path)) is None
    args = ["--runner=PortableRunner"]
    assert beam_staging.with_project_package(args) == args


def test_a_failed_build_is_no_package(tmp_path):
    src = tmp_path / "src"
    _copy_project(src)
    (src / "setup.py").write_text("raise SystemExit('broken setup.py')\n")
    assert beam_staging.build_project_sdist(str(src), str(tmp_path / "cache")) is None


def test_with_project_package_appends_the_sdist(monkeypatch):
    monkeypatch.setattr(beam_staging, "build_project_sdist", lambda: "/c/p-0.1.0.tar.gz")
    args = ["--runner=PortableRunner", "--job_endpoint=h:8099"]
    assert beam_staging.with_project_package(args) == args + ["--extra_package=/c/p-0.1.0.tar.gz"]
    assert beam_staging.with_project_package(["--runner=DirectRunner"]) == ["--runner=DirectRunner"]
