import assert from "node:assert/strict";
import { test } from "node:test";

import {
  axisScale, axisTicks, brushExtent, brushFromPixels, colorRange, lineColor, linePath, niceTicks, passesBrushes, viridis,
} from "../parallel_coords.js";

const close = (actual, expected, tol = 1e-9) => assert.ok(Math.abs(actual - expected) <= tol, `${actual} ≉ ${expected}`);
const num = (key, extra = {}) => ({ key, label: key, kind: "number", log: false, categories: null, ...extra });
const cat = (key, categories = null) => ({ key, label: key, kind: "category", log: false, categories });

test("niceTicks uses 1/2/5 steps and covers the range", () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 100, 5), [0, 20, 40, 60, 80, 100]);
  assert.deepEqual(niceTicks(0.912, 0.987, 5), [0.9, 0.92, 0.94, 0.96, 0.98, 1]);
  assert.deepEqual(niceTicks(3, 47, 5), [0, 10, 20, 30, 40, 50]);
  assert.deepEqual(niceTicks(-1, 1, 4), [-1, -0.5, 0, 0.5, 1]);
  assert.deepEqual(niceTicks(1, 0, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]); // reversed bounds
  assert.deepEqual(niceTicks(0.0001, 0.0005, 4), [0.0001, 0.0002, 0.0003, 0.0004, 0.0005]);
  const ticks = niceTicks(17, 123456, 5);
  assert.ok(ticks[0] <= 17 && ticks[ticks.length - 1] >= 123456);
  assert.ok(ticks.length <= 7);
});

test("niceTicks pads a degenerate range and refuses non-finite bounds", () => {
  const around5 = niceTicks(5, 5, 5);
  assert.ok(around5[0] < 5 && around5[around5.length - 1] > 5 && around5.includes(5));
  const around0 = niceTicks(0, 0, 5);
  assert.ok(around0[0] <= -1 && around0[around0.length - 1] >= 1);
  assert.deepEqual(niceTicks(NaN, 1, 5), []);
  assert.deepEqual(niceTicks(0, Infinity, 5), []);
});

test("linear axisScale spans the present min..max; missing values are null", () => {
  const scale = axisScale(num("lr"), [2, null, 4, "NaN", 6]);
  assert.equal(scale(2), 0);
  assert.equal(scale(4), 0.5);
  assert.equal(scale(6), 1);
  assert.equal(scale(null), null);
  assert.equal(scale(undefined), null);
  assert.equal(scale("NaN"), null);
  assert.equal(scale("Infinity"), null);
  assert.deepEqual([scale.min, scale.max], [2, 6]);
});

test("degenerate number axes put the single value in the middle", () => {
  const scale = axisScale(num("batch"), [32, 32, null]);
  close(scale(32), 0.5);
  assert.equal(axisScale(num("zero"), [0])(0), 0.5);
  assert.equal(axisScale(num("none"), [null, null])(1), 1); // no data: a [0, 1] domain, nothing to place
});

test("log axes place decades evenly, and fall back to linear with values <= 0", () => {
  const scale = axisScale(num("lr", { log: true }), [1e-4, 1e-3, 1e-2]);
  assert.ok(scale.log);
  close(scale(1e-4), 0);
  close(scale(1e-3), 0.5);
  close(scale(1e-2), 1);
  const ticks = axisTicks(scale).map((t) => t.value);
  assert.equal(ticks.length, 3);
  ticks.forEach((v, i) => close(v, [1e-4, 1e-3, 1e-2][i], 1e-15));
  const linear = axisScale(num("x", { log: true }), [0, 5, 10]);
  assert.equal(linear.log, false);
  assert.equal(linear(5), 0.5);
});

test("log axis within one decade gets 1-2-5 ticks", () => {
  const scale = axisScale(num("wd", { log: true }), [0.001, 0.009]);
  const values = axisTicks(scale).map((t) => t.value);
  assert.deepEqual(values.map((v) => Number(v.toPrecision(3))), [0.001, 0.002, 0.005]);
});

test("linear axis ticks stay inside the axis", () => {
  const scale = axisScale(num("acc"), [0.912, 0.987]);
  const ticks = axisTicks(scale);
  assert.deepEqual(ticks.map((t) => t.value), [0.92, 0.94, 0.96, 0.98]);
  assert.ok(ticks.every((t) => t.t >= 0 && t.t <= 1));
  assert.deepEqual(ticks.map((t) => t.label), ["0.92", "0.94", "0.96", "0.98"]);
});

test("category axes follow the given order, else the natural sort of seen values", () => {
  const given = axisScale(cat("opt", ["sgd", "adam", "rmsprop"]), ["adam", "sgd", "lion"]);
  assert.equal(given("sgd"), 1); // the first category at the top
  assert.equal(given("adam"), 0.5);
  assert.equal(given("rmsprop"), 0);
  assert.equal(given("lion"), null); // not among the categories: not placed
  assert.equal(given(null), null);
  const seen = axisScale(cat("width"), ["64", "128", null, "8", "64"]);
  assert.deepEqual(seen.categories, ["8", "64", "128"]);
  assert.equal(seen("8"), 1);
  assert.equal(seen(128), 0); // matched as text
  assert.equal(axisScale(cat("one"), ["x"])("x"), 0.5);
  assert.deepEqual(axisTicks(seen).map((t) => t.label), ["8", "64", "128"]);
});

test("passesBrushes: ranges, categories, missing values", () => {
  const axes = [num("lr"), cat("opt"), num("acc")];
  const line = { id: "r1", name: "r1", values: [0.01, "adam", 0.9], color_value: 0.9 };
  assert.equal(passesBrushes(line, axes, {}), true);
  assert.equal(passesBrushes(line, axes, null), true);
  assert.equal(passesBrushes(line, axes, { acc: [0.8, 0.95] }), true);
  assert.equal(passesBrushes(line, axes, { acc: [0.95, 0.8] }), true); // either order
  assert.equal(passesBrushes(line, axes, { acc: [0.9, 0.9] }), true); // inclusive
  assert.equal(passesBrushes(line, axes, { acc: [0.91, 1] }), false);
  assert.equal(passesBrushes(line, axes, { opt: ["adam", "sgd"] }), true);
  assert.equal(passesBrushes(line, axes, { opt: ["sgd"] }), false);
  assert.equal(passesBrushes(line, axes, { opt: ["adam"], acc: [0, 0.5] }), false); // all brushes must pass
  assert.equal(passesBrushes(line, axes, { gone: [0, 1] }), true); // a brush on an axis no longer shown
  const missing = { ...line, values: [null, "adam", 0.9] };
  assert.equal(passesBrushes(missing, axes, { lr: [0, 1] }), false);
  assert.equal(passesBrushes({ ...line, values: [0.01] }, axes, { opt: ["adam"] }), false);
  assert.equal(passesBrushes({ ...line, values: ["NaN", "adam", 0.9] }, axes, { lr: [-1e9, 1e9] }), false);
});

test("brushFromPixels inverts a drag into data units", () => {
  const axis = num("acc");
  const scale = axisScale(axis, [0, 10]);
  assert.deepEqual(brushFromPixels(axis, scale, 20, 60, 100), [4, 8]); // y grows downwards
  assert.deepEqual(brushFromPixels(axis, scale, 60, 20, 100), [4, 8]);
  assert.deepEqual(brushFromPixels(axis, scale, -30, 150, 100), [0, 10]); // clamped to the axis
  assert.equal(brushFromPixels(axis, scale, 50, 52, 100), null); // a click clears
  const brush = brushFromPixels(axis, scale, 20, 60, 100);
  assert.equal(passesBrushes({ values: [5] }, [axis], { acc: brush }), true);
  assert.equal(passesBrushes({ values: [9] }, [axis], { acc: brush }), false);
});

test("brushFromPixels on a log axis keeps the extremes inside", () => {
  const axis = num("lr", { log: true });
  const scale = axisScale(axis, [3e-5, 1e-3, 0.07]);
  const [lo, hi] = brushFromPixels(axis, scale, 0, 100, 100);
  assert.ok(lo <= 3e-5 && hi >= 0.07);
  const [a, b] = brushFromPixels(axis, scale, 0, 50, 100);
  close(Math.log10(a), (Math.log10(3e-5) + Math.log10(0.07)) / 2);
  assert.ok(b >= 0.07);
});

test("brushFromPixels on a category axis picks the covered names", () => {
  const axis = cat("opt", ["sgd", "adam", "rmsprop"]); // at y = 0, 50, 100 of 100
  const scale = axisScale(axis, []);
  assert.deepEqual(brushFromPixels(axis, scale, 40, 110, 100), ["adam", "rmsprop"]);
  assert.deepEqual(brushFromPixels(axis, scale, -5, 10, 100), ["sgd"]);
  assert.equal(brushFromPixels(axis, scale, 10, 40, 100), null); // covers no name: clears
  const brush = brushFromPixels(axis, scale, 40, 110, 100);
  assert.equal(passesBrushes({ values: ["adam"] }, [axis], { opt: brush }), true);
  assert.equal(passesBrushes({ values: ["sgd"] }, [axis], { opt: brush }), false);
});

test("brushExtent draws brushes back on the axis", () => {
  const scale = axisScale(num("x"), [0, 10]);
  assert.deepEqual(brushExtent(scale, [2, 6]), [0.2, 0.6]);
  assert.deepEqual(brushExtent(scale, [-5, 50]), [0, 1]);
  assert.equal(brushExtent(scale, null), null);
  const cats = axisScale(cat("opt", ["a", "b", "c"]), []);
  assert.deepEqual(brushExtent(cats, ["b"]), [0.25, 0.75]);
  assert.equal(brushExtent(cats, ["zzz"]), null);
});

test("viridis runs from dark purple to yellow and clamps", () => {
  assert.equal(viridis(0), "#440154");
  assert.equal(viridis(1), "#fde725");
  assert.equal(viridis(-3), "#440154");
  assert.equal(viridis(7), "#fde725");
  assert.equal(viridis(NaN), "#440154");
  assert.match(viridis(0.5), /^#[0-9a-f]{6}$/);
  assert.notEqual(viridis(0.4), viridis(0.6));
});

test("line colours are normalised over the present colour values", () => {
  const lines = [{ color_value: 0.5 }, { color_value: null }, { color_value: 0.9 }, { color_value: "NaN" }];
  const range = colorRange(lines);
  assert.deepEqual(range, [0.5, 0.9]);
  assert.equal(lineColor(0.5, range), viridis(0));
  assert.equal(lineColor(0.9, range), viridis(1));
  assert.equal(lineColor(null, range), "#999");
  assert.equal(lineColor(0.7, [0.7, 0.7]), viridis(0.5));
  assert.equal(colorRange([{ color_value: null }]), null);
});

test("linePath breaks around missing values", () => {
  assert.equal(linePath([[0, 10], [100, 20.04], [200, 5]]), "M 0 10 L 100 20 L 200 5");
  assert.equal(linePath([[0, 10], [100, 20], null, [300, 5], [400, 6]]), "M 0 10 L 100 20 M 300 5 L 400 6");
  assert.equal(linePath([[0, 10], null, [200, 5], null]), "M 0 10 h 0 M 200 5 h 0"); // lone points as dots
  assert.equal(linePath([null, null]), "");
  assert.equal(linePath([]), "");
});
