"""CsvExampleGen with a vectorized executor: CSV -> hash-split Parquet or TFRecords (README.md)."""
