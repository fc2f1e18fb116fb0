"""What the tests share: the CLI in-process and as a subprocess, the one-error-line check,
and the generated data of the end-to-end tests.

Layout: tests/components/ and tests/pipeline/ mirror the code (fast unit
tests), tests/e2e/ runs the real DAG (marked `e2e`; `make test-fast` skips it).
"""
import os
import subprocess
import sys
import warnings

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", category=FutureWarning)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.helpers import cli_subprocess, make_data, one_error_line  # noqa: E402


@pytest.fixture
def main(capsys):
    """`anomaly-pipeline ARGV...` in this process: (exit code, stdout, stderr)."""
    from pipeline import cli

    def run(*argv):
        with pytest.raises(SystemExit) as e:
            sys.exit(cli.main([str(a) for a in argv]))
        out, err = capsys.readouterr()
        return e.value.code, out, err

    return run


@pytest.fixture(scope="session")
def cli():
    """`anomaly-pipeline ARGS...` as a subprocess (check=True: raise on a non-zero exit)."""
    return cli_subprocess


@pytest.fixture(scope="session")
def error_line():
    """The one `error:` line of a command's stderr (asserts there is exactly one, no traceback)."""
    return one_error_line


@pytest.fixture(scope="session")
def labelled_data():
    """make_data(n_normal=600, n_outliers=20, seed=7): the e2e tests' DataFrame."""
    return make_data
