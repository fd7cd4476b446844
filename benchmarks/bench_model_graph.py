"""Time to describe and lay out a ResNet-like functional Keras model of ~500 layers (the Model pane's work at
the start of fit), and the size of what is sent to the view.

    python benchmarks/bench_model_graph.py [--blocks 125] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Results, machine_lines, median, quiet_environment, table  # noqa: E402

quiet_environment()


def resnet_like(blocks: int):  # type: ignore[no-untyped-def]
    import keras

    x = inputs = keras.Input((16,))
    x = keras.layers.Dense(16)(x)
    for i in range(blocks):
        y = keras.layers.Dense(16, name=f"b{i}_dense1")(x)
        y = keras.layers.Activation("relu", name=f"b{i}_relu")(y)
        y = keras.layers.Dense(16, name=f"b{i}_dense2")(y)
        x = keras.layers.Add(name=f"b{i}_add")([x, y])
    return keras.Model(inputs, x)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=125)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the measurements as JSON to this path")
    args = parser.parse_args(argv)
    from dataclasses import asdict

    from nbtrack.capture.model_graph import describe_model
    from nbtrack.render.model import graph_svg

    print("\n".join(machine_lines(["keras"])))
    model = resnet_like(args.blocks)
    describe, svg, size = [], [], 0
    for _ in range(args.repeats):
        started = time.perf_counter()
        graph = describe_model(model)
        describe.append(time.perf_counter() - started)
        started = time.perf_counter()
        graph_svg(graph)
        svg.append(time.perf_counter() - started)
        size = len(json.dumps(asdict(graph)))
    print()
    print(
        table(
            ["layers", "describe + layout (median)", "static SVG (median)", "graph JSON sent to the view"],
            [
                (
                    f"{len(graph.nodes)}",
                    f"{median(describe) * 1000:.0f} ms",
                    f"{median(svg) * 1000:.0f} ms",
                    f"{size / 1024:.0f} KB",
                ),
            ],
        )
    )
    results = Results("bench_model_graph")
    layers = f"{len(graph.nodes)} layers (ResNet-like, {args.blocks} blocks)"
    results.add("model_graph.describe", f"describe + lay out the model graph, {layers}", "s", describe)
    results.add("model_graph.svg", f"static SVG of the graph, {layers}", "s", svg)
    results.add("model_graph.json_bytes", "graph JSON sent to the view", "B", [size] * len(describe))
    results.write(args.json)


if __name__ == "__main__":
    main()
