"""The model graph: extraction from real Keras models and the layered layout (pure)."""

from __future__ import annotations

from nbtrack.capture.model_graph import NODE_HEIGHT, ModelGraph, describe_model, layout

from .keras_helpers import keras


def mlp():
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_sequential_mlp():
    graph = describe_model(mlp())
    assert [n.cls for n in graph.nodes] == ["InputLayer", "Dense", "Dense", "Dense"]
    assert [n.params for n in graph.nodes] == [0, 200_960, 32_896, 1_290]
    assert graph.totals == {"total": 235_146, "trainable": 235_146, "non_trainable": 0}
    assert graph.nodes[1].output_shape == "(?, 256)"
    assert graph.edges == [("n0", "n1"), ("n1", "n2"), ("n2", "n3")]
    assert graph.compile == {
        "optimizer": "Adam",
        "loss": "sparse_categorical_crossentropy",
        "metrics": ["accuracy"],
    }
    assert [n.y for n in graph.nodes] == sorted(n.y for n in graph.nodes) and len(
        {n.x for n in graph.nodes}
    ) == 1


def test_functional_branches_merge_and_nested_model():
    inputs = keras.Input((8,), name="x")
    a = keras.layers.Dense(4, name="a")(inputs)
    b = keras.layers.Dense(4, name="b")(inputs)
    merged = keras.layers.Add(name="add")([a, b])
    inner = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(3, name="i1"), keras.layers.Dense(2, name="i2")], name="inner"
    )
    normed = keras.layers.BatchNormalization(name="bn")(inner(merged))
    graph = describe_model(keras.Model(inputs, normed, name="branchy"))
    by_name = {n.name: n for n in graph.nodes}
    edge_names = {(graph.nodes[int(s[1:])].name, graph.nodes[int(t[1:])].name) for s, t in graph.edges}
    assert edge_names == {
        ("x", "a"),
        ("x", "b"),
        ("a", "add"),
        ("b", "add"),
        ("add", "inner"),
        ("inner", "bn"),
    }
    assert by_name["a"].y == by_name["b"].y and by_name["a"].x != by_name["b"].x  # side by side
    assert by_name["add"].y > by_name["a"].y
    nested = by_name["inner"].children
    assert nested is not None and [n.name for n in nested.nodes][-2:] == ["i1", "i2"]
    assert by_name["inner"].params == 15 + 8
    assert graph.totals["non_trainable"] == 4  # BatchNormalization's moving mean and variance
    again = ModelGraph.from_json(graph.to_json())
    assert again.edges == graph.edges and again.nodes[4].children.nodes[-1].name == "i2"


def test_subclassed_model_has_a_table_and_a_reason():
    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(4)
            self.second = keras.layers.Dense(2)

        def call(self, x):
            return self.second(self.first(x))

    model = Custom()
    model(keras.ops.zeros((1, 3)))
    graph = describe_model(model)
    assert not graph.traced and graph.edges == []
    assert "subclassed model" in graph.reason
    assert [n.cls for n in graph.nodes] == ["Dense", "Dense"] and graph.totals["total"] == 16 + 10


def resnet_like(blocks: int):
    x = inputs = keras.Input((16,))
    x = keras.layers.Dense(16)(x)
    for i in range(blocks):
        shortcut = x
        y = keras.layers.Dense(16, name=f"b{i}_dense1")(x)
        y = keras.layers.Activation("relu", name=f"b{i}_relu")(y)
        y = keras.layers.Dense(16, name=f"b{i}_dense2")(y)
        x = keras.layers.Add(name=f"b{i}_add")([shortcut, y])
    return keras.Model(inputs, x)


def test_five_hundred_layers_lay_out_without_overlaps():
    graph = describe_model(resnet_like(125))  # 2 + 4 * 125 = 502 layers
    assert len(graph.nodes) == 502 and len(graph.edges) == 1 + 125 * 5
    positions = {(n.x, n.y) for n in graph.nodes}
    assert len(positions) == len(graph.nodes)  # no two nodes on the same spot
    ys = {n.id: n.y for n in graph.nodes}
    assert all(ys[target] > ys[source] for source, target in graph.edges)  # edges point down
    assert graph.height >= 4 * 125 * NODE_HEIGHT  # one rank per layer of the chain


def test_layout_is_pure_and_keeps_given_order_without_edges():
    from nbtrack.capture.model_graph import LayerNode

    graph = ModelGraph("m", "Model", [LayerNode(f"n{i}", f"l{i}", "Dense", "?", 0, 0) for i in range(3)], [])
    layout(graph)
    assert [n.x for n in graph.nodes] == sorted(n.x for n in graph.nodes) and {n.y for n in graph.nodes} == {
        0.0
    }
