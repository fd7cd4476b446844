import assert from "node:assert/strict";
import { test } from "node:test";

import { downloadName, formatSize } from "../files.js";

test("formatSize picks a unit", () => {
  assert.equal(formatSize(0), "0 B");
  assert.equal(formatSize(1023), "1023 B");
  assert.equal(formatSize(1536), "1.5 KB");
  assert.equal(formatSize(235146 * 4), "919 KB");
  assert.equal(formatSize(5 * 1024 ** 3), "5.0 GB");
  assert.equal(formatSize(-1), "?");
  assert.equal(formatSize(NaN), "?");
});

test("downloadName keeps the last path part", () => {
  assert.equal(downloadName("artifacts/models/model-best.keras"), "model-best.keras");
  assert.equal(downloadName("output.log"), "output.log");
  assert.equal(downloadName("dir/"), "download");
});
