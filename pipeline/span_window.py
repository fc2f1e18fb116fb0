"""The rolling window of spans: a Resolver that hands Transform and the Trainer
the Examples of the newest K spans CsvExampleGen has ingested (any run).

Why a custom strategy and not `SpanRangeStrategy` or `rolling_range`:
- `tfx.dsl.experimental.SpanRangeStrategy` (rolling_range) keeps every artifact
  of a span, so a span ingested twice (data fixed, cache off) is trained on
  twice; this one keeps the newest version of each span.
- the `canned_resolver_functions.rolling_range` resolver function needs the IR
  orchestrators only; a `Resolver` node also runs under AirflowDagRunner (its
  legacy driver calls the same `resolve_artifacts`).
The channel is a plain `Channel(producer_component_id=...)`, not
`example_gen.outputs[...]`: an output channel is compiled with the current
pipeline-run context and would see only this run's span. The explicit upstream
edge makes the resolver wait for this run's ExampleGen.
KFP v2 compiles only the latest-artifact and latest-blessed-model resolvers,
so `compile --target kubeflow-v2` refuses `--window` > 1.
"""
from typing import Dict, List, Optional

from tfx import types
from tfx.dsl.components.common.resolver import Resolver, ResolverStrategy
from tfx.types import Channel, standard_artifacts

SPAN_WINDOW_RESOLVER_ID = "span_window_resolver"


def _int_prop(artifact: types.Artifact, name: str) -> int:
    if not artifact.has_custom_property(name):
        return 0
    v = artifact.get_custom_property(name)
    return int(v) if v not in (None, "") else 0


class LatestSpansStrategy(ResolverStrategy):
    """The newest `num_spans` spans, one artifact each (highest version, then the
    newest artifact), newest span first, as TFX's SpanRangeStrategy orders them."""

    def __init__(self, num_spans: int):
        if int(num_spans) < 1:
            raise ValueError("num_spans must be >= 1")
        self._num_spans = int(num_spans)

    def resolve(self, artifacts: List[types.Artifact]) -> List[types.Artifact]:
        best: Dict[int, types.Artifact] = {}
        for a in artifacts:
            if not a.has_custom_property("span"):
                continue
            span = _int_prop(a, "span")
            key = (_int_prop(a, "version"), a.id)
            if span not in best or key > (_int_prop(best[span], "version"), best[span].id):
                best[span] = a
        newest = sorted(best, reverse=True)[:self._num_spans]
        return [best[s] for s in newest]

    def resolve_artifacts(self, store, input_dict: Dict[str, List[types.Artifact]]
                          ) -> Optional[Dict[str, List[types.Artifact]]]:
        out = {key: self.resolve(list(arts)) for key, arts in input_dict.items()}
        return out if all(out.values()) else None


def span_window_resolver(example_gen, num_spans: int) -> Resolver:
    resolver = Resolver(
        strategy_class=LatestSpansStrategy,
        config={"num_spans": int(num_spans)},
        examples=Channel(type=standard_artifacts.Examples,
                         producer_component_id=example_gen.id, output_key="examples"),
    ).with_id(SPAN_WINDOW_RESOLVER_ID)
    resolver.add_upstream_node(example_gen)
    return resolver
