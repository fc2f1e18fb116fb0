"""StatisticsGen executor: TFX's, with the statistics computed in this process when Beam
would run here anyway (components/beam_local.py).

The artifact is the stock one: the same split names, span, custom properties and
`Split-<name>/FeatureStats.pb` (a binary DatasetFeatureStatisticsList), computed
by TFDV's own generators over the same record batches (in_process.py). Options
that path does not reproduce (a schema input, stats_options, sampling, sharded
output), an empty split, or a remote Beam runner: TFX's executor, unchanged.
"""
import logging
import os
import time
from typing import Any, Dict, List

from tfx import types
from tfx.components.statistics_gen import executor as tfx_statistics_gen
from tfx.components.util import examples_utils
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, stats_utils

from components import beam_local, examples_io
from components.statistics_gen import in_process


class Executor(tfx_statistics_gen.Executor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        if not self._in_process(input_dict, exec_properties):
            return super().Do(input_dict, output_dict, exec_properties)
        self._log_startup(input_dict, output_dict, exec_properties)
        started = time.time()
        exclude = json_utils.loads(
            exec_properties.get(standard_component_specs.EXCLUDE_SPLITS_KEY, "null")) or []
        examples = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.EXAMPLES_KEY])
        if examples.has_custom_property(examples_utils.CUSTOM_SPLIT_PATTERN_PROPERTY_NAME):
            return super().Do(input_dict, output_dict, exec_properties)
        splits = [s for s in artifact_utils.decode_split_names(examples.split_names)
                  if s not in exclude]
        computed = {}
        for split in splits:
            stats = in_process.statistics(examples_io.iter_record_batches(
                artifact_utils.get_split_uri([examples], split)))
            if stats is None:  # no rows: TFDV's placeholder statistics, from Beam
                return super().Do(input_dict, output_dict, exec_properties)
            computed[split] = stats
        # What the stock executor records on the artifact (tfx 1.16 statistics_gen/executor.py).
        statistics = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.STATISTICS_KEY])
        statistics.split_names = artifact_utils.encode_split_names(splits)
        statistics.span = examples.span
        try:
            statistics.set_string_custom_property(
                tfx_statistics_gen.STATS_DASHBOARD_LINK,
                stats_utils.generate_stats_dashboard_link(statistics))
        except Exception as e:  # noqa: BLE001 - as the stock executor: a link is optional
            logging.exception("Failed to generate stats dashboard link because %s", e)
            statistics.set_string_custom_property(tfx_statistics_gen.STATS_DASHBOARD_LINK, "")
        statistics.set_json_value_custom_property(
            tfx_statistics_gen.SAMPLE_RATE_BY_SPLIT_PROPERTY_NAME,
            json_utils.dumps({split: 1.0 for split in splits}))
        for split, stats in computed.items():
            path = os.path.join(artifact_utils.get_split_uri([statistics], split),
                                tfx_statistics_gen.DEFAULT_FILE_NAME)
            io_utils.write_bytes_file(path, stats.SerializeToString())
            logging.info("Statistics for split %s written to %s.", split, os.path.dirname(path))
        logging.info("StatisticsGen: %s in this process in %.2f s", ", ".join(splits),
                     time.time() - started)

    def _in_process(self, input_dict, exec_properties) -> bool:
        """This process computes the statistics when Beam would run here and no option asks
        for what only the Beam path does."""
        if not beam_local.runs_in_this_process(self._beam_pipeline_args):
            return False
        if input_dict.get(standard_component_specs.SCHEMA_KEY):
            return False
        for key in (standard_component_specs.STATS_OPTIONS_JSON_KEY,
                    standard_component_specs.SAMPLE_RATE_BY_SPLIT_KEY,
                    standard_component_specs.SHARDED_STATS_OUTPUT_KEY):
            if exec_properties.get(key) not in (None, "", "null", "{}", False, 0):
                return False
        return in_process.supported(in_process.stats_options.StatsOptions())
