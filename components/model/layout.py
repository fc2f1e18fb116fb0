"""The layout of an exported model, named in one place.

A model directory (the Trainer's `Format-Serving/`, a pushed
`serving_model/<name>/<version>/`) holds:

    saved_model.pb, variables/variables.*     the SavedModel (signatures below)
    fingerprint.pb
    assets/model_metadata.json                features (the raw columns read),
                                              numeric_inputs / string_inputs (score_table's
                                              column order), error_columns (feature_errors'),
                                              roles, input_layout, label_column, settings
    assets/threshold.json                     threshold, method, params, error stats
                                              (written by the AnomalyEvaluator)
    assets/training_summary.json              the Trainer's summary

`serving_model/<name>/` holds one directory per version, named by an integer
(the push time); the newest is the largest number. Reading the JSON files
needs no TensorFlow graph load (`tf.io.gfile` for remote paths, imported lazily).
"""
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from components.errors import InputError

SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_DIR = "assets"
METADATA_FILE = "model_metadata.json"
THRESHOLD_FILE = "threshold.json"
TRAINING_SUMMARY_FILE = "training_summary.json"
VARIABLES_PREFIX = os.path.join("variables", "variables")
THRESHOLD_CHECKPOINT_KEY = "threshold/.ATTRIBUTES/VARIABLE_VALUE"

# Signatures (see components/model/export.py).
SERVING_SIGNATURE = "serving_default"          # serialized tf.Examples of raw columns
SCORE_FEATURES_SIGNATURE = "score_features"    # float32 [batch, d] raw values (numbers only)
SCORE_TABLE_SIGNATURE = "score_table"          # float32 numbers + string columns
SCORE_STORED_SIGNATURE = "score_stored_examples"  # tf.Examples as ExampleGen stored them
TRANSFORM_SIGNATURE = "transform_features"     # the z-scored matrix
OUTPUTS = ("reconstruction_error", "is_anomaly", "threshold", "feature_errors")

_VERSION = re.compile(r"\d+")


def asset_path(model_dir: str, name: str) -> str:
    return os.path.join(model_dir, ASSETS_DIR, name)


def is_model_dir(path: str) -> bool:
    return os.path.exists(os.path.join(path, SAVED_MODEL_FILE))


def versions(base_dir: str) -> List[str]:
    """The version directories under `serving_model/<name>/`, oldest first."""
    if not os.path.isdir(base_dir):
        return []
    found = [d for d in os.listdir(base_dir) if _VERSION.fullmatch(d)
             and is_model_dir(os.path.join(base_dir, d))]
    return sorted(found, key=int)


def newest_version_dir(base_dir: str) -> Optional[str]:
    """The newest `<base_dir>/<version>/`, or None."""
    found = versions(base_dir)
    return os.path.join(base_dir, found[-1]) if found else None


def resolve_model_dir(path: str) -> str:
    """A model directory, or a `serving_model/<name>` directory whose newest version is used.

    Raises InputError naming the path when it is neither.
    """
    if not os.path.isdir(path):
        raise InputError(path, problem="model directory not found")
    if is_model_dir(path):
        return path
    newest = newest_version_dir(path)
    if newest is None:
        raise InputError(path, problem=f"not a SavedModel (no {SAVED_MODEL_FILE}) nor a "
                                       f"directory of numbered versions")
    return newest


def write_json(path: str, data: Any) -> None:
    import tensorflow as tf  # gfile: artifacts may live on a remote filesystem

    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True, default=float))


def read_json(path: str) -> Any:
    if "://" not in path:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def read_metadata(model_dir: str) -> Dict[str, Any]:
    """assets/model_metadata.json."""
    return read_json(asset_path(model_dir, METADATA_FILE))


def model_features(model_dir: str) -> List[str]:
    """The raw columns the model reads (an input must have them)."""
    return list(read_metadata(model_dir)["features"])


def table_columns(metadata: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """(numeric_inputs, string_inputs): the score_table signature's column order
    (a model from before string columns: every feature numeric)."""
    numeric = metadata.get("numeric_inputs")
    if numeric is None:
        return list(metadata["features"]), []
    return list(numeric), list(metadata.get("string_inputs") or [])


def error_columns(metadata: Dict[str, Any]) -> List[str]:
    """The columns of `feature_errors`, in order (what top_features names)."""
    return list(metadata.get("error_columns") or metadata["features"])


def exists(path: str) -> bool:
    if "://" not in path:
        return os.path.exists(path)
    import tensorflow as tf

    return tf.io.gfile.exists(path)


def read_threshold(model_dir: str) -> Optional[Dict[str, Any]]:
    """assets/threshold.json (threshold, method, params, error statistics), if present."""
    path = asset_path(model_dir, THRESHOLD_FILE)
    return read_json(path) if exists(path) else None


# --------------------------------------------------------------------------- checks
# A pushed version carries checksums.json: the sha256 and size of every other
# file, written by the Pusher into the version before it is renamed into place
# (components/registry/push.py), and where it came from ("source").
CHECKSUMS_FILE = "checksums.json"
_REQUIRED = (SAVED_MODEL_FILE, VARIABLES_PREFIX + ".index",
             os.path.join(ASSETS_DIR, METADATA_FILE))
_BROKEN_ADVICE = "push it again (rerun the pipeline) or use another version"


def _sha256(path: str) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_files(model_dir: str) -> List[str]:
    """Every file under `model_dir` (relative, sorted), checksums.json left out."""
    out = []
    for root, _, files in os.walk(model_dir):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), model_dir)
            if rel != CHECKSUMS_FILE:
                out.append(rel)
    return sorted(out)


def checksums(model_dir: str) -> Dict[str, Dict[str, Any]]:
    """{relative path: {"sha256", "size"}} of every file of a model directory."""
    return {rel: {"sha256": _sha256(os.path.join(model_dir, rel)),
                  "size": os.path.getsize(os.path.join(model_dir, rel))}
            for rel in model_files(model_dir)}


def write_checksums(model_dir: str, source: Optional[Dict[str, Any]] = None) -> str:
    """Writes `<model_dir>/checksums.json` (fsynced); returns its path."""
    path = os.path.join(model_dir, CHECKSUMS_FILE)
    data = {"algorithm": "sha256", "files": checksums(model_dir), "source": source or {}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_checksums(model_dir: str) -> Optional[Dict[str, Any]]:
    """checksums.json of a pushed version, None when there is none; InputError when broken."""
    path = os.path.join(model_dir, CHECKSUMS_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data.get("files"), dict):
            raise ValueError("no 'files' table")
        return data
    except (OSError, ValueError, AttributeError) as e:
        raise InputError(path, problem=f"broken model: checksums unreadable ({e}); "
                                       f"{_BROKEN_ADVICE}") from None


def _broken(model_dir: str, part: str, problem: str) -> InputError:
    return InputError(os.path.join(model_dir, part),
                      problem=f"broken model: {problem}; {_BROKEN_ADVICE}")


def verify_model_dir(model_dir: str, read_variables: bool = True) -> Dict[str, Any]:
    """Checks a model directory before any work with it; returns its metadata.

    In order: the files a SavedModel needs are there; assets/model_metadata.json
    (and threshold.json) parse; with checksums.json (every pushed version), each
    file has its recorded size and sha256; saved_model.pb holds the
    `serving_default` and `score_features` signatures, the latter taking as many
    features as the metadata names; without checksums, every variable of the
    checkpoint is read (with `read_variables`). Raises InputError naming the
    broken part. Costs a hash of the files (a few MB) and no graph load.
    """
    if not os.path.isdir(model_dir):
        raise InputError(model_dir, problem="model directory not found")
    for rel in _REQUIRED:
        full = os.path.join(model_dir, rel)
        if not os.path.isfile(full):
            raise _broken(model_dir, rel, "missing file")
        if rel == SAVED_MODEL_FILE and os.path.getsize(full) == 0:
            raise _broken(model_dir, rel, "empty file")
    variables_dir = os.path.dirname(os.path.join(model_dir, VARIABLES_PREFIX))
    if not any(n.startswith("variables.data-") for n in os.listdir(variables_dir)):
        raise _broken(model_dir, "variables", "no variables.data-* file")
    metadata = _verified_json(model_dir, os.path.join(ASSETS_DIR, METADATA_FILE))
    features = metadata.get("features") if isinstance(metadata, dict) else None
    if not (isinstance(features, list) and features
            and all(isinstance(f, str) for f in features)):
        raise _broken(model_dir, os.path.join(ASSETS_DIR, METADATA_FILE),
                      "no list of feature names under 'features'")
    if os.path.exists(asset_path(model_dir, THRESHOLD_FILE)):
        _verified_json(model_dir, os.path.join(ASSETS_DIR, THRESHOLD_FILE))
    sums = read_checksums(model_dir)
    if sums is not None:
        _verify_checksums(model_dir, sums["files"])
    _verify_signatures(model_dir, metadata)
    if sums is None and read_variables:
        _read_variables(model_dir)
    return metadata


def _verified_json(model_dir: str, rel: str) -> Any:
    try:
        return read_json(os.path.join(model_dir, rel))
    except (OSError, ValueError) as e:
        raise _broken(model_dir, rel, f"unparseable ({type(e).__name__}: {e})") from None


def _verify_checksums(model_dir: str, files: Dict[str, Any]) -> None:
    for rel, want in sorted(files.items()):
        full = os.path.join(model_dir, rel)
        if not os.path.isfile(full):
            raise _broken(model_dir, rel, "missing file (listed in checksums.json)")
        size = os.path.getsize(full)
        if size != want.get("size"):
            raise _broken(model_dir, rel, f"{size} bytes, checksums.json says "
                                          f"{want.get('size')} (truncated or changed)")
        if _sha256(full) != want.get("sha256"):
            raise _broken(model_dir, rel, "sha256 differs from checksums.json (changed "
                                          "after the push)")


def _varint(buf: bytes, i: int):
    shift = result = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes):
    """(field number, value) of a protobuf message: bytes for length-delimited
    fields, int for varints (fixed-width fields are skipped)."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > len(buf):
                raise ValueError("truncated field")
            yield number, buf[i:i + n]
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire}")


def _map(buf: bytes, number: int) -> Dict[str, bytes]:
    """A map<string, message> field of `buf`: {key: value bytes}."""
    out = {}
    for n, entry in _fields(buf):
        if n == number:
            parts = dict(_fields(entry))
            out[parts.get(1, b"").decode("utf-8", "replace")] = parts.get(2, b"")
    return out


def signatures(saved_model_pb: bytes) -> Dict[str, Dict[str, Optional[List[int]]]]:
    """{signature: {input: shape or None}} read from saved_model.pb's bytes.

    Decodes the few fields needed (SavedModel.meta_graphs -> MetaGraphDef.
    signature_def -> SignatureDef.inputs -> TensorInfo.tensor_shape) without
    TensorFlow. Raises ValueError on bytes that are not such a message.
    """
    metas = [v for n, v in _fields(saved_model_pb) if n == 2]
    if not metas:
        raise ValueError("no meta graph")
    out: Dict[str, Dict[str, Optional[List[int]]]] = {}
    for name, sig in _map(metas[0], 5).items():
        inputs = {}
        for key, info in _map(sig, 1).items():
            shape = next((v for n, v in _fields(info) if n == 3), None)
            dims = None
            if shape is not None:
                dims = []
                for n, dim in _fields(shape):
                    if n == 2:
                        size = dict(_fields(dim)).get(1, 0)
                        dims.append(size - (1 << 64) if size >= 1 << 63 else size)
            inputs[key] = dims
        out[name] = inputs
    return out


def _verify_signatures(model_dir: str, metadata: Dict[str, Any]) -> None:
    """serving_default, and the table signature batch scoring calls with as many
    columns as the metadata names: `score_table` (numbers, strings) for models
    with column roles, `score_features` for the all-numeric layout before them."""
    try:
        with open(os.path.join(model_dir, SAVED_MODEL_FILE), "rb") as f:
            found = signatures(f.read())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise _broken(model_dir, SAVED_MODEL_FILE, f"unparseable ({e})") from None
    with_roles = metadata.get("numeric_inputs") is not None
    table = SCORE_TABLE_SIGNATURE if with_roles else SCORE_FEATURES_SIGNATURE
    for name in (SERVING_SIGNATURE, table):
        if name not in found:
            raise _broken(model_dir, SAVED_MODEL_FILE,
                          f"no '{name}' signature (has: {', '.join(sorted(found)) or 'none'})")
    numeric, strings = table_columns(metadata)
    expect = {"numbers": len(numeric), "strings": len(strings)} if with_roles else {
        "features": len(metadata["features"])}
    for arg, n in expect.items():
        shape = found[table].get(arg)
        if shape and len(shape) == 2 and shape[1] not in (-1, n):
            raise _broken(model_dir, SAVED_MODEL_FILE,
                          f"'{table}' takes {shape[1]} {arg} columns, assets/{METADATA_FILE} "
                          f"names {n}")


def _read_variables(model_dir: str) -> None:
    """Reads every variable of the checkpoint (TensorFlow, imported here)."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(os.path.join(model_dir, VARIABLES_PREFIX))
        for name in reader.get_variable_to_dtype_map():
            reader.get_tensor(name)
    except Exception as e:  # noqa: BLE001 - TF raises several kinds for a bad checkpoint
        text = " ".join(str(e).split())[:300]
        raise _broken(model_dir, "variables", f"unreadable ({type(e).__name__}: {text})"
                      ) from None
