"""What the Trainer's training_summary.json says beyond its numbers (report, run summary)."""
from typing import Any, Mapping, Optional


def epoch_cap(training: Optional[Mapping[str, Any]]) -> Optional[int]:
    """`model.epochs` of the model trained (the most epochs a fit may run)."""
    return ((training or {}).get("model") or {}).get("epochs")


def at_epoch_cap(best_epoch: Optional[int], cap: Optional[int]) -> bool:
    return bool(best_epoch and cap and best_epoch >= cap)


def epoch_cap_warning(training: Optional[Mapping[str, Any]]) -> Optional[str]:
    """A sentence when the kept model's best epoch is its last allowed one: the
    monitored loss was still falling when the fit stopped, so more epochs may help."""
    cap = epoch_cap(training)
    best = (training or {}).get("best_epoch")
    if not at_epoch_cap(best, cap):
        return None
    monitored = "validation loss" if (training or {}).get("validation_rows") else "loss"
    return (f"training stopped at the epoch cap (model.epochs={cap}) with the {monitored} "
            f"still falling (best epoch {best} of {cap}): more epochs (--epochs) may fit "
            f"better")
