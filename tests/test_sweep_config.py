"""W&B-format sweep configs: parsing, defaults, sampling, grids, errors that name the field, Hyperband rungs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nbtrack.errors import NbtrackError
from nbtrack.sweeps.config import (
    DISTRIBUTIONS,
    METHODS,
    Hyperband,
    Metric,
    Parameter,
    SweepConfigError,
    nest,
    parse_sweep_config,
)
from nbtrack.sweeps.hyperband import rung_for, should_stop

N = 2000


def spec_of(parameters: dict, method: str = "random", **top) -> object:
    return parse_sweep_config({"method": method, "parameters": parameters, **top})


def param(space: dict) -> Parameter:
    (parameter,) = spec_of({"x": space}).parameters
    return parameter


def draws(space: dict, n: int = N) -> list:
    parameter = param(space)
    rng = np.random.default_rng(0)
    return [parameter.sample(rng) for _ in range(n)]


# -- parsing and defaults --------------------------------------------------------------------------
def test_parameter_forms_and_defaults():
    spec = spec_of(
        {
            "epochs": {"value": 5},
            "act": {"values": ["relu", "tanh"]},
            "units": {"min": 8, "max": 64},
            "dropout": {"min": 0, "max": 0.5},
            "noise": {"mu": 1.0, "sigma": 0.5},
            "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 0.1},
            "optimizer": {
                "parameters": {"name": {"values": ["adam"]}, "beta": {"parameters": {"b1": {"value": 0.9}}}}
            },
        },
        name="demo",
        run_cap=10,
        program="train.py",
        command=["${program}"],
        description="ignored",
    )
    kinds = {p.name: p.distribution for p in spec.parameters}
    assert kinds == {
        "epochs": "constant",
        "act": "categorical",
        "units": "int_uniform",
        "dropout": "uniform",
        "noise": "normal",
        "lr": "log_uniform_values",
        "optimizer.name": "categorical",
        "optimizer.beta.b1": "constant",
    }
    by_name = {p.name: p for p in spec.parameters}
    assert by_name["optimizer.beta.b1"].path == ("optimizer", "beta", "b1")
    assert by_name["noise"].mu == 1.0 and by_name["noise"].sigma == 0.5
    assert by_name["act"].values == ("relu", "tanh") and by_name["act"].probabilities is None
    assert spec.name == "demo" and spec.run_cap == 10 and spec.metric is None and spec.early_terminate is None
    assert spec.raw["program"] == "train.py"
    json.dumps(spec.raw)
    sample = spec.sample(np.random.default_rng(0))
    assert sample["epochs"] == 5 and sample["optimizer"]["beta"] == {"b1": 0.9}
    assert list(sample) == ["epochs", "act", "units", "dropout", "noise", "lr", "optimizer"]


def test_metric_defaults_and_better():
    spec = spec_of({"a": {"value": 1}}, metric={"name": "val_loss"})
    assert spec.metric == Metric("val_loss", "minimize")
    low = Metric("loss", "minimize")
    high = Metric("acc", "maximize", target=0.99)
    assert low.better(1.0, 2.0) and not low.better(2.0, 1.0) and not low.better(1.0, 1.0)
    assert high.better(2.0, 1.0) and not high.better(1.0, 2.0)
    assert not low.better(math.nan, 1.0) and low.better(1.0, math.nan) and not low.better(math.nan, math.nan)


def test_raw_is_json_with_numpy_and_tuples_made_plain():
    spec = spec_of({"x": {"values": (np.float64(0.5), np.int64(3))}, "y": {"values": np.array([1, 2])}})
    assert spec.raw["parameters"]["x"]["values"] == [0.5, 3]
    assert type(spec.raw["parameters"]["x"]["values"][1]) is int
    assert spec.parameters[1].values == (1, 2)
    json.dumps(spec.raw)
    assert parse_sweep_config(spec.raw) == spec  # the stored raw config parses to the same spec


def test_yaml_and_json_files(tmp_path):
    yaml_path = tmp_path / "sweep.yaml"
    yaml_path.write_text(
        "method: bayes\nmetric:\n  name: val_loss\n  goal: minimize\nparameters:\n"
        "  lr:\n    distribution: log_uniform_values\n    min: 1.0e-4\n    max: 0.1\n"
        "  batch: {values: [16, 32]}\nearly_terminate: {type: hyperband, min_iter: 2}\n"
    )
    spec = parse_sweep_config(yaml_path)
    assert spec.method == "bayes" and [p.name for p in spec.parameters] == ["lr", "batch"]
    assert spec.early_terminate == Hyperband(min_iter=2)
    json_path = tmp_path / "sweep.json"
    json_path.write_text(json.dumps(spec.raw))
    assert parse_sweep_config(str(json_path)) == spec
    yml_path = tmp_path / "sweep.yml"
    yml_path.write_text(yaml_path.read_text())
    assert parse_sweep_config(yml_path).raw == spec.raw


# -- sampling --------------------------------------------------------------------------------------
def test_constant_and_categorical_return_the_values_themselves():
    assert set(map(type, draws({"value": "adam"}, 10))) == {str}
    nested = draws({"values": [[32, 64], {"k": 1}]}, 50)
    assert [32, 64] in nested and {"k": 1} in nested
    parameter = param({"values": [[32, 64]]})
    parameter.sample(np.random.default_rng(0)).append(128)
    assert parameter.values == ([32, 64],)  # a sample is a copy: a trial cannot change the sweep


def test_categorical_frequencies_follow_probabilities():
    values = draws({"values": ["a", "b", "c"], "probabilities": [0.6, 0.3, 0.1]})
    for value, p in zip("abc", (0.6, 0.3, 0.1)):
        assert abs(values.count(value) / N - p) < 0.04
    uniform = draws({"values": ["a", "b"]})
    assert abs(uniform.count("a") / N - 0.5) < 0.04
    assert (
        draws({"distribution": "categorical_w_probabilities", "values": [1], "probabilities": [1]}, 3)
        == [1] * 3
    )


def test_int_uniform_covers_both_ends():
    values = draws({"min": 1, "max": 4})
    assert all(type(v) is int for v in values) and set(values) == {1, 2, 3, 4}
    assert set(draws({"distribution": "int_uniform", "min": 1.0, "max": 3.0})) == {1, 2, 3}


def test_uniform():
    values = np.array(draws({"min": -1.0, "max": 3}))
    assert all(type(v) is float for v in values.tolist())
    assert values.min() >= -1 and values.max() <= 3 and abs(values.mean() - 1) < 0.1


def test_log_uniform_takes_exponents_and_log_uniform_values_takes_values():
    exps = np.array(draws({"distribution": "log_uniform", "min": math.log(1e-4), "max": math.log(1e-1)}))
    vals = np.array(draws({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}))
    for values in (exps, vals):
        assert values.min() >= 1e-4 * (1 - 1e-12) and values.max() <= 1e-1 * (1 + 1e-12)
        assert abs(math.log10(np.median(values)) - math.log10(math.sqrt(1e-4 * 1e-1))) < 0.15
        assert abs(np.mean(values < 1e-3) - 1 / 3) < 0.04  # a third of the decades lie below 1e-3


def test_inverse_log_uniform():
    inv = np.array(draws({"distribution": "inv_log_uniform", "min": 0, "max": math.log(100)}))
    assert inv.min() >= 0.01 and inv.max() <= 1
    assert abs(np.median(inv) - 0.1) < 0.02 and abs(np.mean(inv < 0.1) - 0.5) < 0.04
    values = np.array(draws({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1}))
    assert values.min() >= 0.01 and values.max() <= 1
    assert abs(np.mean(1 / values < 10) - 0.5) < 0.04  # 1/X is log-uniform on [1, 100]


def test_quantized_distributions_are_multiples_of_q():
    steps = draws({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.1})
    assert set(steps) == {round(0.1 * k, 1) for k in range(11)}
    ints = draws({"distribution": "q_uniform", "min": 0.5, "max": 10.5})  # q defaults to 1: ints
    assert all(type(v) is int for v in ints) and min(ints) == 1 and max(ints) == 10
    batches = draws({"distribution": "q_log_uniform_values", "min": 16, "max": 256, "q": 16})
    assert all(type(v) is int and v % 16 == 0 and 16 <= v <= 256 for v in batches)
    assert batches.count(16) > batches.count(256)  # log-uniform: small values are more likely
    small = draws({"distribution": "q_log_uniform", "min": 0, "max": math.log(10), "q": 0.5})
    assert all(1 <= v <= 10 and (v / 0.5).is_integer() and type(v) is float for v in small)
    for kind in ("q_normal", "q_log_normal"):
        values = draws({"distribution": kind, "mu": 2, "sigma": 1, "q": 0.25})
        assert all(abs(v / 0.25 - round(v / 0.25)) < 1e-9 for v in values)
    assert all(v >= 0 for v in draws({"distribution": "q_log_normal", "q": 2}))


def test_normal_and_log_normal():
    values = np.array(draws({"distribution": "normal", "mu": 5, "sigma": 2}))
    assert abs(values.mean() - 5) < 0.15 and abs(values.std() - 2) < 0.15
    assert all(type(v) is float for v in values.tolist())
    logs = np.log(draws({"distribution": "log_normal", "mu": -1, "sigma": 0.5}))
    assert abs(logs.mean() + 1) < 0.05 and abs(logs.std() - 0.5) < 0.05
    standard = np.array(draws({"distribution": "normal"}))
    assert abs(standard.mean()) < 0.1 and abs(standard.std() - 1) < 0.1


def test_beta():
    uniform = np.array(draws({"distribution": "beta"}))  # a = b = 1 by default
    assert uniform.min() >= 0 and uniform.max() <= 1 and abs(uniform.mean() - 0.5) < 0.03
    skewed = np.array(draws({"distribution": "beta", "a": 2, "b": 6}))
    assert abs(skewed.mean() - 0.25) < 0.02


def test_every_distribution_is_sampled_within_its_bounds():
    spaces = {
        "constant": {"value": 1},
        "categorical": {"values": [1, 2]},
        "int_uniform": {"min": 1, "max": 2},
        "uniform": {"min": 1, "max": 2},
        "q_uniform": {"min": 1, "max": 2, "q": 0.5},
        "log_uniform": {"min": 0, "max": 1},
        "log_uniform_values": {"min": 1, "max": 2},
        "inv_log_uniform": {"min": 0, "max": 1},
        "inv_log_uniform_values": {"min": 1, "max": 2},
        "q_log_uniform_values": {"min": 1, "max": 2, "q": 0.5},
        "q_log_uniform": {"min": 0, "max": 1, "q": 0.5},
    }
    bounds = {"log_uniform": (1, math.e), "inv_log_uniform": (1 / math.e, 1), "q_log_uniform": (1, math.e)}
    for kind, space in spaces.items():
        values = draws({**space, "distribution": kind}, 300)
        low, high = bounds.get(kind, (1, 2))
        assert all(low <= v <= high for v in values), kind
    assert set(spaces) | {"normal", "q_normal", "log_normal", "q_log_normal", "beta"} == set(DISTRIBUTIONS)


def test_same_seed_same_samples():
    spec = spec_of({"lr": {"min": 0.0, "max": 1.0}, "n": {"min": 1, "max": 100}})
    first = [spec.sample(np.random.default_rng(7)) for _ in range(3)]
    assert first == [spec.sample(np.random.default_rng(7)) for _ in range(3)]


# -- grid ------------------------------------------------------------------------------------------
def test_grid_order_and_size_with_nested_parameters():
    spec = spec_of(
        {
            "a": {"values": [1, 2]},
            "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}, "momentum": {"value": 0.9}}},
            "layers": {"min": 1, "max": 3},
        },
        method="grid",
    )
    grid = spec.grid()
    assert spec.grid_size() == len(grid) == 12
    assert grid[0] == {"a": 1, "opt": {"name": "adam", "momentum": 0.9}, "layers": 1}
    assert grid[1] == {"a": 1, "opt": {"name": "adam", "momentum": 0.9}, "layers": 2}
    assert grid[3]["opt"]["name"] == "sgd" and grid[6]["a"] == 2
    assert [(g["a"], g["opt"]["name"], g["layers"]) for g in grid] == [
        (a, n, layer) for a in (1, 2) for n in ("adam", "sgd") for layer in (1, 2, 3)
    ]


def test_grid_values_of_discrete_parameters():
    assert param({"distribution": "q_uniform", "min": 0.05, "max": 0.3, "q": 0.1}).grid_values() == [
        0.1,
        0.2,
        0.3,
    ]
    assert param({"distribution": "q_uniform", "min": 0, "max": 4, "q": 2}).grid_values() == [0, 2, 4]
    assert param({"min": -1, "max": 1}).grid_values() == [-1, 0, 1]
    assert param({"values": ["x", "y"]}).discrete and not param({"min": 0.0, "max": 1.0}).discrete


def test_grid_raises_naming_the_first_continuous_parameter():
    spec = spec_of({"a": {"values": [1]}, "lr": {"min": 0.0, "max": 1.0}, "b": {"distribution": "normal"}})
    for call in (spec.grid, spec.grid_size):
        with pytest.raises(SweepConfigError, match=r"parameters\.lr: .*continuous uniform"):
            call()
    with pytest.raises(SweepConfigError, match=r"parameters\.x: .*normal"):
        param({"distribution": "normal"}).grid_values()


def test_nest():
    assert nest({("a", "b"): 1, ("a", "c"): 2, ("d",): 3}) == {"a": {"b": 1, "c": 2}, "d": 3}
    with pytest.raises(SweepConfigError, match="a.b"):
        nest({("a",): 1, ("a", "b"): 2})


# -- Hyperband -------------------------------------------------------------------------------------
def test_hyperband_rungs():
    assert Hyperband(min_iter=1, eta=3).rungs()[:5] == [1, 3, 9, 27, 81]
    assert Hyperband(min_iter=1, eta=3).rungs(limit=100) == [1, 3, 9, 27, 81]
    assert Hyperband(min_iter=1, eta=3, max_iter=27).rungs() == [1, 3, 9, 27]
    assert Hyperband(min_iter=2, eta=2, max_iter=20).rungs() == [2, 4, 8, 16]
    assert Hyperband(min_iter=1, eta=1.5, max_iter=10).rungs() == [1, 2, 3, 5, 8]
    assert Hyperband(min_iter=1, eta=1.0001).rungs(limit=50) == list(range(1, 51))
    spec = spec_of(
        {"a": {"value": 1}},
        metric={"name": "loss"},
        early_terminate={"type": "hyperband", "max_iter": 27, "s": 2, "eta": 3, "strict": True},
    )
    assert spec.early_terminate.rungs() == [3, 9] and spec.early_terminate.min_iter == 3
    assert spec.early_terminate.strict


def test_rung_for():
    rungs = Hyperband(min_iter=1).rungs()
    assert [rung_for(e, rungs) for e in (1, 2, 3, 4, 9)] == [1, None, 3, None, 9]


def test_should_stop_keeps_the_top_third():
    others = [1.0, 2.0, 3.0, 4.0, 5.0]  # n = 6, eta = 3: the best 2 go on
    assert not should_stop(0.5, others, goal="minimize", eta=3)
    assert not should_stop(1.5, others, goal="minimize", eta=3)
    assert should_stop(2.5, others, goal="minimize", eta=3)
    assert should_stop(1.5, others, goal="maximize", eta=3)
    assert not should_stop(4.5, others, goal="maximize", eta=3)
    assert not should_stop(2.0, [1.0, 2.0, 3.0, 4.0, 5.0], goal="minimize", eta=3)  # a tie is kept
    assert not should_stop(5.0, [1.0, 9.0], goal="minimize", eta=2)  # n = 3, eta = 2: the best 2 go on
    assert should_stop(5.0, [1.0, 2.0], goal="minimize", eta=2)
    assert should_stop(3.0, [1.0, 2.0, 4.0], goal="minimize", eta=3)  # n = 4: the best 2 go on
    assert not should_stop(2.0, [1.0, 3.0, 4.0], goal="minimize", eta=3)


def test_should_stop_needs_evidence():
    # Fewer than eta other trials at the rung: the first eta trials of a sweep always pass it.
    assert not should_stop(100.0, [], goal="minimize", eta=3)
    assert not should_stop(100.0, [1.0, 2.0], goal="minimize", eta=3)
    assert should_stop(100.0, [1.0, 2.0, 3.0], goal="minimize", eta=3)
    assert not should_stop(math.nan, [1.0, 2.0], goal="minimize", eta=3)
    assert should_stop(100.0, [1.0, 2.0], goal="minimize", eta=1.5)


def test_should_stop_with_nan():
    assert should_stop(math.nan, [1.0, 2.0, 3.0], goal="maximize", eta=3)
    assert not should_stop(50.0, [math.nan, math.nan, math.nan], goal="minimize", eta=3)  # NaN others: worst
    assert should_stop(50.0, [math.nan, 1.0, 2.0], goal="minimize", eta=3)
    assert not should_stop(50.0, [math.nan, 1.0, math.nan], goal="minimize", eta=3)
    with pytest.raises(SweepConfigError, match="goal"):
        should_stop(1.0, [1.0, 2.0, 3.0], goal="min", eta=3)


# -- bad input: each names the field ---------------------------------------------------------------
GOOD = {"method": "random", "parameters": {"lr": {"min": 0.001, "max": 0.1}}}
HB = {"type": "hyperband", "min_iter": 1}


def bad(config: dict, field: str, *words: str) -> None:
    with pytest.raises(SweepConfigError) as info:
        parse_sweep_config(config)
    message = str(info.value)
    assert message.startswith(f"{field}:"), message
    assert info.value.field == field
    for word in words:
        assert word in message, message


def with_param(space) -> dict:
    return {**GOOD, "parameters": {"lr": space}}


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({**GOOD, "method": "hyperopt"}, "method", ("'hyperopt'", *METHODS)),
        ({**GOOD, "method": "rnadom"}, "method", ("Did you mean 'random'",)),
        ({"parameters": GOOD["parameters"]}, "method", ("missing",)),
        ({**GOOD, "method": "bayes"}, "metric", ("bayes", "name:")),
        ({**GOOD, "early_terminate": HB}, "metric", ("hyperband",)),
        ({**GOOD, "metric": {"name": "loss", "goal": "lower"}}, "metric.goal", ("'lower'", "minimize")),
        ({**GOOD, "metric": {"goal": "minimize"}}, "metric.name", ()),
        ({**GOOD, "metric": {"name": "l", "gaol": "minimize"}}, "metric.gaol", ("Did you mean 'goal'",)),
        ({**GOOD, "paramters": {}}, "paramters", ("Did you mean 'parameters'",)),
        ({"method": "grid"}, "parameters", ("missing",)),
        ({**GOOD, "parameters": [{"lr": 1}]}, "parameters", ("expected a dict",)),
        ({**GOOD, "parameters": {}}, "parameters", ("empty",)),
        ({**GOOD, "parameters": {"lr": 0.1}}, "parameters.lr", ("{value: 0.1}",)),
        (
            with_param({"distribution": "log_uniform_value", "min": 1, "max": 2}),
            "parameters.lr.distribution",
            ("Did you mean 'log_uniform_values'",),
        ),
        (with_param({"distribution": "gaussian"}), "parameters.lr.distribution", ("normal", "beta")),
        (with_param({"min": 0.1, "max": 0.01}), "parameters.lr.min", ("smaller than max",)),
        (with_param({"min": 1, "max": 1}), "parameters.lr.min", ()),
        (
            with_param({"distribution": "log_uniform_values", "min": 0, "max": 1}),
            "parameters.lr.min",
            ("above 0",),
        ),
        (
            with_param({"distribution": "inv_log_uniform_values", "min": -1, "max": 1}),
            "parameters.lr.min",
            (),
        ),
        (with_param({"distribution": "q_log_uniform_values", "min": 0, "max": 8}), "parameters.lr.min", ()),
        (with_param({"values": []}), "parameters.lr.values", ("empty",)),
        (with_param({"values": "adam"}), "parameters.lr.values", ("a list",)),
        (
            with_param({"distribution": "categorical", "values": {"a": 1}}),
            "parameters.lr.values",
            ("a list",),
        ),
        (
            with_param({"values": [1, 2], "probabilities": [1.0]}),
            "parameters.lr.probabilities",
            ("2 numbers",),
        ),
        (
            with_param({"values": [1, 2], "probabilities": [0.5, 0.6]}),
            "parameters.lr.probabilities",
            ("sum to 1.1",),
        ),
        (
            with_param({"values": [1, 2], "probabilities": [1.5, -0.5]}),
            "parameters.lr.probabilities",
            ("negative",),
        ),
        (with_param({}), "parameters.lr", ("value", "values", "distribution")),
        (with_param({"q": 2}), "parameters.lr", ()),
        (with_param({"values": [1], "default": 1}), "parameters.lr.default", ("does not take 'default'",)),
        (with_param({"min": 0.0, "max": 1.0, "q": 0.1}), "parameters.lr.q", ("q_uniform",)),
        (with_param({"value": 1, "values": [1]}), "parameters.lr.values", ("constant",)),
        (with_param({"distribution": "uniform", "max": 1.0}), "parameters.lr.min", ("missing",)),
        (with_param({"min": "1e-4", "max": 0.1}), "parameters.lr.min", ("YAML",)),
        (with_param({"distribution": "int_uniform", "min": 0.5, "max": 3}), "parameters.lr.min", ("ints",)),
        (with_param({"distribution": "normal", "sigma": 0}), "parameters.lr.sigma", ("above 0",)),
        (with_param({"mu": 0, "sigma": -1}), "parameters.lr.sigma", ()),
        (with_param({"distribution": "beta", "a": 0}), "parameters.lr.a", ()),
        (with_param({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}), "parameters.lr.q", ()),
        (
            with_param({"distribution": "q_uniform", "min": 0.1, "max": 0.2, "q": 1}),
            "parameters.lr.q",
            ("no multiple",),
        ),
        (with_param({"parameters": {}}), "parameters.lr.parameters", ("empty",)),
        (with_param({"parameters": {"x": {"value": 1}}, "value": 2}), "parameters.lr.value", ("nested",)),
        (with_param({"parameters": {"x": {"mu": 0, "sigmaa": 1}}}), "parameters.lr.parameters.x.sigmaa", ()),
        (
            {**GOOD, "parameters": {"a.b": {"value": 1}, "a": {"parameters": {"b": {"value": 2}}}}},
            "parameters.a.b",
            ("share",),
        ),
        ({**GOOD, "method": "grid"}, "parameters.lr", ("continuous", "random")),
        (
            {**GOOD, "method": "grid", "parameters": {"lr": {"values": [1, 2], "probabilities": [0.5, 0.5]}}},
            "parameters.lr.probabilities",
            ("grid",),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {**HB, "type": "asha"}},
            "early_terminate.type",
            ("hyperband",),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {**HB, "eta": 1}},
            "early_terminate.eta",
            ("above 1",),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {**HB, "min_iter": 0}},
            "early_terminate.min_iter",
            ("at least 1",),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {**HB, "max_iter": 0}},
            "early_terminate.max_iter",
            (),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {"type": "hyperband"}},
            "early_terminate",
            ("min_iter",),
        ),
        (
            {
                **GOOD,
                "metric": {"name": "l"},
                "early_terminate": {"type": "hyperband", "max_iter": 2, "s": 1},
            },
            "early_terminate.max_iter",
            ("no rung",),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {**HB, "s": 2}},
            "early_terminate.s",
            ("max_iter",),
        ),
        (
            {**GOOD, "metric": {"name": "l"}, "early_terminate": {**HB, "min_iters": 2}},
            "early_terminate.min_iters",
            ("Did you mean 'min_iter'",),
        ),
        ({**GOOD, "run_cap": 0}, "run_cap", ("positive",)),
        ({**GOOD, "name": 3}, "name", ()),
        ({**GOOD, "parameters": {"lr": {"value": object()}}}, "parameters.lr.value", ("JSON",)),
    ],
)
def test_bad_config_names_the_field(config, field, words):
    bad(config, field, *words)


def test_bad_paths(tmp_path):
    for path in (tmp_path / "missing.yaml", str(tmp_path / "missing.json")):
        with pytest.raises(SweepConfigError, match="config: .*does not exist"):
            parse_sweep_config(path)
    with pytest.raises(SweepConfigError, match=r"\.yaml, \.yml or \.json"):
        parse_sweep_config(tmp_path / "sweep.toml")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(SweepConfigError, match="not valid JSON"):
        parse_sweep_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SweepConfigError, match="expected a dict"):
        parse_sweep_config(listing)


def test_sweep_config_error_is_an_nbtrack_and_value_error():
    with pytest.raises(SweepConfigError) as info:
        parse_sweep_config({"method": "grid"})
    assert isinstance(info.value, NbtrackError) and isinstance(info.value, ValueError)
    with pytest.raises(SweepConfigError, match="metric.goal"):
        Metric("loss", "min")
    with pytest.raises(SweepConfigError, match="early_terminate.eta"):
        Hyperband(min_iter=1, eta=0.5)
