"""Internals of the masked training engine (README "Architecture": train.py / batched.py).

settings.py: `TrainSettings` (hyperparameters) and `EngineOptions` (speed knobs); optim.py: optimizer and
LR-schedule registries; steps.py: the masked step, eager or replayed from a CUDA graph; base.py: what
`MaskedTrainer` and `BatchedTrainer` share. Import the trainers from `sparsity_lab.engine.trainer` and
`sparsity_lab.engine.batched`.
"""

from .settings import EngineOptions, TrainSettings

__all__ = ["EngineOptions", "TrainSettings"]
