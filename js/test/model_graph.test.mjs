import assert from "node:assert/strict";
import { test } from "node:test";

import { sortRows, zoomViewBox } from "../model_graph.js";

test("zoom keeps the pointer's point fixed", () => {
  const box = zoomViewBox([0, 0, 100, 50], 2, 50, 25);
  assert.deepEqual(box, [-50, -25, 200, 100]);
  const back = zoomViewBox(box, 0.5, 50, 25);
  assert.deepEqual(back, [0, 0, 100, 50]);
  const corner = zoomViewBox([0, 0, 100, 100], 0.5, 0, 0);
  assert.deepEqual(corner, [0, 0, 50, 50]);
});

test("zoom is bounded", () => {
  assert.equal(zoomViewBox([0, 0, 100, 100], 0.0001, 0, 0)[2], 40);
});

test("sortRows sorts numbers numerically and text without case, stably", () => {
  const rows = [
    { name: "dense_2", params: 1290 },
    { name: "Dense", params: 200960 },
    { name: "input", params: 0 },
    { name: "dense_1", params: 1290 },
  ];
  assert.deepEqual(sortRows(rows, "params").map((r) => r.name), ["input", "dense_2", "dense_1", "Dense"]);
  assert.deepEqual(sortRows(rows, "params", true).map((r) => r.name), ["Dense", "dense_2", "dense_1", "input"]);
  assert.deepEqual(sortRows(rows, "name").map((r) => r.name), ["Dense", "dense_1", "dense_2", "input"]);
  assert.deepEqual(rows[0].name, "dense_2"); // the input is not mutated
});
