"""StatisticsGen: TFX's, whose executor computes the same TFDV statistics in this process when
its Beam pipeline would run here anyway (executor.py, in_process.py)."""
