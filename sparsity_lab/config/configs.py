"""Typed experiment configs, their validation, and content-addressed run ids.

A config's *canonical text* lists only the fields that differ from their defaults (open_lth's
scheme), so adding a field with a no-op default never changes existing run ids. The run id is
``<kind>_<first 12 hex digits of sha256(canonical text)>``. One run = one seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from sparsity_lab.config.field_types import check_types, normalise, normalise_settings
from sparsity_lab.config.fields import _flatten, _jsonable, config_with, flat_fields
from sparsity_lab.engine.settings import TrainSettings
from sparsity_lab.errors import ConfigError
from sparsity_lab.rules import PRUNING_RULES, iterative_rules
from sparsity_lab.rules.base import HyperparameterError, rule_default

SCOPES = ("global", "layer", "neuron")
CONTROL_METHODS = ("random_ticket", "random_reinit")
#: Every rule that drives the iterative protocol by itself (sparsity_lab/rules/), then the controls.
ITERATIVE_METHODS = (*iterative_rules(), *CONTROL_METHODS)
RANKED_WEIGHTS = ("last", "best_val", "best_test")
ASNI_VARIANTS = ("asni1", "asni2", "mask_init", "mask_random_init", "random_signs", "std_levels", "dense",
                 "oneshot_global", "oneshot_layer")
#: ASNI variants that train nothing: the dense run's final weights pruned once to ASNI-I's sparsity.
ASNI_ONESHOT_VARIANTS = ("oneshot_global", "oneshot_layer")


#: Sane upper bounds: a typo such as ``--iterations 1000000000`` fails at once instead of
#: planning years of training. The papers' largest settings are T = 30 iterations, 200 epochs, and
#: ASNI's T = 160 epochs (docs/methods.md §3, §4).
MAX_ITERATIONS = 1000
MAX_EPOCHS = 10_000
MAX_SEED = 2**32 - 1
MAX_HISTOGRAM_BINS = 10_000


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"invalid config field {name}={value!r}: allowed {allowed}")


@dataclass(frozen=True)
class ExperimentConfig:
    """Base class: canonical text, run id, (de)serialisation and shared validation."""

    kind: ClassVar[str] = ""

    def __post_init__(self) -> None:
        """Normalise numbers so equal configs hash equally (``p: 1`` and ``p: 1.0`` give one run id;
        floats already given as floats keep their ids) and lists to tuples (config_types.normalise)."""
        for f in fields(self):
            value = getattr(self, f.name)
            new = normalise_settings(value) if dataclasses.is_dataclass(value) else normalise(str(f.type), value)
            if new is not value:
                object.__setattr__(self, f.name, new)

    def to_dict(self) -> dict[str, Any]:
        """Every field (nested train settings as a dict) plus ``kind``; JSON-able."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else _jsonable(value)
        return out

    def non_default(self) -> dict[str, Any]:
        """Flat ``{dotted name: value}`` of the fields that differ from this class's defaults."""
        default = type(self)()
        flat, flat_default = _flatten(self), _flatten(default)
        return {k: v for k, v in flat.items() if flat_default.get(k) != v}

    def canonical(self) -> str:
        return self.kind + json.dumps(self.non_default(), sort_keys=True, separators=(",", ":"))

    @property
    def run_id(self) -> str:
        return f"{self.kind}_{hashlib.sha256(self.canonical().encode()).hexdigest()[:12]}"

    def validate(self) -> ExperimentConfig:
        """Raise ConfigError before any training if a field is invalid; return self."""
        from sparsity_lab.data import dataset_info, train_size
        from sparsity_lab.models import MODELS, check_model_fits

        check_types(self, flat_fields(type(self)), ConfigError)
        try:
            info = dataset_info(self.dataset)  # type: ignore[attr-defined]
        except ValueError as err:
            raise ConfigError(f"invalid config field dataset={self.dataset!r}: {err}") from None  # type: ignore[attr-defined]
        _check(self.model in MODELS, "model", self.model, f"one of {sorted(MODELS)}")  # type: ignore[attr-defined]
        try:
            check_model_fits(self.model, info.input_shape)  # type: ignore[attr-defined]
        except ValueError as err:
            raise ConfigError(f"invalid config field model={self.model!r}: {err}") from None  # type: ignore[attr-defined]
        _check(0 <= self.seed <= MAX_SEED, "seed", self.seed, f"an integer in [0, {MAX_SEED}]")  # type: ignore[attr-defined]
        epochs = self.train.epochs  # type: ignore[attr-defined]
        _check(epochs <= MAX_EPOCHS, "train.epochs", epochs, f"an integer in [1, {MAX_EPOCHS}]")
        try:
            self.train.validate()  # type: ignore[attr-defined]
        except ValueError as err:
            raise ConfigError(f"invalid train settings: {err}") from None
        n_train = train_size(self.dataset)  # type: ignore[attr-defined]
        val_size = getattr(self, "val_size", 0)
        _check(val_size < n_train, "val_size", val_size, f"an integer in [0, {n_train - 1}] "
               f"({self.dataset} has {n_train} training examples)")  # type: ignore[attr-defined]
        _check(self.train_subset <= n_train - val_size, "train_subset", self.train_subset,  # type: ignore[attr-defined]
               f"an integer in [0, {n_train - val_size}] (0 = all; {self.dataset} has {n_train} training "  # type: ignore[attr-defined]
               f"examples{f', {val_size} held out for validation' if val_size else ''})")
        self._validate_own()
        return self

    def _validate_own(self) -> None:  # pragma: no cover - overridden
        pass


    def dependencies(self) -> list[ExperimentConfig]:
        """The runs this one starts from, whose stored results its runner reads. The one answer to "what must
        exist first": ``experiments.run`` runs them first, the sweep orders its jobs by them and a bundle
        carries them along with the run."""
        return []


@dataclass(frozen=True)
class IterativeConfig(ExperimentConfig):
    """Iterative pruning with rewinding (docs/methods.md §3): SAP, Lottery Ticket, One Shot and controls."""

    kind: ClassVar[str] = "iterative"

    dataset: str = _help("dataset name (mnist, fashionmnist, cifar10, cifar100, digits, synthetic:<name>)", default="fashionmnist")
    model: str = _help("model name from the registry (linear, mlp, cnn, resnet18, wresnet28x8, lenet300_100, ...)", default="mlp")
    method: str = _help(f"pruning method: one of {ITERATIVE_METHODS}", default="sap")
    scope: str = _help(f"pruning scope: one of {SCOPES}", default="global")
    iterations: int = _help(f"T: number of pruning iterations (T+1 trainings), at most {MAX_ITERATIONS}", default=30)
    seed: int = _help("random seed (init, batch order, random masks); one run = one seed", default=0)
    p: float = _help("SAP: PQ Index exponent p (0 < p < q)", default=rule_default("p"))
    q: float = _help("SAP: PQ Index exponent q (q > p)", default=rule_default("q"))
    eta_r: float = _help("SAP: eta_r >= 0, scales the kept count by (1+eta_r)^(-q/(q-p))", default=rule_default("eta_r"))
    gamma: float = _help("SAP: gamma >= 0, multiplies the pruned fraction", default=rule_default("gamma"))
    beta: float = _help("SAP: beta in (0, 1], maximum fraction pruned per iteration", default=rule_default("beta"))
    prune_fraction: float = _help("LT / One Shot / SNIP: fraction P of surviving weights pruned per iteration, in [0, 1)", default=rule_default("prune_fraction"))
    layer_rates: tuple[tuple[str, float], ...] = _help(
        "LT: per-layer rates as ((fnmatch pattern, rate), ...), e.g. (('fc3.*', 0.1),); implies layer-wise grouping",
        default=(),
    )
    snip_batches: int = _help("SNIP: training batches (of train.batch_size) its saliency |g*w| is averaged over", default=rule_default("snip_batches"))
    control_base: str = _help("random_ticket / random_reinit: the method whose masks the control copies", default="lt")
    rewind_epoch: int = _help("rewind point: 0 = theta_0 (the init), k > 0 = weights after k epochs of iteration 0", default=0)
    rank_weights: str = _help(
        f"which trained weights are ranked: one of {RANKED_WEIGHTS} (best_test = the reference code's test-set selection)",
        default="last",
    )
    val_size: int = _help("held-out validation examples from the training set (needed for rank_weights=best_val)", default=0)
    train_subset: int = _help("train on a seeded subset of this many training examples (0 = all)", default=0)
    test_subset: int = _help("evaluate on a fixed subset of this many test examples, the same for every seed "
                             "(0 = all)", default=0)
    pq_grid: bool = _help("also record global and layer PQI over the (p, q) grid p=0.1..1, q=1..2", default=True)
    train: TrainSettings = _help("training settings for every iteration", default_factory=TrainSettings)

    def _validate_own(self) -> None:
        from sparsity_lab.data import num_test_examples

        _check(self.method in ITERATIVE_METHODS, "method", self.method, f"one of {ITERATIVE_METHODS}")
        _check(self.scope in SCOPES, "scope", self.scope, f"one of {SCOPES}")
        _check(0 <= self.iterations <= MAX_ITERATIONS, "iterations", self.iterations,
               f"an integer T in [0, {MAX_ITERATIONS}]")
        self._validate_rule_fields()
        _check(self.control_base in iterative_rules(), "control_base", self.control_base,
               f"one of {', '.join(iterative_rules())}")
        _check(self.rewind_epoch >= 0, "rewind_epoch", self.rewind_epoch, "an integer >= 0")
        _check(self.rewind_epoch < self.train.epochs, "rewind_epoch", self.rewind_epoch,
               f"less than train.epochs={self.train.epochs}")
        _check(self.rank_weights in RANKED_WEIGHTS, "rank_weights", self.rank_weights, f"one of {RANKED_WEIGHTS}")
        _check(self.val_size >= 0, "val_size", self.val_size, "an integer >= 0")
        _check(self.rank_weights != "best_val" or self.val_size > 0, "val_size", self.val_size,
               "> 0 when rank_weights='best_val'")
        _check(self.train_subset >= 0, "train_subset", self.train_subset, "an integer >= 0 (0 = all)")
        n_test = num_test_examples(self.dataset)
        _check(0 <= self.test_subset <= n_test, "test_subset", self.test_subset,
               f"an integer in [0, {n_test}] (0 = all; {self.dataset} has {n_test} test examples)")

    def _validate_rule_fields(self) -> None:
        """Each rule checks the fields it reads (its hyperparameters' ``config_fields``): a bound is stated
        once, in the rule; the error names the config field."""
        for rule in PRUNING_RULES.values():
            mapping = getattr(rule.hyper, "config_fields", {})
            try:
                rule.hyper_from_config(self)
            except HyperparameterError as err:
                _check(False, mapping.get(err.name, err.name), err.value, err.allowed)

    @property
    def is_control(self) -> bool:
        return self.method in CONTROL_METHODS

    def control_parent(self) -> IterativeConfig:
        """The run whose masks a random-ticket / random-reinit control copies."""
        return dataclasses.replace(self, method=self.control_base)

    def dependencies(self) -> list[IterativeConfig]:
        """A control starts from its parent's masks; every other iterative run from nothing."""
        return [self.control_parent()] if self.is_control else []


def _asni_default_train() -> TrainSettings:
    """ASNI authors' MNIST LeNet-300-100 setting: Adam, batch 60, T = 50 epochs (docs/methods.md §4)."""
    return TrainSettings(optimizer="adam", lr=1e-3, momentum=0.9, nesterov=False, weight_decay=0.0,
                         epochs=50, batch_size=60, lr_schedule="constant", grad_clip=None)


@dataclass(frozen=True)
class AsniConfig(ExperimentConfig):
    """ASNI-I (sigmoid-schedule pruning during one training run) and ASNI-II retrainings (docs/methods.md §4)."""

    kind: ClassVar[str] = "asni"

    dataset: str = _help("dataset name", default="mnist")
    model: str = _help("model name from the registry", default="lenet300_100")
    variant: str = _help(
        f"one of {ASNI_VARIANTS}: asni1 = sigmoid-schedule pruning; the others retrain under the final asni1 mask "
        "(asni2 = learned 2-level init, mask_init = original init, mask_random_init, random_signs, std_levels) or dense; "
        "oneshot_global / oneshot_layer prune the dense run's final weights once to ASNI-I's sparsity (no training)",
        default="asni1",
    )
    seed: int = _help("random seed", default=0)
    s_max: float = _help("S_max: final target sparsity in percent, 0 < S_max < 100", default=98.0)
    kappa: float = _help("kappa > 0: sigmoid temperature in epochs (about T/10)", default=5.0)
    tau: float = _help("tau in [0, 1]: sigmoid midpoint as a fraction of T", default=0.5)
    histogram_bins: int = _help("bins of the per-layer histograms of surviving weights", default=120)
    train_subset: int = _help("train on a seeded subset of this many training examples (0 = all)", default=0)
    train: TrainSettings = _help("training settings (train.epochs = T)", default_factory=_asni_default_train)

    def _validate_own(self) -> None:
        _check(self.variant in ASNI_VARIANTS, "variant", self.variant, f"one of {ASNI_VARIANTS}")
        _check(0 < self.s_max < 100, "s_max", self.s_max, "0 < S_max < 100 (percent)")
        _check(self.kappa > 0, "kappa", self.kappa, "kappa > 0")
        _check(0 <= self.tau <= 1, "tau", self.tau, "0 <= tau <= 1")
        _check(2 <= self.histogram_bins <= MAX_HISTOGRAM_BINS, "histogram_bins", self.histogram_bins,
               f"an integer in [2, {MAX_HISTOGRAM_BINS}]")
        _check(self.train_subset >= 0, "train_subset", self.train_subset, "an integer >= 0 (0 = all)")

    def schedule_parent(self) -> AsniConfig:
        """The ASNI-I run whose final mask and weights an ASNI-II-style variant starts from."""
        return dataclasses.replace(self, variant="asni1")

    def dependencies(self) -> list[AsniConfig]:
        """Runs this one starts from: none (asni1, dense); ASNI-I (the retrainings); ASNI-I and dense
        (the one-shot contrasts, which prune the dense run's weights to ASNI-I's sparsity)."""
        if self.variant in ("asni1", "dense"):
            return []
        if self.variant in ASNI_ONESHOT_VARIANTS:
            return [self.schedule_parent(), dataclasses.replace(self, variant="dense")]
        return [self.schedule_parent()]


CONFIG_TYPES: dict[str, type[ExperimentConfig]] = {"iterative": IterativeConfig, "asni": AsniConfig}


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Inverse of ``to_dict`` (missing fields take their defaults; unknown fields are an error)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of field names to values, got {type(data).__name__} {data!r}")
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in CONFIG_TYPES:
        raise ConfigError(f"invalid config field kind={kind!r}: allowed one of {sorted(CONFIG_TYPES)}")
    data.pop("run_id", None)
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return config_with(CONFIG_TYPES[kind](), **flat)
