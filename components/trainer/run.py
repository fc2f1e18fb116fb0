"""The Trainer's `run_fn` (TFX GenericExecutor): unpack, fit, export.

custom_config = {"columns": ColumnRoles, "model": ModelSettings} as JSON
values (pipeline/dag.py); fitting is in `fit.py`, the data path in `data.py`,
the export in components/model/export.py.
"""
import json
import logging
import os
import time
from typing import Optional

import tensorflow_transform as tft

from components import settings
from components.columns import ColumnRoles
from components.model import export, layout
from components.model.settings import ModelSettings
from components.trainer.fit import train


def parse_config(custom_config: Optional[dict]):
    """(ColumnRoles, ModelSettings) from the Trainer's custom_config; what is not given
    takes the defaults."""
    custom = custom_config or {}
    return (ColumnRoles.from_dict(custom.get("columns")),
            settings.from_dict(ModelSettings, custom.get("model") or {}))


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    roles, mcfg = parse_config(fn_args.custom_config)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    result = train(mcfg, roles, fn_args.train_files, tft_output,
                   log_dir=fn_args.model_run_dir, eval_files=fn_args.eval_files)
    summary = result.summary
    t0 = time.time()
    export.export_serving_model(
        result.models, tft_output, result.inputs.raw_keys, fn_args.serving_model_dir,
        # "model": the settings of the model exported (the selected candidate).
        metadata={"label_column": roles.label, "model": summary["model"],
                  "model_selection": summary["selection"],
                  "train_rows": summary["train_rows"],
                  "feature_error_scale": summary["feature_error_scale"]},
        model_config=result.settings,
        feature_error_scale=summary["feature_error_scale"], roles=roles,
        input_layout=result.inputs.layout)
    summary["seconds"]["export"] = round(time.time() - t0, 2)
    layout.write_json(os.path.join(fn_args.model_run_dir, layout.TRAINING_SUMMARY_FILE), summary)
    layout.write_json(layout.asset_path(fn_args.serving_model_dir, layout.TRAINING_SUMMARY_FILE),
                      summary)
    logging.info("Trained on %d rows: %s", summary["train_rows"], json.dumps(
        {k: v for k, v in summary.items() if k != "history"}))
