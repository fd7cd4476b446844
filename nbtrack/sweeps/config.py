"""W&B-format sweep configs: parse and validate them, enumerate grids and sample parameters (pure).

    spec = parse_sweep_config({"method": "random", "parameters": {"lr": {"min": 1e-4, "max": 0.1}}})
    spec.sample(np.random.default_rng(0))  # {"lr": 0.0637...}

The schema is W&B's (https://docs.wandb.ai/guides/sweeps/sweep-config-keys); where it leaves room these choices hold:

- `*_values` distributions take their bounds as values, the others as natural-log exponents. `inv_log_uniform`
  samples exp(-U(min, max)); `inv_log_uniform_values` samples X in [min, max] with 1/X log-uniform on
  [1/max, 1/min], as W&B's own sampler does.
- `q_*` distributions round to a multiple of `q` (default 1). A sample is an int when `q` is written as an int
  (so the default gives ints), a float otherwise. Bounded ones (`q_uniform`, `q_log_uniform(_values)`) stay inside
  [min, max]: the multiple is clamped to the ones within the bounds, and a range holding none is an error.
- Grid search takes `constant`, `categorical` (without `probabilities`), `int_uniform` (every int from min to
  max) and `q_uniform` (every multiple of q from min to max); anything else raises, naming the parameter.
- Parameters keep the order of the config; nested `parameters` are flattened depth first.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from nbtrack.errors import NbtrackError

METHODS = ("grid", "random", "bayes")
DISTRIBUTIONS = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform",
    "log_uniform_values",
    "inv_log_uniform",
    "inv_log_uniform_values",
    "q_log_uniform_values",
    "q_log_uniform",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
)
GOALS = ("minimize", "maximize")

# The keys each distribution takes besides `distribution` (W&B's schema forbids any other).
_KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
}
_DISCRETE = ("constant", "categorical", "int_uniform", "q_uniform")
# Top-level keys W&B defines that an offline sweep has no use for: accepted and ignored.
_IGNORED_KEYS = ("program", "command", "description", "entity", "project", "apiVersion", "kind", "controller")
_IGNORED_KEYS += ("job", "image_uri")
_TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "name", "run_cap", *_IGNORED_KEYS)
_METRIC_KEYS = ("name", "goal", "target", "impute", "impute_while_running")
_HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")


class SweepConfigError(NbtrackError, ValueError):
    """A sweep config that does not follow the schema; the message starts with the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _error(field: str, text: str) -> SweepConfigError:
    return SweepConfigError(f"{field}: {text}", field=field)


def _suggest(key: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


@dataclass(frozen=True)
class Metric:
    """The metric a sweep optimizes."""

    name: str
    goal: str = "minimize"
    target: float | None = None

    def __post_init__(self) -> None:
        if self.goal not in GOALS:
            raise _error("metric.goal", f"got {self.goal!r}; expected 'minimize' or 'maximize'.")

    def better(self, a: float, b: float) -> bool:
        """Whether `a` is strictly better than `b`; NaN is never better, and anything beats NaN."""
        if math.isnan(a):
            return False
        if math.isnan(b):
            return True
        return a < b if self.goal == "minimize" else a > b


@dataclass(frozen=True)
class Parameter:
    """One searched parameter; `path` is its place in the (nested) config the trial receives."""

    path: tuple[str, ...]
    distribution: str
    value: Any = None
    values: tuple[Any, ...] = ()
    probabilities: tuple[float, ...] | None = None
    min: float | None = None
    max: float | None = None
    q: float | None = None
    mu: float = 0.0
    sigma: float = 1.0
    a: float = 1.0
    b: float = 1.0

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def discrete(self) -> bool:
        """Whether a grid can enumerate it: constant, categorical, int_uniform or q_uniform."""
        return self.distribution in _DISCRETE

    def sample(self, rng: np.random.Generator) -> Any:
        """One value, as a plain Python scalar (or the configured value itself for constant/categorical)."""
        kind = self.distribution
        if kind == "constant":
            return copy.deepcopy(self.value)
        if kind == "categorical":
            if self.probabilities is None:
                index = int(rng.integers(len(self.values)))
            else:
                weights = np.asarray(self.probabilities, dtype=float)
                index = int(rng.choice(len(self.values), p=weights / weights.sum()))
            return copy.deepcopy(self.values[index])
        if kind == "int_uniform":
            return int(rng.integers(int(self.min), int(self.max) + 1))  # type: ignore[arg-type]
        if kind in ("normal", "q_normal"):
            x = float(rng.normal(self.mu, self.sigma))
        elif kind in ("log_normal", "q_log_normal"):
            x = float(rng.lognormal(self.mu, self.sigma))
        elif kind == "beta":
            return float(rng.beta(self.a, self.b))
        else:
            low, high = self._log_bounds()
            x = float(rng.uniform(low, high))
            if "log" in kind:
                x = math.exp(x)
            if kind.startswith("inv_"):
                x = 1.0 / x
            low, high = self._bounds()
            x = min(max(x, low), high)  # exp and log may step an ulp outside the bounds
        if kind.startswith("q_"):
            return self._quantize(x)
        return x

    def grid_values(self) -> list[Any]:
        """Every value a grid tries, in order; raises SweepConfigError for a continuous parameter."""
        kind = self.distribution
        if kind == "constant":
            return [copy.deepcopy(self.value)]
        if kind == "categorical":
            return [copy.deepcopy(v) for v in self.values]
        if kind == "int_uniform":
            return list(range(int(self.min), int(self.max) + 1))  # type: ignore[arg-type]
        if kind == "q_uniform":
            first, last = self._multiples()
            return [self._multiple(k) for k in range(first, last + 1)]
        raise _error(
            f"parameters.{self.name}",
            f"a grid cannot enumerate a continuous {kind} parameter. Give it `values: [...]`, make it "
            "int_uniform or q_uniform, or use method 'random' or 'bayes'.",
        )

    # -- helpers --------------------------------------------------------------------------------------
    def _log_bounds(self) -> tuple[float, float]:
        """The interval the underlying uniform draw comes from."""
        low, high = float(self.min), float(self.max)  # type: ignore[arg-type]
        kind = self.distribution
        if kind in ("log_uniform_values", "q_log_uniform_values"):
            return math.log(low), math.log(high)
        if kind == "inv_log_uniform_values":  # 1/X is log-uniform on [1/max, 1/min]
            return math.log(1.0 / high), math.log(1.0 / low)
        return low, high  # inv_log_uniform: 1/X = exp(U(min, max))

    def _bounds(self) -> tuple[float, float]:
        """The interval every sample of a bounded distribution lies in."""
        low, high = float(self.min), float(self.max)  # type: ignore[arg-type]
        kind = self.distribution
        if kind in ("log_uniform", "q_log_uniform"):
            return math.exp(low), math.exp(high)
        if kind == "inv_log_uniform":
            return math.exp(-high), math.exp(-low)
        return low, high

    def _multiples(self) -> tuple[int, int]:
        """The first and last k with k*q inside the bounds (the tolerance absorbs float noise like 0.3/0.1)."""
        low, high = self._bounds()
        q = float(self.q)  # type: ignore[arg-type]
        return math.ceil(low / q - 1e-9), math.floor(high / q + 1e-9)

    def _multiple(self, k: int) -> int | float:
        q = self.q
        if isinstance(q, int):
            return int(k * q)
        digits = min(15, max(0, -int(Decimal(repr(float(q))).as_tuple().exponent)))  # type: ignore[arg-type]
        return round(k * float(q), digits)  # type: ignore[arg-type]

    def _quantize(self, x: float) -> int | float:
        k = round(x / float(self.q))  # type: ignore[arg-type]
        if self.distribution in ("q_uniform", "q_log_uniform", "q_log_uniform_values"):
            first, last = self._multiples()
            k = min(max(k, first), last)
        return self._multiple(k)


@dataclass(frozen=True)
class Hyperband:
    """Hyperband early termination: at each rung (an epoch count) only the top 1/eta of trials go on.

    Rungs are min_iter * eta**k up to max_iter (inclusive) when `min_iter` is given; W&B's other form,
    `max_iter` with `s`, has the rungs int(max_iter / eta**i) for i = 1..s (all below max_iter).
    """

    min_iter: int
    eta: float = 3
    max_iter: int | None = None
    strict: bool = False
    s: int | None = None

    def __post_init__(self) -> None:
        if not _is_number(self.eta) or not self.eta > 1:
            raise _error("early_terminate.eta", f"got {self.eta!r}; expected a number above 1 (default 3).")
        if not _is_int(self.min_iter) or self.min_iter < 1:
            raise _error("early_terminate.min_iter", f"got {self.min_iter!r}; expected an int of at least 1.")
        if self.max_iter is not None and (not _is_int(self.max_iter) or self.max_iter < self.min_iter):
            raise _error(
                "early_terminate.max_iter",
                f"got {self.max_iter!r}; expected an int of at least min_iter ({self.min_iter}).",
            )
        if self.s is not None and (not _is_int(self.s) or self.s < 1 or self.max_iter is None):
            raise _error(
                "early_terminate.s", f"got {self.s!r}; expected a positive int, given with max_iter."
            )

    def rungs(self, limit: int = 1000) -> list[int]:
        """The epoch counts at which trials are compared, ascending, none above max_iter (or `limit`)."""
        if self.s is not None and self.max_iter is not None:
            bands = {int(self.max_iter / self.eta**i) for i in range(1, self.s + 1)}
            return sorted(b for b in bands if 1 <= b <= limit)
        top = limit if self.max_iter is None else min(self.max_iter, limit)
        rungs: list[int] = []
        k = 0
        while True:
            rung = math.floor(self.min_iter * self.eta**k + 0.5)
            if rung > top:
                return rungs
            if not rungs or rung > rungs[-1]:
                rungs.append(rung)
            # Skip the k whose value rounds to this rung again (many of them when eta is close to 1).
            k = max(k + 1, math.ceil(math.log((rung + 0.5) / self.min_iter, self.eta) - 1e-9))


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep config."""

    method: str
    metric: Metric | None
    parameters: tuple[Parameter, ...]
    early_terminate: Hyperband | None
    name: str | None
    raw: dict[str, Any]
    run_cap: int | None = None

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the parameters' grid values (the last varies fastest), as nested configs."""
        _check_grid(self.parameters)
        names = [p.path for p in self.parameters]
        choices = [p.grid_values() for p in self.parameters]
        return [nest(dict(zip(names, combo))) for combo in itertools.product(*choices)]

    def grid_size(self) -> int:
        _check_grid(self.parameters)
        return math.prod(len(p.grid_values()) for p in self.parameters)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One nested config with every parameter drawn from its distribution."""
        return nest({p.path: p.sample(rng) for p in self.parameters})


def nest(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    """Turn {("a", "b"): 1} into {"a": {"b": 1}}."""
    out: dict[str, Any] = {}
    for path, value in flat.items():
        node = out
        for i, key in enumerate(path[:-1]):
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise _error(".".join(path), f"{'.'.join(path[: i + 1])} is both a value and a group.")
        if path[-1] in node:
            raise _error(".".join(path), "set twice.")
        node[path[-1]] = value
    return out


def _check_grid(parameters: tuple[Parameter, ...]) -> None:
    for p in parameters:
        p.grid_values()  # raises for a continuous one
        if p.probabilities is not None:
            raise _error(
                f"parameters.{p.name}.probabilities",
                "a grid tries every value once, so probabilities mean nothing there. Remove them, or use "
                "method 'random'.",
            )


# -- parsing -------------------------------------------------------------------------------------------
def parse_sweep_config(config: Mapping[str, Any] | str | os.PathLike[str]) -> SweepSpec:
    """Validate a W&B-format sweep config: a dict, or the path of a .yaml/.yml/.json file.

    Raises:
        SweepConfigError: naming the offending field (e.g. "parameters.lr.min") and how to fix it.
    """
    if isinstance(config, (str, os.PathLike)):
        config = _load(Path(config))
    if not isinstance(config, Mapping):
        raise _error(
            "config",
            f"got a {type(config).__name__}; expected a dict, or a path to a .yaml/.yml/.json file.",
        )
    raw = _plain(config, "config")
    for key in raw:
        if key not in _TOP_KEYS:
            raise _error(
                key, f"unknown top-level key.{_suggest(key, _TOP_KEYS)} Expected: {', '.join(_TOP_KEYS)}."
            )
    method = raw.get("method")
    if method is None:
        raise _error("method", f"missing; expected one of: {', '.join(METHODS)}.")
    if method not in METHODS:
        raise _error(
            "method",
            f"unknown method {method!r}.{_suggest(str(method), METHODS)} Expected: {', '.join(METHODS)}.",
        )
    metric = _parse_metric(raw.get("metric"))
    early = _parse_hyperband(raw.get("early_terminate"))
    example = "add metric: {name: val_loss, goal: minimize}"
    if method == "bayes" and metric is None:
        raise _error("metric", f"method 'bayes' needs a metric to optimize; {example}.")
    if early is not None and metric is None:
        raise _error("metric", f"early_terminate (hyperband) needs a metric to compare trials by; {example}.")
    if "parameters" not in raw:
        raise _error("parameters", "missing; expected a dict of parameter names to their search spaces.")
    parameters = tuple(_parse_parameters(raw["parameters"], (), "parameters"))
    names = [p.name for p in parameters]
    for name in names:
        if names.count(name) > 1:
            raise _error(f"parameters.{name}", "two parameters share this name (once nested, once dotted).")
    if method == "grid":
        _check_grid(parameters)
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise _error("name", f"got {name!r}; expected a string.")
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not _is_int(run_cap) or run_cap < 1):
        raise _error("run_cap", f"got {run_cap!r}; expected a positive int (the most trials to run).")
    return SweepSpec(method, metric, parameters, early, name, raw, run_cap)


def _load(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise _error(
            "config", f"{str(path)!r} is not a .yaml, .yml or .json file; pass one of those, or a dict."
        )
    if not path.is_file():
        raise _error("config", f"sweep config file {str(path)!r} does not exist.")
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise _error("config", f"{str(path)!r} is not valid JSON: {exc}.") from None
    try:
        import yaml
    except ImportError:
        raise SweepConfigError(
            "Reading a YAML sweep config needs PyYAML. Install it with `pip install 'nbtrack[sweeps]'`."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _error("config", f"{str(path)!r} is not valid YAML: {exc}") from None


def _plain(value: Any, field: str) -> Any:
    """A JSON-able copy: tuples become lists, NumPy scalars and arrays plain Python; anything else raises."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _error(f"{field}[{key!r}]", f"keys must be strings, got a {type(key).__name__}.")
            out[key] = _plain(item, key if field == "config" else f"{field}.{key}")
        return out
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(item, f"{field}[{i}]") for i, item in enumerate(list(value))]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise _error(field, f"got a {type(value).__name__}; a sweep config holds only JSON values.")


def _parse_metric(metric: Any) -> Metric | None:
    if metric is None:
        return None
    if not isinstance(metric, dict):
        raise _error("metric", f"got {metric!r}; expected {{name: val_loss, goal: minimize}}.")
    for key in metric:
        if key not in _METRIC_KEYS:
            raise _error(
                f"metric.{key}",
                f"unknown key.{_suggest(key, _METRIC_KEYS)} Expected: {', '.join(_METRIC_KEYS)}.",
            )
    name = metric.get("name")
    if not isinstance(name, str) or not name:
        raise _error("metric.name", f"got {name!r}; expected the name of a logged metric, e.g. 'val_loss'.")
    target = metric.get("target")
    if target is not None and not _is_number(target):
        raise _error("metric.target", f"got {target!r}; expected a number.")
    return Metric(name, metric.get("goal", "minimize"), None if target is None else float(target))


def _parse_hyperband(config: Any) -> Hyperband | None:
    if config is None:
        return None
    field = "early_terminate"
    if not isinstance(config, dict):
        raise _error(field, f"got {config!r}; expected {{type: hyperband, min_iter: 1}}.")
    if config.get("type") != "hyperband":
        raise _error(
            f"{field}.type", f"got {config.get('type')!r}; the only early termination is 'hyperband'."
        )
    for key in config:
        if key not in _HYPERBAND_KEYS:
            raise _error(
                f"{field}.{key}",
                f"unknown key.{_suggest(key, _HYPERBAND_KEYS)} Expected: {', '.join(_HYPERBAND_KEYS)}.",
            )
    eta = config.get("eta", 3)
    strict = config.get("strict", False)
    if not isinstance(strict, bool):
        raise _error(f"{field}.strict", f"got {strict!r}; expected true or false.")
    if "min_iter" in config:
        if "s" in config:
            raise _error(
                f"{field}.s", "s goes with max_iter (rungs counted down from it); drop it or min_iter."
            )
        return Hyperband(config["min_iter"], eta, config.get("max_iter"), strict)
    if "max_iter" not in config or "s" not in config:
        raise _error(field, "needs min_iter (the first rung), or max_iter together with s.")
    max_iter = config["max_iter"]
    bands = Hyperband(1, eta, max_iter, strict, config["s"]).rungs(limit=max_iter)
    if not bands:
        raise _error(f"{field}.max_iter", f"max_iter {max_iter} / eta {eta} is below 1, so there is no rung.")
    return Hyperband(bands[0], eta, max_iter, strict, config["s"])


def _parse_parameters(config: Any, prefix: tuple[str, ...], field: str) -> list[Parameter]:
    if not isinstance(config, dict):
        raise _error(field, f"got {config!r}; expected a dict of parameter names to their search spaces.")
    if not config:
        raise _error(field, "is empty; give at least one parameter, e.g. {lr: {min: 0.0001, max: 0.1}}.")
    parameters: list[Parameter] = []
    for key, spec in config.items():
        here = f"{field}.{key}"
        if not key:
            raise _error(here, "a parameter name must not be empty.")
        if not isinstance(spec, dict):
            raise _error(
                here,
                f"got {spec!r}; expected a search space such as {{value: {spec!r}}} or {{values: [...]}}.",
            )
        if "parameters" in spec and "distribution" not in spec:
            extra = [k for k in spec if k != "parameters"]
            if extra:
                raise _error(
                    f"{here}.{extra[0]}", "a group of nested parameters takes only the key 'parameters'."
                )
            parameters += _parse_parameters(spec["parameters"], (*prefix, key), f"{here}.parameters")
        else:
            parameters.append(_parse_parameter(spec, (*prefix, key), here))
    return parameters


def _infer_distribution(spec: dict[str, Any], field: str) -> str:
    if "distribution" in spec:
        kind = spec["distribution"]
        if kind == "categorical_w_probabilities":  # W&B's name for categorical with probabilities
            return "categorical"
        if kind not in DISTRIBUTIONS:
            raise _error(
                f"{field}.distribution",
                f"unknown distribution {kind!r}.{_suggest(str(kind), DISTRIBUTIONS)} "
                f"Expected one of: {', '.join(DISTRIBUTIONS)}.",
            )
        return kind
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical"
    if "min" in spec and "max" in spec:
        return "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) else "uniform"
    if ("mu" in spec or "sigma" in spec) and "min" not in spec and "max" not in spec:
        return "normal"
    raise _error(
        field,
        "cannot tell its search space. Give `value: X` (constant), `values: [...]`, `min`/`max`, `mu`/`sigma`, "
        "`parameters: {...}` (nested) or a `distribution`.",
    )


def _parse_parameter(spec: dict[str, Any], path: tuple[str, ...], field: str) -> Parameter:
    kind = _infer_distribution(spec, field)
    keys = _KEYS[kind]
    for key in spec:
        if key != "distribution" and key not in keys:
            hint = (
                " Quantizing needs an explicit `distribution: q_uniform` (or another q_*)."
                if key == "q"
                else ""
            )
            raise _error(
                f"{field}.{key}",
                f"a {kind} parameter does not take {key!r} (it takes: {', '.join(keys)}, distribution).{hint}",
            )
    for key in keys:
        if key in ("min", "max", "values", "value") and key not in spec:
            raise _error(
                f"{field}.{key}",
                f"missing; a {kind} parameter needs {' and '.join(k for k in keys if k in ('min', 'max', 'values', 'value'))}.",
            )
    numbers = {
        key: _number(spec[key], f"{field}.{key}")
        for key in ("min", "max", "q", "mu", "sigma", "a", "b")
        if key in spec
    }
    if kind == "constant":
        return Parameter(path, kind, value=spec["value"])
    if kind == "categorical":
        values, probabilities = _categorical(spec, field)
        return Parameter(path, kind, values=values, probabilities=probabilities)
    if "min" in numbers:
        low, high = numbers["min"], numbers["max"]
        if kind == "int_uniform":
            low, high = _integral(low, f"{field}.min"), _integral(high, f"{field}.max")
        if not low < high:
            raise _error(f"{field}.min", f"min ({low}) must be smaller than max ({high}).")
        if kind.endswith("_values") and low <= 0:
            raise _error(
                f"{field}.min",
                f"a {kind} parameter takes values above 0 (min and max are values, not exponents); got {low}.",
            )
        numbers["min"], numbers["max"] = low, high
    if kind.startswith("q_"):
        numbers.setdefault("q", 1)
        if not numbers["q"] > 0:
            raise _error(f"{field}.q", f"got {numbers['q']}; q must be above 0.")
    if numbers.get("sigma", 1) <= 0:
        raise _error(f"{field}.sigma", f"got {numbers['sigma']}; sigma must be above 0.")
    for key in ("a", "b"):
        if numbers.get(key, 1) <= 0:
            raise _error(
                f"{field}.{key}", f"got {numbers[key]}; the beta distribution's {key} must be above 0."
            )
    parameter = Parameter(path, kind, **numbers)
    if kind in ("q_uniform", "q_log_uniform", "q_log_uniform_values"):
        first, last = parameter._multiples()
        if first > last:
            low, high = parameter._bounds()
            raise _error(
                f"{field}.q",
                f"no multiple of q={parameter.q} lies between {low:g} and {high:g}; use a smaller q.",
            )
    return parameter


def _categorical(spec: dict[str, Any], field: str) -> tuple[tuple[Any, ...], tuple[float, ...] | None]:
    values = spec["values"]
    if not isinstance(values, list):
        raise _error(f"{field}.values", f"got {values!r}; expected a list, e.g. values: [16, 32, 64].")
    if not values:
        raise _error(f"{field}.values", "is empty; list at least one value.")
    probabilities = spec.get("probabilities")
    if probabilities is None:
        return tuple(values), None
    where = f"{field}.probabilities"
    if not isinstance(probabilities, list) or len(probabilities) != len(values):
        raise _error(
            where, f"got {probabilities!r}; expected a list of {len(values)} numbers, one per value."
        )
    weights = tuple(_number(p, f"{where}[{i}]") for i, p in enumerate(probabilities))
    if any(w < 0 for w in weights):
        raise _error(where, f"got {probabilities!r}; probabilities cannot be negative.")
    if abs(sum(weights) - 1.0) > 1e-6:
        raise _error(where, f"sum to {sum(weights):g}; they must sum to 1.")
    return tuple(values), weights


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _number(x: Any, field: str) -> float:
    if _is_number(x) and math.isfinite(x):
        return x
    hint = " (YAML reads 1e-4 as text: write 1.0e-4)" if isinstance(x, str) else ""
    raise _error(field, f"got {x!r}; expected a finite number{hint}.")


def _integral(x: float, field: str) -> int:
    if _is_int(x) or float(x).is_integer():
        return int(x)
    raise _error(field, f"got {x!r}; an int_uniform parameter's bounds are ints.")
