"""Model registry (README "Architecture": models/; docs/methods.md §3).

SAP paper: linear, mlp, cnn, resnet18, wresnet28x8. Lottery-ticket models: lenet300_100,
conv2, conv4, conv6, resnet20, vgg11, vgg16. `create_model(name, dataset)` builds and initialises
one; `check_model_fits(name, input_shape)` validates a (model, input) pair without building it.
"""

from . import convnets, mlp, resnets  # noqa: F401  (importing registers the models)
from .registry import (
    MODEL_SPECS,
    MODELS,
    ModelSpec,
    check_model_fits,
    create_model,
    init_weights,
    register_model,
)

__all__ = ["MODELS", "MODEL_SPECS", "ModelSpec", "check_model_fits", "create_model", "init_weights", "register_model"]
