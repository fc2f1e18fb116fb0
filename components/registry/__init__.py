"""Registry handoff: atomic push to serving_model/, MLflow Model Registry, registry.json.

component.py  RegistryPusher: the stock Pusher plus optional evaluation/examples/schema
              inputs (for the version's tags) and this package's executor.
executor.py   subclass of the stock Pusher executor: atomic push, then registration.
client.py     the only module importing mlflow.
pyfunc.py     the MLflow pyfunc model wrapping the SavedModel.
manifest.py   <output>/registry.json, for users without MLflow.
"""
