"""Transform executor: TFX's, with the analysis done in this process when Beam would be.

When the component's Beam pipeline would run in this process anyway
(components/beam_local.py), the analyzers' results are computed first, in one
streaming pass over the analyzed splits (components/transform_analysis/analysis.py), and
handed to `preprocessing_fn` in its custom_config; the graph then has no
analyzer left and TFX's own Transform writes it in place (its `_RunInPlaceImpl`),
without a Beam pipeline. Otherwise, or when a column cannot be answered that way,
this is TFX's executor unchanged (TFT's Beam analysis). Either way the output is
the transform graph TFT writes.
"""
import json
import logging
import os
import shutil
import tempfile
import time
from typing import Any, Dict, List

from tfx import types
from tfx.components.transform import executor as tfx_transform
from tfx.components.transform import executor_utils
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils

from components import beam_local, examples_io
from components.columns import ColumnRoles
from components.transform_analysis import analysis as analysis_lib

ANALYSIS_KEY = "analysis"  # in preprocessing_fn's custom_config


def _schema_keys(input_dict: Dict[str, List[types.Artifact]]) -> List[str]:
    schema_artifact = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.SCHEMA_KEY])
    schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))
    return [f.name for f in schema.feature]


class Executor(tfx_transform.Executor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if not beam_local.runs_in_this_process(self._beam_pipeline_args):
            return super().Do(input_dict, output_dict, exec_properties)
        started = time.time()
        custom = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
                            or "null") or {}
        roles = ColumnRoles.from_dict(custom.get("columns"))
        splits_config = executor_utils.ResolveSplitsConfig(
            exec_properties.get(standard_component_specs.SPLITS_CONFIG_KEY),
            input_dict[standard_component_specs.EXAMPLES_KEY])
        uris = [uri for split in splits_config.analyze for uri in artifact_utils.get_split_uris(
            input_dict[standard_component_specs.EXAMPLES_KEY], split)]
        keys = _schema_keys(input_dict)
        analyzed = set(roles.numeric_keys(keys)) | set(roles.categorical)
        columns = [k for k in keys if k in analyzed] or None
        result = analysis_lib.analyze(
            (batch for uri in uris for batch in examples_io.iter_record_batches(uri, columns)),
            roles)
        if not result.answered_everything(keys):
            logging.info("Transform: not every analyzer can be answered in this process; "
                         "TFT's Beam analysis")
            return super().Do(input_dict, output_dict, exec_properties)
        vocabulary_dir = tempfile.mkdtemp(prefix="vocabularies-", dir=self._tmp_root())
        try:
            custom[ANALYSIS_KEY] = analysis_lib.custom_config_analysis(result, vocabulary_dir)
            properties = dict(exec_properties)
            properties[standard_component_specs.CUSTOM_CONFIG_KEY] = json.dumps(
                custom, sort_keys=True)
            logging.info("Transform: analysis of %d rows in this process in %.2f s; the graph "
                         "is written in place", result.rows, time.time() - started)
            super().Do(input_dict, output_dict, properties)
        finally:
            shutil.rmtree(vocabulary_dir, ignore_errors=True)

    def _tmp_root(self) -> str:
        try:
            path = self._get_tmp_dir()
        except (RuntimeError, ValueError, AttributeError):
            path = tempfile.gettempdir()
        if "://" in path:  # a remote temp dir: the vocabularies are written locally
            path = tempfile.gettempdir()
        os.makedirs(path, exist_ok=True)
        return path
