"""TFDV statistics of a split in this process: the generators Beam would run, without Beam.

`tfdv.GenerateStatistics` (stats_impl.GenerateSlicedStatisticsImpl) runs TFDV's
combiner generators (BasicStatsGenerator: counts, means, quantile histograms...)
in one CombineFn, and the exact top-k / uniques of string features as a Beam
transform (TopKUniquesStatsGenerator). Here the same combiners take the same
Arrow record batches one by one, and `ExactTopKUniques` does what that transform
does (TFDV's own `_to_topk_tuples`, the (count, value) pairs ordered as
`beam.combiners.Top` orders them, TFDV's own proto builders). The result is the
DatasetFeatureStatisticsList TFDV writes. No TFX here.

Options this module does not reproduce (slicing, sampling, weights, a schema,
custom or semantic-domain generators, feature partitions) make `supported()`
false: the executor then runs TFDV's Beam pipeline.
"""
import collections
from typing import Any, Dict, Iterable, List, Optional

import pyarrow as pa
from tensorflow_data_validation.statistics import stats_impl, stats_options
from tensorflow_data_validation.statistics.generators import (stats_generator,
                                                              top_k_uniques_stats_generator)
from tensorflow_data_validation.utils import top_k_uniques_stats_util
from tensorflow_data_validation.utils.example_weight_map import ExampleWeightMap
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl.statistics import merge_util


class ExactTopKUniques(stats_generator.CombinerStatsGenerator):
    """TopKUniquesStatsGenerator (unweighted, no schema) as a combiner: exact counts."""

    def __init__(self, options: stats_options.StatsOptions):
        super().__init__("ExactTopKUniques")
        self._num_top_values = options.num_top_values
        self._frequency_threshold = options.frequency_threshold
        self._num_rank_histogram_buckets = options.num_rank_histogram_buckets

    def create_accumulator(self) -> Dict[Any, collections.Counter]:
        return collections.defaultdict(collections.Counter)

    def add_input(self, accumulator, input_record_batch: pa.RecordBatch):
        for (_, steps, value), (count, _) in top_k_uniques_stats_generator._to_topk_tuples(
                (None, input_record_batch), bytes_features=frozenset(),
                categorical_numeric_types={}, example_weight_map=ExampleWeightMap()):
            accumulator[steps][value] += count
        return accumulator

    def merge_accumulators(self, accumulators: Iterable):
        accumulators = iter(accumulators)
        first = next(accumulators)
        for acc in accumulators:
            for steps, counts in acc.items():
                first[steps].update(counts)
        return first

    def extract_output(self, accumulator) -> statistics_pb2.DatasetFeatureStatistics:
        keep = max(self._num_top_values, self._num_rank_histogram_buckets)
        protos = []
        for steps, counts in accumulator.items():
            # beam.combiners.Top on (count, value): the largest pairs, largest first
            top = sorted(((n, v) for v, n in counts.items()), reverse=True)[:keep]
            protos.append(top_k_uniques_stats_util.make_dataset_feature_stats_proto_topk_single(
                feature_path_tuple=steps,
                value_count_list=[top_k_uniques_stats_util.FeatureValueCount(v, n)
                                  for n, v in top],
                is_weighted_stats=False, num_top_values=self._num_top_values,
                frequency_threshold=self._frequency_threshold,
                num_rank_histogram_buckets=self._num_rank_histogram_buckets))
            protos.append(top_k_uniques_stats_util.make_dataset_feature_stats_proto_unique_single(
                feature_path_tuple=steps, num_uniques=len(counts)))
        if not protos:
            return statistics_pb2.DatasetFeatureStatistics()
        return merge_util.merge_dataset_feature_statistics(protos).datasets[0]


def supported(options: stats_options.StatsOptions) -> bool:
    """Whether `statistics()` computes what `tfdv.GenerateStatistics(options)` does."""
    return (options.schema is None and options.sample_rate is None
            and not options.slicing_config and not options.experimental_slice_functions
            and not options.experimental_slice_sqls and not options.generators
            and not options.feature_allowlist and not options.enable_semantic_domain_stats
            and options.add_default_generators and not options.use_sketch_based_topk_uniques
            and options.experimental_num_feature_partitions == 1
            and not options.example_weight_map.all_weight_features())


def _generators(options: stats_options.StatsOptions) -> List[stats_generator.StatsGenerator]:
    out = []
    for generator in stats_impl.get_generators(options):
        if isinstance(generator, top_k_uniques_stats_generator.TopKUniquesStatsGenerator):
            out.append(ExactTopKUniques(options))
        elif isinstance(generator, stats_generator.CombinerStatsGenerator):
            out.append(generator)
        else:
            raise ValueError(f"statistics generator {generator.name} needs Beam")
    return out


def statistics(batches: Iterable[pa.RecordBatch],
               options: Optional[stats_options.StatsOptions] = None
               ) -> Optional[statistics_pb2.DatasetFeatureStatisticsList]:
    """The TFDV statistics of the record batches; None for no rows (TFDV's Beam path
    writes placeholder statistics then: the executor leaves that case to it)."""
    options = options or stats_options.StatsOptions()
    generators = _generators(options)
    for g in generators:
        g.setup()
    accumulators = [g.create_accumulator() for g in generators]
    rows = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        rows += batch.num_rows
        accumulators = [g.add_input(acc, batch) for g, acc in zip(generators, accumulators)]
    if not rows:
        return None
    return stats_impl.extract_statistics_output(accumulators, generators)

