"""The Model pane's data: a Keras model as a graph of layers, laid out in Python (no pydot, no Graphviz).

`describe_model` reads a built Keras model (Sequential, functional, nested; subclassed models give the
layer table and the reason there is no graph). `layout` places the nodes in layers (longest path from the
inputs) ordered by barycentre sweeps to limit crossings. Both are plain data, stored with the run as
``model.json`` so a reopened run shows the same graph.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

NODE_WIDTH, NODE_HEIGHT = 190, 46
GAP_X, GAP_Y = 30, 34


@dataclass
class LayerNode:
    id: str
    name: str
    cls: str
    output_shape: str
    params: int
    trainable: int
    x: float = 0.0
    y: float = 0.0
    children: ModelGraph | None = None  # a nested model, shown collapsed to this node


@dataclass
class ModelGraph:
    name: str
    cls: str
    nodes: list[LayerNode]
    edges: list[tuple[str, str]]
    traced: bool = True
    reason: str | None = None
    totals: dict[str, int] = field(default_factory=dict)
    compile: dict[str, Any] = field(default_factory=dict)
    width: float = 0.0
    height: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelGraph:
        nodes = [
            LayerNode(**{**n, "children": cls.from_dict(n["children"]) if n.get("children") else None})
            for n in data["nodes"]
        ]
        return cls(**{**data, "nodes": nodes, "edges": [tuple(e) for e in data["edges"]]})

    @classmethod
    def from_json(cls, text: str) -> ModelGraph:
        return cls.from_dict(json.loads(text))


def _shape(layer: Any) -> str:
    for getter in (
        lambda: (
            layer._inbound_nodes[0].output_tensors[0].shape
            if len(layer._inbound_nodes[0].output_tensors) == 1
            else [tuple(t.shape) for t in layer._inbound_nodes[0].output_tensors]
        ),
        lambda: layer.output.shape,
        lambda: layer.output_shape,
        lambda: layer.batch_shape,
    ):
        try:
            shape = getter()
        except Exception:
            continue
        if shape is not None:
            return str(tuple(shape) if not isinstance(shape, list) else shape).replace("None", "?")
    return "?"


def _count(weights: Any) -> int:
    total = 0
    for weight in weights:
        size = 1
        for dim in getattr(weight, "shape", ()):
            size *= int(dim)
        total += size
    return total


def _node(layer: Any, index: int) -> LayerNode:
    try:
        params = int(layer.count_params()) if getattr(layer, "built", True) else 0
    except Exception:
        params = 0
    trainable = _count(getattr(layer, "trainable_weights", []))
    children = describe_model(layer) if _is_model(layer) else None
    return LayerNode(
        f"n{index}", layer.name, type(layer).__name__, _shape(layer), params, trainable, children=children
    )


def _is_model(layer: Any) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "compile") and hasattr(layer, "fit")


def _layers_with_input(model: Any) -> list[Any]:
    """The model's layers, with Sequential's InputLayer (hidden from `model.layers`) in front."""
    layers = list(model.layers)
    private = getattr(model, "_layers", None)
    if private and type(private[0]).__name__ == "InputLayer" and private[0] not in layers:
        layers.insert(0, private[0])
    return layers


def describe_model(model: Any) -> ModelGraph:
    """The graph, totals and compile settings of a Keras model (built: called once, or with an Input)."""
    layers = _layers_with_input(model)
    nodes = [_node(layer, i) for i, layer in enumerate(layers)]
    by_object = {id(layer): node.id for layer, node in zip(layers, nodes)}
    edges: list[tuple[str, str]] = []
    traced = True
    for layer, node in zip(layers, nodes):
        inbound = getattr(layer, "_inbound_nodes", None) or []
        if not inbound and type(layer).__name__ != "InputLayer":
            traced = False
        for keras_node in inbound[:1]:  # the node that connects it in this model
            for tensor in getattr(keras_node, "input_tensors", []) or []:
                source = getattr(getattr(tensor, "_keras_history", None), "operation", None)
                if id(source) in by_object and (by_object[id(source)], node.id) not in edges:
                    edges.append((by_object[id(source)], node.id))
    reason = None
    if not traced or (len(nodes) > 1 and not edges):
        traced = False
        edges = []
        reason = (
            f"{type(model).__name__} is a subclassed model: its call() is Python code that Keras does not record "
            "as a graph, so only its layers are listed."
        )
    trainable = _count(getattr(model, "trainable_weights", []))
    total = _count(getattr(model, "weights", []))
    graph = ModelGraph(
        name=model.name,
        cls=type(model).__name__,
        nodes=nodes,
        edges=edges,
        traced=traced,
        reason=reason,
        totals={"total": total, "trainable": trainable, "non_trainable": total - trainable},
        compile=_compile_settings(model),
    )
    if traced:
        layout(graph)
    return graph


def _compile_settings(model: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        settings["optimizer"] = type(optimizer).__name__
    loss = getattr(model, "loss", None)
    if loss is not None:
        settings["loss"] = loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)
    try:
        names = [m.name for m in model.metrics if m.name not in ("loss", "compile_metrics")]
        compiled = getattr(model, "_compile_config", None)
        metrics = (compiled.config.get("metrics") if compiled is not None else None) or names
        if metrics:
            settings["metrics"] = [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in metrics]
    except Exception:
        pass
    return settings


def layout(graph: ModelGraph, sweeps: int = 4) -> ModelGraph:
    """Place nodes top to bottom: rank = longest path from a source; order in a rank by barycentres."""
    ids = [n.id for n in graph.nodes]
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for source, target in graph.edges:
        parents[target].append(source)
        children[source].append(target)
    indegree = {i: len(parents[i]) for i in ids}
    rank = dict.fromkeys(ids, 0)
    queue = [i for i in ids if indegree[i] == 0]
    seen = 0
    while queue:
        current = queue.pop()
        seen += 1
        for child in children[current]:
            rank[child] = max(rank[child], rank[current] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                queue.append(child)
    if seen < len(ids):  # a cycle cannot come from Keras; keep the given order if it ever does
        rank = {i: n for n, i in enumerate(ids)}
    rows: dict[int, list[str]] = defaultdict(list)
    for i in ids:  # model order as the starting order
        rows[rank[i]].append(i)
    position = {i: float(k) for row in rows.values() for k, i in enumerate(row)}
    for sweep in range(sweeps):
        downward = sweep % 2 == 0
        neighbours = parents if downward else children
        for r in sorted(rows, reverse=not downward):
            row = rows[r]

            def barycentre(i: str, near_map: dict[str, list[str]] = neighbours) -> float:
                near = near_map[i]
                return sum(position[n] for n in near) / len(near) if near else position[i]

            row.sort(key=barycentre)
            for k, i in enumerate(row):
                position[i] = float(k)
    widest = max((len(row) for row in rows.values()), default=1)
    nodes = {n.id: n for n in graph.nodes}
    for r, row in rows.items():
        offset = (widest - len(row)) * (NODE_WIDTH + GAP_X) / 2
        for k, i in enumerate(row):
            nodes[i].x = offset + k * (NODE_WIDTH + GAP_X)
            nodes[i].y = r * (NODE_HEIGHT + GAP_Y)
    graph.width = widest * (NODE_WIDTH + GAP_X) - GAP_X
    graph.height = (max(rows, default=0) + 1) * (NODE_HEIGHT + GAP_Y) - GAP_Y
    return graph
