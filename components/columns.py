"""Which column is what, in the one shape every component receives.

`ColumnRoles` travels as JSON (`{"columns": {...}}`) in the exec properties
or `custom_config` of Transform, the Trainer, the AnomalyEvaluator and the
DataGate, so the label column (and the role of every other column) reaches
each of them the same way. Features are never listed in code: they are
discovered from the data's schema (every column but the label). This module
also fixes how names map between raw and transformed features.
"""
from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional

TRANSFORMED_SUFFIX = "_xf"


@dataclass(frozen=True)
class ColumnRoles:
    """The label column (1 = anomaly, never a model input), if any."""

    label: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "ColumnRoles":
        values = dict(values or {})
        return cls(label=values.get("label") or None)

    def feature_keys(self, all_keys: Iterable[str]) -> List[str]:
        """Model inputs: every key but the label, sorted for a stable column order."""
        return sorted(k for k in all_keys if k != self.label)


def transformed_name(key: str) -> str:
    return key + TRANSFORMED_SUFFIX


def component_config(roles: ColumnRoles, **sections: Any) -> Dict[str, Any]:
    """The JSON-able config a component receives: its settings sections + `columns`."""
    return {"columns": roles.to_dict(), **sections}
