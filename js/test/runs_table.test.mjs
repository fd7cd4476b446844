import assert from "node:assert/strict";
import { test } from "node:test";

import {
  formatCell, formatDuration, formatNumber, formatTime, headerState, isDimmed, nameColumn, nextSort, rowsSummary,
  selectAll, stateColor, toggleSelection,
} from "../runs_table.js";

test("formatNumber keeps exact integers and 4 significant digits otherwise", () => {
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(-0), "0");
  assert.equal(formatNumber(42), "42");
  assert.equal(formatNumber(-7), "-7");
  assert.equal(formatNumber(999999), "999999"); // no thousands separator
  assert.equal(formatNumber(0.912345), "0.9123");
  assert.equal(formatNumber(123.456), "123.5");
  assert.equal(formatNumber(12345.67), "12350");
  assert.equal(formatNumber(0.5), "0.5");
  assert.equal(formatNumber(0.00012346), "0.0001235");
  assert.equal(formatNumber(-2.5), "-2.5");
});

test("formatNumber uses exponent form for very large and small values", () => {
  assert.equal(formatNumber(0.000012345), "1.234e-5");
  assert.equal(formatNumber(3e-7), "3e-7");
  assert.equal(formatNumber(1000000), "1e+6");
  assert.equal(formatNumber(15000000), "1.5e+7");
  assert.equal(formatNumber(-1234567.8), "-1.235e+6");
  assert.equal(formatNumber(999999.7), "1e+6"); // rounds up past 1e6
});

test("formatNumber takes the non-finite strings JSON can't carry", () => {
  assert.equal(formatNumber("NaN"), "NaN");
  assert.equal(formatNumber(NaN), "NaN");
  assert.equal(formatNumber("Infinity"), "∞");
  assert.equal(formatNumber("-Infinity"), "-∞");
  assert.equal(formatNumber(-Infinity), "-∞");
  assert.equal(formatNumber(null), "");
  assert.equal(formatNumber("toString"), "toString"); // not mistaken for a non-finite name
});

test("formatDuration picks hours, minutes or seconds", () => {
  assert.equal(formatDuration(12.34), "12.3s");
  assert.equal(formatDuration(0), "0.0s");
  assert.equal(formatDuration(185), "3m 05s");
  assert.equal(formatDuration(59.97), "1m 00s");
  assert.equal(formatDuration(3725), "1h 02m");
  assert.equal(formatDuration(3599.7), "1h 00m");
  assert.equal(formatDuration(90000), "25h 00m");
  assert.equal(formatDuration(null), "");
  assert.equal(formatDuration(-1), "");
  assert.equal(formatDuration("NaN"), "");
});

test("formatTime shows local date and minutes", () => {
  const epoch = new Date(2024, 0, 5, 9, 7, 30).getTime() / 1000;
  assert.equal(formatTime(epoch), "2024-01-05 09:07");
  assert.equal(formatTime(null), "");
  assert.equal(formatTime("not a date"), "");
});

test("formatCell by kind", () => {
  assert.equal(formatCell(null, "number"), "");
  assert.equal(formatCell(undefined, "text"), "");
  assert.equal(formatCell(true, "text"), "true");
  assert.equal(formatCell(false, "number"), "false");
  assert.equal(formatCell(0.98765, "number"), "0.9877");
  assert.equal(formatCell("Infinity", "number"), "∞");
  assert.equal(formatCell("Infinity", "text"), "Infinity");
  assert.equal(formatCell(185, "duration"), "3m 05s");
  assert.equal(formatCell(["baseline", "lr-sweep"], "tags"), "baseline, lr-sweep");
  assert.equal(formatCell("finished", "state"), "finished");
  assert.equal(formatCell({ a: 1 }, "text"), '{"a":1}');
  assert.equal(formatCell("<b>bold</b>", "text"), "<b>bold</b>"); // text as it is; drawn with textContent
});

test("formatCell cuts long strings to 60 characters", () => {
  const long = "x".repeat(100);
  const cut = formatCell(long, "text");
  assert.equal(cut.length, 60);
  assert.ok(cut.endsWith("…"));
  assert.equal(formatCell(long, "text", Infinity), long);
  assert.equal(formatCell("y".repeat(60), "text"), "y".repeat(60));
});

test("nextSort starts by kind and flips on the same column", () => {
  assert.equal(nextSort("", "summary.val_accuracy", "number"), "-summary.val_accuracy");
  assert.equal(nextSort("-summary.val_accuracy", "summary.val_accuracy", "number"), "summary.val_accuracy");
  assert.equal(nextSort("summary.val_accuracy", "summary.val_accuracy", "number"), "-summary.val_accuracy");
  assert.equal(nextSort("-summary.val_accuracy", "name", "text"), "name");
  assert.equal(nextSort("name", "name", "text"), "-name");
  assert.equal(nextSort("name", "state", "state"), "state");
  assert.equal(nextSort("name", "created", "time"), "-created");
  assert.equal(nextSort(null, "duration", "duration"), "-duration");
});

test("stateColor maps states, unknown ones grey", () => {
  assert.equal(stateColor("running"), "#1f77b4");
  assert.equal(stateColor("finished"), "#2ca02c");
  assert.equal(stateColor("failed"), "#d62728");
  assert.equal(stateColor("crashed"), "#ff7f0e");
  assert.equal(stateColor("interrupted"), "#7f7f7f");
  assert.equal(stateColor("stopped-early"), "#9467bd");
  assert.equal(stateColor("Stopped_Early"), "#9467bd");
  assert.equal(stateColor("queued"), "#7f7f7f");
  assert.equal(stateColor(null), "#7f7f7f");
});

test("toggleSelection returns a new array", () => {
  const selected = ["a", "b"];
  assert.deepEqual(toggleSelection(selected, "c"), ["a", "b", "c"]);
  assert.deepEqual(toggleSelection(selected, "a"), ["b"]);
  assert.deepEqual(selected, ["a", "b"]);
  assert.notEqual(toggleSelection(selected, "c"), selected);
  assert.deepEqual(toggleSelection(null, "a"), ["a"]);
});

test("selectAll adds or removes only the visible rows", () => {
  assert.deepEqual(selectAll(["z", "b"], ["a", "b", "c"], true), ["z", "b", "a", "c"]);
  assert.deepEqual(selectAll(["z", "b"], ["a", "b", "c"], false), ["z"]);
  assert.deepEqual(selectAll(null, ["a", "a"], true), ["a"]);
  assert.deepEqual(selectAll([], [], true), []);
});

test("headerState", () => {
  assert.equal(headerState([], ["a", "b"]), "none");
  assert.equal(headerState(["a"], ["a", "b"]), "some");
  assert.equal(headerState(["b", "a", "z"], ["a", "b"]), "all");
  assert.equal(headerState(["z"], []), "none");
});

test("isDimmed only under a non-empty highlight", () => {
  assert.equal(isDimmed(null, "a"), false);
  assert.equal(isDimmed(undefined, "a"), false);
  assert.equal(isDimmed([], "a"), false);
  assert.equal(isDimmed(["a"], "a"), false);
  assert.equal(isDimmed(["a"], "b"), true);
});

test("rowsSummary says when rows were cut", () => {
  assert.equal(rowsSummary(50, 120), "Showing 50 of 120 runs");
  assert.equal(rowsSummary(120, 120), "120 runs");
  assert.equal(rowsSummary(1, 1), "1 run");
  assert.equal(rowsSummary(0, 0), "0 runs");
  assert.equal(rowsSummary(3, undefined), "3 runs");
});

test("nameColumn prefers the name key", () => {
  const columns = [
    { key: "state", label: "State", kind: "state" },
    { key: "id", label: "Id", kind: "text" },
    { key: "name", label: "Run", kind: "text" },
  ];
  assert.equal(nameColumn(columns), "name");
  assert.equal(nameColumn(columns.slice(0, 2)), "id");
  assert.equal(nameColumn(columns.slice(0, 1)), null);
});
