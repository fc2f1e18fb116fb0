"""Registry handoff: atomic push to serving_model/, MLflow Model Registry, registry.json (README.md).

component.py  RegistryPusher: the stock Pusher plus optional evaluation/examples/schema
              inputs (for the version's tags) and this package's executor.
executor.py   subclass of the stock Pusher executor: atomic push, then registration.
push.py       the atomic push; record.py the version's fields (both TFX-free).
client.py     MLflow: register a version, resolve models:/ URIs (pyfunc.py: the logged model).
manifest.py   <output>/registry.json, for users without MLflow.
"""
