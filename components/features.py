"""Feature naming shared by Transform, Trainer, Evaluator and scoring.

Features are never listed here: they are discovered from the data's schema
(every column but the label). This module only fixes how names map.
"""
from typing import Iterable, List, Optional

TRANSFORMED_SUFFIX = "_xf"


def transformed_name(key: str) -> str:
    return key + TRANSFORMED_SUFFIX


def feature_keys(all_keys: Iterable[str], label_column: Optional[str]) -> List[str]:
    """Model inputs: every key but the label, sorted for a stable column order."""
    return sorted(k for k in all_keys if k != label_column)
