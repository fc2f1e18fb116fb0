"""The MLflow registry seam: register pushed models, find them again.

Everything the pipeline and `anomaly-pipeline score` do with the MLflow Model
Registry goes through the functions here (tests mock them at this seam):

- `register_version`: log the pushed SavedModel as an MLflow pyfunc model (the
  SavedModel is the model's `saved_model` artifact), register it as a new
  version of the registered model with the handoff tags, and move the alias
  `champion` to it when it is the newest blessed version;
- `resolve`: turn `models:/<name>@<alias>` or `models:/<name>/<version>` into a
  local SavedModel directory (the pushed copy when it is reachable, else the
  registry's own copy, downloaded).

`pyfunc.py` (the logged model's class) is the only other module importing mlflow.

A local store (`sqlite:///...`) is always used with an explicit artifact
location (`<output>/mlruns`). MLflow's SQL store also creates `./mlruns` in the
current directory when it is first opened; `_local_store` opens it from the
directory that holds the artifact location instead, so nothing is written to
the caller's working directory.
"""
import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient
from mlflow.types.schema import ColSpec, Schema

from components.model import layout
from components.registry import pyfunc

# No per-file progress bars on stderr when artifacts are copied.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

CHAMPION = "champion"
MODEL_ARTIFACT_PATH = "model"
# Version tags (strings, as MLflow stores them). registry.json carries the same.
TAG_SERVING_VERSION = "serving_version"
TAG_SAVED_MODEL_PATH = "saved_model_path"
TAG_BLESSED = "blessed"


class RegistryError(Exception):
    """A registry lookup the user can fix (unknown model, alias or version)."""


@dataclass(frozen=True)
class Registration:
    name: str
    version: str
    model_uri: str          # models:/<name>/<version>
    run_id: str
    source: str             # where the registry's copy of the model lives
    champion: Optional[str]  # the champion version after this registration
    previous_champion: Optional[str] = None  # before it (what `unregister` restores)


def _is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("sqlite", "file", "")


is_local = _is_local  # a store on this machine's disk (sqlite:///, file:)


def _local_dir_of(uri: str) -> Optional[str]:
    """The directory holding a local store (sqlite file or file store)."""
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else parsed.path
        if not path or path == ":memory:":
            return None
        return os.path.dirname(os.path.abspath(path if path.startswith("/") else path))
    if parsed.scheme in ("file", ""):
        return os.path.dirname(os.path.abspath(parsed.path or uri))
    return None


@contextlib.contextmanager
def _local_store(uri: str, artifact_location: Optional[str] = None) -> Iterator[None]:
    """Open a local store from the directory of its artifact location.

    MLflow's SqlAlchemyStore creates `./mlruns` (its default artifact root) when
    first opened in a process; doing that from `<output>/` makes it
    `<output>/mlruns`, the artifact location we use anyway.
    """
    if not _is_local(uri):
        yield
        return
    where = (os.path.dirname(os.path.abspath(artifact_location)) if artifact_location
             else _local_dir_of(uri))
    if not where:
        yield
        return
    os.makedirs(where, exist_ok=True)
    before = os.getcwd()
    os.chdir(where)
    try:
        yield
    finally:
        os.chdir(before)


def _client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(client: MlflowClient, name: str, artifact_location: Optional[str]) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    location = None
    if artifact_location:
        os.makedirs(artifact_location, exist_ok=True)
        location = "file://" + os.path.abspath(artifact_location)
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException as e:  # created concurrently
        if e.error_code != _code(RESOURCE_ALREADY_EXISTS):
            raise
        return client.get_experiment_by_name(name).experiment_id


def _code(proto_code) -> str:
    from mlflow.protos.databricks_pb2 import ErrorCode

    return ErrorCode.Name(proto_code)


def signature(numeric: List[str], strings: Sequence[str] = ()) -> ModelSignature:
    """What the pyfunc takes and returns (AnomalyPyfunc.predict / SavedModelScorer.score_frame):
    the numeric inputs as doubles, the categorical and timestamp ones as strings; none
    required (an empty cell is a missing value, scored)."""
    return ModelSignature(
        inputs=Schema([ColSpec("double", f, required=False) for f in numeric] +
                      [ColSpec("string", f, required=False) for f in strings]),
        outputs=Schema([ColSpec("double", "reconstruction_error"),
                        ColSpec("long", "is_anomaly"),
                        ColSpec("string", "top_features")]))


def _requirements() -> List[str]:
    # Stated explicitly: MLflow's inference of requirements loads the model in
    # a subprocess (slow) and guesses.
    import numpy
    import pandas
    import tensorflow

    return [f"mlflow=={mlflow.__version__}", f"tensorflow=={tensorflow.__version__}",
            f"pandas=={pandas.__version__}", f"numpy=={numpy.__version__}"]


def _code_dir() -> str:
    """The `components` package, shipped with the model so it loads anywhere."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _alias_version(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if e.error_code in (_code(RESOURCE_DOES_NOT_EXIST), "INVALID_PARAMETER_VALUE"):
            return None
        raise


def _newer(a, b) -> bool:
    """Version `a` was pushed after version `b` (serving version, then number)."""
    def key(mv):
        try:
            return (int(mv.tags.get(TAG_SERVING_VERSION, "0")), int(mv.version))
        except ValueError:
            return (0, int(mv.version))
    return key(a) > key(b)


def register_version(uri: str, name: str, saved_model_dir: str, serving_version: str,
                     blessed: bool, tags: Mapping[str, str], metrics: Mapping[str, float],
                     params: Mapping[str, str], artifact_location: Optional[str] = None,
                     experiment: Optional[str] = None, description: str = "",
                     saved_model_path: Optional[str] = None) -> Registration:
    """Log `saved_model_dir` as a pyfunc model and register it as a version of `name`.

    `saved_model_path` (default `saved_model_dir`) is the tag `saved_model_path`:
    where the version is served (the Pusher registers its staged copy before
    renaming it there). The alias `champion` moves to the new version when it
    is blessed and newer (by serving version) than the current champion.
    Raises on any failure; the caller decides what a failure means.
    """
    numeric, strings = layout.table_columns(layout.read_metadata(saved_model_dir))
    version_tags = dict(tags, **{TAG_SERVING_VERSION: str(serving_version),
                                 TAG_SAVED_MODEL_PATH: saved_model_path or saved_model_dir,
                                 TAG_BLESSED: str(bool(blessed)).lower()})
    with _local_store(uri, artifact_location):
        client = _client(uri)
        exp_id = _experiment_id(client, experiment or name, artifact_location)
        run = client.create_run(exp_id, run_name=f"{name}-{serving_version}",
                                tags={k: str(v) for k, v in version_tags.items()})
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()
                         if v is not None],
                params=[Param(k, str(v)[:6000]) for k, v in params.items()])
            with tempfile.TemporaryDirectory(prefix="registry-") as tmp:
                # MLflow names an artifact after its directory: copy the
                # SavedModel to .../saved_model so the registered model always
                # holds it at artifacts/saved_model.
                staged = os.path.join(tmp, pyfunc.SAVED_MODEL_ARTIFACT)
                shutil.copytree(saved_model_dir, staged)
                local = os.path.join(tmp, MODEL_ARTIFACT_PATH)
                mlflow.pyfunc.save_model(
                    path=local,
                    python_model=pyfunc.AnomalyPyfunc(),
                    artifacts={pyfunc.SAVED_MODEL_ARTIFACT: staged},
                    signature=signature(numeric, strings),
                    pip_requirements=_requirements(),
                    code_paths=[_code_dir()],
                )
                client.log_artifacts(run_id, local, MODEL_ARTIFACT_PATH)
            client.set_terminated(run_id, "FINISHED")
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        source = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + MODEL_ARTIFACT_PATH
        try:
            client.create_registered_model(
                name, description="Autoencoder anomaly detector pushed by anomaly-pipeline; "
                                  "alias 'champion' = newest blessed version.")
        except MlflowException as e:
            if e.error_code != _code(RESOURCE_ALREADY_EXISTS):
                raise
        mv = client.create_model_version(name, source=source, run_id=run_id,
                                         tags={k: str(v) for k, v in version_tags.items()},
                                         description=description)
        current = _alias_version(client, name, CHAMPION)
        champion = previous = str(current.version) if current is not None else None
        if blessed and (current is None or _newer(mv, current)):
            client.set_registered_model_alias(name, CHAMPION, str(mv.version))
            champion = str(mv.version)
    return Registration(name=name, version=str(mv.version), model_uri=f"models:/{name}/{mv.version}",
                        run_id=run_id, source=source, champion=champion,
                        previous_champion=previous)


def unregister(uri: str, reg: Registration, artifact_location: Optional[str] = None) -> None:
    """Undoes `register_version`: the version and its run are deleted and the alias
    `champion` goes back to the version it named before."""
    with _local_store(uri, artifact_location):
        client = _client(uri)
        client.delete_model_version(reg.name, reg.version)
        if reg.previous_champion is not None and reg.champion != reg.previous_champion:
            client.set_registered_model_alias(reg.name, CHAMPION, reg.previous_champion)
        client.delete_run(reg.run_id)


def delete_serving_version(uri: str, name: str, serving_version: str,
                           artifact_location: Optional[str] = None) -> List[str]:
    """Deletes the versions of `name` registered for `serving_version` (a push that
    never finished); returns their numbers. The champion alias of a deleted
    version goes to the newest blessed version left, if any."""
    deleted: List[str] = []
    with _local_store(uri, artifact_location):
        client = _client(uri)
        try:
            found = client.search_model_versions(f"name='{name}'")
        except MlflowException:
            return deleted
        champion = _alias_version(client, name, CHAMPION)
        for mv in found:
            if mv.tags.get(TAG_SERVING_VERSION) == str(serving_version):
                client.delete_model_version(name, mv.version)
                deleted.append(str(mv.version))
        if champion is not None and str(champion.version) in deleted:
            left = [mv for mv in found if str(mv.version) not in deleted
                    and mv.tags.get(TAG_BLESSED) == "true"]
            if left:
                best = left[0]
                for mv in left[1:]:
                    if _newer(mv, best):
                        best = mv
                client.set_registered_model_alias(name, CHAMPION, str(best.version))
    return deleted


def parse_model_uri(model_uri: str) -> Tuple[str, Optional[str], Optional[str]]:
    """`models:/name@alias` -> (name, None, alias); `models:/name/3` -> (name, "3", None)."""
    if not model_uri.startswith("models:/"):
        raise RegistryError(f"not a registry URI: {model_uri}")
    rest = model_uri[len("models:/"):].strip("/")
    if "@" in rest:
        name, alias = rest.rsplit("@", 1)
        if name and alias and "/" not in alias:
            return name, None, alias
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return name, version, None
    raise RegistryError(f"{model_uri}: expected models:/<name>@<alias> or "
                        "models:/<name>/<version>")


def _lookup(client: MlflowClient, name: str, version: Optional[str], alias: Optional[str]):
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, version)
    except MlflowException as e:
        what = f"alias '{alias}'" if alias is not None else f"version {version}"
        raise RegistryError(f"registered model '{name}' has no {what} ({e.error_code})") from None


def describe(uri: str, model_uri: str) -> Dict[str, Any]:
    """The registry's record of a version: name, version, source, tags, aliases."""
    name, version, alias = parse_model_uri(model_uri)
    with _local_store(uri):
        mv = _lookup(_client(uri), name, version, alias)
    return {"name": name, "version": str(mv.version), "source": mv.source,
            "run_id": mv.run_id, "tags": dict(mv.tags), "aliases": list(mv.aliases)}


def resolve(uri: str, model_uri: str, download_dir: Optional[str] = None
            ) -> Tuple[str, Dict[str, Any]]:
    """A local SavedModel directory for `model_uri`, and the registry record.

    Uses the pushed copy (tag `saved_model_path`) when it is reachable from
    here, else downloads the registry's copy into `download_dir` (a new
    temporary directory when None; the caller removes it).
    """
    info = describe(uri, model_uri)
    pushed = info["tags"].get(TAG_SAVED_MODEL_PATH)
    if pushed and layout.is_model_dir(pushed):
        layout.verify_model_dir(pushed)
        return pushed, info
    dst = download_dir or tempfile.mkdtemp(prefix="registry-model-")

    with _local_store(uri):
        local = mlflow.artifacts.download_artifacts(artifact_uri=info["source"], dst_path=dst,
                                                    tracking_uri=uri)
    saved = os.path.join(local, "artifacts", pyfunc.SAVED_MODEL_ARTIFACT)
    if not layout.is_model_dir(saved):
        raise RegistryError(f"{model_uri}: the registered model holds no SavedModel "
                            f"(looked in {saved})")
    layout.verify_model_dir(saved)
    info["downloaded_to"] = local
    return saved, info
