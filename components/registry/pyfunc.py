"""The registered model, as MLflow sees it: a pyfunc around the pushed SavedModel.

`mlflow.pyfunc.load_model("models:/<name>@champion").predict(frame)` takes a
pandas DataFrame of raw (unscaled) feature columns, any order, extra columns
ignored, and returns `reconstruction_error` (float), `is_anomaly` (0/1) and
`top_features` (string) per row: what the SavedModel's `score_features`
signature returns (the model is loaded with `tf.saved_model.load`, the columns
are put in the order of `assets/model_metadata.json`). `mlflow models serve`
serves the same.

The SavedModel is the logged model's `saved_model` artifact, with the
checksums.json of the pushed version; loading checks it first
(components/model/layout.py verify_model_dir) and raises InputError naming
the broken part. The `components`
package is shipped with the model (`code_paths`), so loading it needs only
mlflow, tensorflow and pandas.
"""
from mlflow.pyfunc import PythonModel

SAVED_MODEL_ARTIFACT = "saved_model"


class AnomalyPyfunc(PythonModel):
    """mlflow.pyfunc.PythonModel: raw feature DataFrame -> errors and flags."""

    def load_context(self, context):
        from components.model import layout
        from components.model.scorer import SavedModelScorer

        model_dir = context.artifacts[SAVED_MODEL_ARTIFACT]
        layout.verify_model_dir(model_dir)  # files, checksums, signatures, metadata
        self._scorer = SavedModelScorer(model_dir)

    @property
    def features(self):
        return list(self._scorer.features)

    def predict(self, context, model_input, params=None):
        return self._scorer.score_frame(model_input)

    def __getstate__(self):
        # MLflow may call load_context before pickling the model; the loaded
        # SavedModel is never part of the pickle (it is the artifact).
        return {k: v for k, v in self.__dict__.items() if k != "_scorer"}
