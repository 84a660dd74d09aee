"""Tests for sparsity_lab.models: exact prunable-weight counts (docs/methods.md §2-3), forward shapes,
the docs/methods.md §3 initialisation, channels_last, registry errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from sparsity_lab.data import dataset_info
from sparsity_lab.models import MODEL_SPECS, MODELS, check_model_fits, create_model, register_model


def prunable_count(model: nn.Module) -> int:
    """Weights docs/methods.md §2 calls prunable: parameters named *.weight with dim > 1."""
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(".weight") and p.dim() > 1)


# Exact counts, with their closed forms (3×3 kernels: 9·c_in·c_out; FC: in·out).
EXPECTED_COUNTS = [
    ("fashionmnist", "linear", 7_840),  # 784·10 (docs/methods.md)
    ("fashionmnist", "mlp", 135_680),  # 784·128 + 128·256 + 256·10 (docs/methods.md)
    ("cifar10", "linear", 30_720),  # 3072·10 (docs/methods.md)
    ("cifar10", "mlp", 428_544),  # 3072·128 + 128·256 + 256·10 (docs/methods.md)
    ("cifar10", "cnn", 1_555_136),  # 9·(3·64 + 64·128 + 128·256 + 256·512) + 512·10 (docs/methods.md)
    # stem 1,728 + stages 147,456 + 524,288 + 2,097,152 + 8,388,608 (incl. 1×1 shortcuts) + fc 5,120 ≈ 11.16 M
    ("cifar10", "resnet18", 11_164_352),
    # stem 432 + stages 1,052,672 + 4,456,448 + 17,825,792 + fc 5,120 ≈ 23.34 M
    ("cifar10", "wresnet28x8", 23_340_464),
    ("mnist", "lenet300_100", 266_200),  # 784·300 + 300·100 + 100·10
    ("cifar10", "conv2", 4_300_992),  # 9·(3·64 + 64·64) + 16·16·64·256 + 256·256 + 256·10 (LTH: 4.3 M)
    ("cifar10", "conv4", 2_425_024),  # LTH: 2.4 M
    ("cifar10", "conv6", 2_261_184),  # convs 1,144,512 + FC 4096·256 + 256·256 + 2,560
    ("cifar10", "resnet20", 270_896),  # He et al.: 0.27 M
    ("cifar10", "vgg11", 9_222_848),
    ("cifar10", "vgg16", 14_715_584),
]


@pytest.mark.parametrize(("dataset", "name", "count"), EXPECTED_COUNTS)
def test_prunable_weight_counts(dataset: str, name: str, count: int) -> None:
    assert prunable_count(create_model(name, dataset)) == count


def test_registry_lists_all_models() -> None:
    expected = {"linear", "mlp", "cnn", "cnn_small", "cnn_tiny", "resnet18", "wresnet28x8", "lenet300_100", "conv2", "conv4", "conv6",
                "resnet20", "vgg11", "vgg16"}
    assert set(MODELS) == expected == set(MODEL_SPECS)


@pytest.mark.parametrize("dataset", ["cifar10", "fashionmnist", "digits", "cifar100"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_gives_logits(name: str, dataset: str) -> None:
    info = dataset_info(dataset)
    if name == "wresnet28x8" and dataset != "cifar10":
        pytest.skip("WRN-28-8 forward is tested once, on CIFAR-10 (keeps the suite fast)")
    if dataset == "digits" and name in ("vgg11", "vgg16"):
        with pytest.raises(ValueError, match="16x16"):
            create_model(name, dataset)
        return
    torch.manual_seed(0)
    model = create_model(name, dataset)
    out = model(torch.randn(2, *info.input_shape))
    assert out.shape == (2, info.num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_initialisation(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, "cifar10")
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
        elif isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
        if isinstance(module, nn.Linear):  # PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            assert module.weight.abs().max() <= module.in_features**-0.5
            assert module.weight.abs().max() > 0.9 * module.in_features**-0.5
        if isinstance(module, nn.Conv2d) and module.weight.numel() >= 10_000:
            fan_out = module.out_channels * module.kernel_size[0] * module.kernel_size[1]
            assert module.weight.std().item() == pytest.approx((2 / fan_out) ** 0.5, rel=0.05)
            assert abs(module.weight.mean().item()) < 0.05 * (2 / fan_out) ** 0.5


def test_same_seed_same_model() -> None:
    torch.manual_seed(3)
    a = create_model("cnn", "cifar10")
    torch.manual_seed(3)
    b = create_model("cnn", "cifar10")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("name", ["cnn", "conv6", "vgg11", "resnet18", "resnet20"])
def test_channels_last(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, "cifar10").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    assert out.shape == (2, 10)
    assert torch.allclose(out, reference, atol=1e-4, rtol=1e-4)


def test_overrides_and_dataset_info_argument() -> None:
    info = dataset_info("cifar100")
    model = create_model("mlp", info)
    assert model.fc3.out_features == 100 and model.fc1.in_features == 3072
    model = create_model("linear", "mnist", num_classes=3, input_shape=(2, 5, 5))
    assert model.fc1.weight.shape == (3, 50)
    model = create_model("cnn", None, input_shape=(1, 16, 16), num_classes=4)
    assert model(torch.randn(1, 1, 16, 16)).shape == (1, 4)
    # LTH conv nets on 28×28: the flattened size follows the input (28 → 14 → 7 → 3).
    assert create_model("conv2", "mnist").classifier[0].in_features == 14 * 14 * 64
    assert create_model("conv6", "mnist").classifier[0].in_features == 3 * 3 * 256


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet50'.*cnn.*wresnet28x8"):
        create_model("resnet50", "cifar10")
    with pytest.raises(ValueError, match=r"'vgg16'.*16x16.*\(1, 8, 8\)"):
        check_model_fits("vgg16", (1, 8, 8))
    with pytest.raises(ValueError, match=r"'cnn'.*8x8.*\(3, 4, 4\)"):
        check_model_fits("cnn", (3, 4, 4))
    with pytest.raises(ValueError, match="input_shape"):
        check_model_fits("mlp", (28, 28))
    with pytest.raises(ValueError, match="num_classes"):
        create_model("mlp", "mnist", num_classes=0)
    with pytest.raises(ValueError, match="input_shape and num_classes"):
        create_model("mlp", None)
    with pytest.raises(ValueError, match="unknown dataset"):
        create_model("mlp", "imagenet")
    check_model_fits("linear", (1, 1, 1))  # flattening models take anything
    check_model_fits("resnet18", (3, 8, 8))
    with pytest.raises(ValueError, match="already registered"):
        register_model("mlp")(lambda input_shape, num_classes: nn.Identity())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("name", ["cnn", "resnet18", "wresnet28x8"])
def test_channels_last_bf16_on_gpu(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, "cifar10").cuda().to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 32, 32, device="cuda").to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = model(x)
    out.float().sum().backward()
    assert out.shape == (8, 10) and torch.isfinite(out).all()
