"""Evaluation: the splits, the attacks' application and the metrics, each computed once.

    splits.py   build_eval_splits: clean / text-perturbed / embedding-attacked / smoothed-copy /
                generalized splits per language; EvalSplit.logits (what the module asks)
    attacks.py  embedding-space attacks applied to a test batch (parameters: the registry's)
    metrics.py  degradation, relative degradation, the smoothed vote, the generalized matrix:
                the one implementation that report.py and callbacks/degradation.py call

Layering: this package imports data/, adversarial/, registry/ and keys, never models/ (the module asks a
split for its logits through a duck-typed `EvalSplit`); report.py and callbacks/ import it.
Only the torch-free metrics are re-exported here, so importing `robust_transfer.evaluation.attacks`
loads neither torch nor datasets.
"""

from robust_transfer.evaluation.metrics import (
    SMOOTHED,
    degradation,
    degradation_rows,
    generalized_matrix,
    relative_degradation,
    with_smoothed_vote,
)

__all__ = [
    "SMOOTHED",
    "degradation",
    "degradation_rows",
    "generalized_matrix",
    "relative_degradation",
    "with_smoothed_vote",
]
