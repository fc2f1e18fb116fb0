"""CsvExampleGen: TFX's file-based ExampleGen with this package's vectorized executor.

Inputs   input_base + one input split pattern (a file name, `*.csv`, or a span
         pattern such as `span-{SPAN}/*.csv`), optionally a RangeConfig;
         custom_config: the column roles (they decide the types) and the delimiter.
Outputs  examples: Examples with `Split-train` / `Split-eval`, rows assigned by
         a hash of the whole row (100 buckets, `eval_ratio` of them eval);
         Parquet (default) or GZIP TFRecords of tf.Examples.
"""
from typing import Optional

from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.columns import ColumnRoles
from components.example_gen import executor
from components.example_gen.csv_to_examples import EXAMPLE_FORMATS, PARQUET

NODE_ID = "CsvExampleGen"
HASH_BUCKETS = 100


def split_config(eval_ratio: float) -> example_gen_pb2.Output:
    """Train/eval split by hash of the whole row, in HASH_BUCKETS buckets."""
    eval_buckets = min(HASH_BUCKETS - 1, max(1, int(round(HASH_BUCKETS * eval_ratio))))
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=HASH_BUCKETS - eval_buckets),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
    ]))


def csv_example_gen(input_base: str, input_pattern: str, eval_ratio: float,
                    example_format: str = PARQUET, range_config=None,
                    roles: Optional[ColumnRoles] = None,
                    delimiter: str = executor.DEFAULT_DELIMITER) -> FileBasedExampleGen:
    """The CsvExampleGen node (id `CsvExampleGen`); `roles` decide the column types."""
    parquet = example_format == PARQUET
    return FileBasedExampleGen(
        input_base=input_base,
        custom_config=executor.custom_config(roles or ColumnRoles(), delimiter),
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="single_split", pattern=input_pattern)]),
        output_config=split_config(eval_ratio),
        range_config=range_config,
        output_data_format=(example_gen_pb2.FORMAT_PARQUET if parquet
                            else example_gen_pb2.FORMAT_TF_EXAMPLE),
        output_file_format=(example_gen_pb2.FILE_FORMAT_PARQUET if parquet
                            else example_gen_pb2.FORMAT_TFRECORDS_GZIP),
        custom_executor_spec=executor_spec.ExecutorClassSpec(executor.Executor),
    ).with_id(NODE_ID)


__all__ = ["csv_example_gen", "split_config", "NODE_ID", "EXAMPLE_FORMATS"]
