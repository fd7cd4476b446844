// Parallel coordinates for the compare widget: one vertical axis per config key (the last usually the metric),
// one polyline per run, coloured by `color_value`. Python sends `axes` and `lines`; this module scales, draws
// and brushes. Dragging on an axis sets that axis's brush (`brushes`, two-way, in data units or category
// names); a click clears it. Labels go in as textContent: config keys, categories and run names are data.

/** @typedef {{key: string, label: string, kind: "number"|"category", log: boolean, categories: string[]|null}} Axis */
/** @typedef {{id: string, name: string, values: (number|string|null)[], color_value: number|null}} Line */
/** @typedef {((value: any) => number|null) & {kind: string, log: boolean, domain: number[], min: number, max: number, categories: string[]|null}} Scale */

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 900;
const HEIGHT = 320;
const MARGIN = { top: 58, right: 110, bottom: 14, left: 62 };
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137],
  [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
const NON_FINITE = new Map([["NaN", NaN], ["Infinity", Infinity], ["-Infinity", -Infinity]]);
const EPS = 1e-9;
let instances = 0;

/** @param {any} v */
const present = (v) => v !== null && v !== undefined;
const clamp01 = (t) => Math.min(Math.max(t, 0), 1);

/** A number axis value as a number (NaN when missing or not a number). @param {any} v */
export function toNumber(v) {
  if (typeof v === "number") return v;
  if (typeof v !== "string" || v.trim() === "") return NaN;
  return NON_FINITE.has(v) ? NON_FINITE.get(v) : Number(v);
}

/** Widen an empty range [v, v] so that v sits in the middle. */
export function padRange(lo, hi) {
  if (hi > lo) return [lo, hi];
  const d = lo === 0 ? 1 : Math.abs(lo) * 0.1;
  return [lo - d, hi + d];
}

/** Ticks at 1, 2 or 5 × 10^k steps, about `count` intervals, the first <= lo and the last >= hi. */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  [lo, hi] = padRange(Math.min(lo, hi), Math.max(lo, hi));
  let exp = Math.floor(Math.log10((hi - lo) / Math.max(count, 1)));
  const norm = (hi - lo) / Math.max(count, 1) / 10 ** exp;
  let mult = norm <= 1 + EPS ? 1 : norm <= 2 + EPS ? 2 : norm <= 5 + EPS ? 5 : 10;
  if (mult === 10) [mult, exp] = [1, exp + 1];
  // k × step as k·mult / 10^-exp, so that 3 × 0.2 is 0.6 and not 0.6000000000000001
  const at = (k) => (exp >= 0 ? k * mult * 10 ** exp : (k * mult) / 10 ** -exp);
  const step = at(1);
  const first = Math.floor(lo / step + EPS);
  const last = Math.ceil(hi / step - EPS);
  const ticks = [];
  for (let k = first; k <= last && ticks.length < 1000; k++) ticks.push(at(k) + 0); // + 0: no -0
  return ticks;
}

/** Natural order for category names: "2" < "10", "adam" < "SGD". */
const naturalCompare = (a, b) => a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });

/**
 * A scale value → position in [0, 1] (0 at the bottom), or null for a missing or unplaceable value. Number
 * axes span the min..max present (log10 when axis.log and all values > 0); categories are spread evenly,
 * the first at the top. The returned function carries its domain for ticks and brushes.
 * @param {Axis} axis @param {any[]} values @returns {Scale}
 */
export function axisScale(axis, values) {
  if (axis.kind === "category") {
    const categories = axis.categories
      ? axis.categories.map(String)
      : [...new Set(values.filter(present).map(String))].sort(naturalCompare);
    const index = new Map(categories.map((c, i) => [c, i]));
    const n = categories.length;
    const scale = (v) => {
      const i = present(v) ? index.get(String(v)) : undefined;
      return i === undefined ? null : n === 1 ? 0.5 : 1 - i / (n - 1);
    };
    return Object.assign(scale, { kind: "category", log: false, domain: [0, 1], min: 0, max: 1, categories });
  }
  const numbers = values.map(toNumber).filter(Number.isFinite);
  const log = Boolean(axis.log) && numbers.length > 0 && numbers.every((v) => v > 0);
  const min = numbers.length ? numbers.reduce((a, b) => Math.min(a, b)) : 0;
  const max = numbers.length ? numbers.reduce((a, b) => Math.max(a, b)) : 1;
  const f = log ? Math.log10 : (v) => v;
  const [lo, hi] = padRange(f(min), f(max));
  const scale = (v) => {
    const x = toNumber(v);
    return !Number.isFinite(x) || (log && x <= 0) ? null : (f(x) - lo) / (hi - lo);
  };
  return Object.assign(scale, { kind: "number", log, domain: [lo, hi], min, max, categories: null });
}

/** Tick marks of a scale: [{value, t, label}]; decades (else 1-2-5 steps) on log axes. @param {Scale} scale */
export function axisTicks(scale, count = 5) {
  if (scale.kind === "category") {
    const every = Math.ceil(scale.categories.length / 24);
    return scale.categories.filter((_, i) => i % every === 0).map((c) => ({ value: c, t: scale(c), label: c }));
  }
  const [lo, hi] = scale.domain;
  const inside = (v) => scale(v) !== null && scale(v) >= -EPS && scale(v) <= 1 + EPS;
  let values = [];
  for (const mults of scale.log ? [[1], [1, 2, 5]] : []) {
    const decades = Array.from({ length: Math.ceil(hi) - Math.floor(lo) + 1 }, (_, i) => Math.floor(lo) + i);
    if (values.length < 2) values = decades.flatMap((k) => mults.map((m) => (k < 0 ? m / 10 ** -k : m * 10 ** k))).filter(inside);
  }
  if (values.length < 2) values = (scale.log ? niceTicks(10 ** lo, 10 ** hi, count) : niceTicks(lo, hi, count)).filter(inside);
  return values.map((v) => ({ value: v, t: scale(v), label: formatTick(v) }));
}

/** A short tick or legend label: 4 significant digits, exponent form when very large or small. */
export function formatTick(v) {
  if (v === 0) return "0";
  const abs = Math.abs(v);
  if (abs >= 1e5 || abs < 1e-3) return v.toExponential(2).replace(/\.?0+e/, "e");
  return String(Number(v.toPrecision(4)));
}

/**
 * Whether a line passes every brush of the present axes: number brushes are [lo, hi] (inclusive), category
 * brushes a list of names; a line without a value on a brushed axis fails it.
 * @param {Line} line @param {Axis[]} axes @param {Record<string, any>|null} brushes
 */
export function passesBrushes(line, axes, brushes) {
  if (!brushes) return true;
  for (let i = 0; i < axes.length; i++) {
    const brush = brushes[axes[i].key];
    if (!present(brush)) continue;
    const v = line.values ? line.values[i] : undefined;
    if (!present(v)) return false;
    if (axes[i].kind === "category") {
      if (!brush.map(String).includes(String(v))) return false;
    } else {
      const x = toNumber(v);
      if (!Number.isFinite(x) || x < Math.min(brush[0], brush[1]) || x > Math.max(brush[0], brush[1])) return false;
    }
  }
  return true;
}

/**
 * The brush for a vertical drag from y0 to y1 (pixels from the axis top; `height` the axis length):
 * [lo, hi] in data units, or the categories covered; null (clear the brush) for a drag under 3 px or one
 * that covers no category. A drag past an end of the axis takes in the extreme value exactly.
 * @param {Axis} axis @param {Scale} scale @param {number} y0 @param {number} y1 @param {number} height
 */
export function brushFromPixels(axis, scale, y0, y1, height) {
  if (!(Math.abs(y1 - y0) >= 3) || !(height > 0)) return null;
  const tHi = clamp01(1 - Math.min(y0, y1) / height);
  const tLo = clamp01(1 - Math.max(y0, y1) / height);
  if (axis.kind === "category") {
    const picked = scale.categories.filter((c) => scale(c) >= tLo - EPS && scale(c) <= tHi + EPS);
    return picked.length ? picked : null;
  }
  const [lo, hi] = scale.domain;
  const invert = (t) => (scale.log ? 10 ** (lo + t * (hi - lo)) : lo + t * (hi - lo));
  return [tLo <= 0 ? Math.min(invert(0), scale.min) : invert(tLo), tHi >= 1 ? Math.max(invert(1), scale.max) : invert(tHi)];
}

/** Where to draw a brush: [tLo, tHi] in [0, 1], or null. Category brushes reach half a step around their names. */
export function brushExtent(scale, brush) {
  if (!present(brush)) return null;
  if (scale.kind === "category") {
    const ts = brush.map((c) => scale(c)).filter(present);
    if (!ts.length) return null;
    const half = scale.categories.length > 1 ? 0.5 / (scale.categories.length - 1) : 0.5;
    return [clamp01(Math.min(...ts) - half), clamp01(Math.max(...ts) + half)];
  }
  const ts = brush.map((v) => scale(v) ?? 0);
  return [clamp01(Math.min(...ts)), clamp01(Math.max(...ts))];
}

/** A viridis-like colour for t in [0, 1] (clamped) as "#rrggbb". @param {number} t */
export function viridis(t) {
  const pos = (Number.isFinite(t) ? clamp01(t) : 0) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(pos), VIRIDIS.length - 2);
  const f = pos - i;
  const channel = (k) => Math.round(VIRIDIS[i][k] + (VIRIDIS[i + 1][k] - VIRIDIS[i][k]) * f).toString(16).padStart(2, "0");
  return `#${channel(0)}${channel(1)}${channel(2)}`;
}

/** The colour of a line: viridis over [min, max] of the present colour values; grey without one. */
export function lineColor(value, range) {
  if (!present(value) || !range || !Number.isFinite(toNumber(value))) return "#999";
  const [lo, hi] = range;
  return viridis(hi > lo ? (toNumber(value) - lo) / (hi - lo) : 0.5);
}

/** [min, max] of the lines' finite colour values, or null. @param {Line[]} lines */
export function colorRange(lines) {
  const values = lines.map((l) => toNumber(l.color_value)).filter(Number.isFinite);
  return values.length ? [values.reduce((a, b) => Math.min(a, b)), values.reduce((a, b) => Math.max(a, b))] : null;
}

/**
 * "M x y L x y ..." through the points, starting again with "M" after a missing (null) point; a point
 * alone between gaps gets a zero-length segment ("h 0"), drawn as a dot by round line caps.
 * @param {([number, number]|null)[]} points
 */
export function linePath(points) {
  const r = (v) => Math.round(v * 10) / 10;
  const parts = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    if (!p) continue;
    const start = i === 0 || !points[i - 1];
    parts.push(`${start ? "M" : "L"} ${r(p[0])} ${r(p[1])}`);
    if (start && !points[i + 1]) parts.push("h 0");
  }
  return parts.join(" ");
}

/** @param {string} tag @param {Record<string, any>} [attrs] @param {string} [text] */
function node(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text; // text, never HTML
  return n;
}

/** A text node cut to `limit` characters, the full text in a <title>. */
function label(text, limit, attrs) {
  const full = String(text);
  const t = node("text", attrs, full.length > limit ? `${full.slice(0, limit - 1)}…` : full);
  if (full.length > limit) t.appendChild(node("title", {}, full));
  return t;
}

function render({ model, el }) {
  el.classList.add("nbtrack-parallel");
  const gradientId = `nbtrack-pc-gradient-${++instances}-${Math.random().toString(36).slice(2, 8)}`;
  const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: "100%", "font-family": "sans-serif" });
  svg.style.cssText = "display:block;height:auto;background:white;user-select:none;touch-action:none";
  el.appendChild(svg);
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const yOf = (t) => MARGIN.top + (1 - t) * plotH;
  const small = { "font-size": 10, fill: "#333" };
  /** What the last draw laid out, for the brush drag: [{axis, scale, rect}] per axis. */
  let laid = [];
  /** @type {{index: number, y0: number, y1: number}|null} */
  let drag = null;

  const draw = () => {
    svg.replaceChildren();
    laid = [];
    /** @type {Axis[]} */
    const axes = model.get("axes") || [];
    /** @type {Line[]} */
    const lines = model.get("lines") || [];
    const brushes = model.get("brushes") || {};
    const chosen = new Set(model.get("selected") || []);
    if (!axes.length || !lines.length) {
      svg.appendChild(node("text", { ...small, x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle" }, "No runs to compare yet."));
      return;
    }
    const scales = axes.map((axis, i) => axisScale(axis, lines.map((l) => (l.values || [])[i])));
    const span = WIDTH - MARGIN.left - MARGIN.right;
    const xs = axes.map((_, i) => MARGIN.left + (axes.length === 1 ? span / 2 : (i * span) / (axes.length - 1)));
    const range = colorRange(lines);

    const style = { fill: "none", "stroke-linecap": "round", "stroke-linejoin": "round" };
    const failing = node("g", { ...style, stroke: "#ddd", "stroke-width": 1 });
    const passing = node("g", { ...style, "stroke-width": 1.3, "stroke-opacity": 0.8 });
    const onTop = node("g", { ...style, "stroke-width": 3 });
    for (const line of lines) {
      const points = scales.map((s, i) => {
        const t = s((line.values || [])[i]);
        return t === null ? null : [xs[i], yOf(t)];
      });
      const ok = passesBrushes(line, axes, brushes);
      const path = node("path", { d: linePath(points) });
      if (ok || chosen.has(line.id)) path.setAttribute("stroke", ok ? lineColor(line.color_value, range) : "#bbb");
      path.appendChild(node("title", {}, line.name || line.id));
      (chosen.has(line.id) ? onTop : ok ? passing : failing).appendChild(path);
    }
    svg.append(failing, passing, onTop);

    const gap = axes.length > 1 ? span / (axes.length - 1) : span;
    const stagger = gap < 150; // long labels alternate between two rows
    const limit = Math.max(8, Math.min(24, Math.floor(((stagger ? 2 : 1) * gap) / 6.5)));
    axes.forEach((axis, i) => {
      const x = xs[i];
      const g = node("g", { class: "nbtrack-axis" });
      g.appendChild(node("line", { x1: x, x2: x, y1: MARGIN.top, y2: MARGIN.top + plotH, stroke: "#444" }));
      for (const tick of axisTicks(scales[i])) {
        const y = yOf(tick.t);
        g.appendChild(node("line", { x1: x - 4, x2: x, y1: y, y2: y, stroke: "#444" }));
        const text = label(tick.label, 12, { ...small, x: x - 6, y: y + 3, "text-anchor": "end" });
        text.style.cssText = "paint-order:stroke;stroke:white;stroke-width:3px;stroke-linejoin:round";
        g.appendChild(text);
      }
      g.appendChild(label(axis.label || axis.key, limit, { x, y: MARGIN.top - (stagger && i % 2 ? 26 : 10),
        "text-anchor": "middle", "font-size": 11, "font-weight": 600, fill: "#222" }));
      const extent = brushExtent(scales[i], brushes[axis.key]);
      const rect = node("rect", { x: x - 8, width: 16, fill: "#1f77b4", "fill-opacity": 0.2, stroke: "#1f77b4",
        "pointer-events": "none", y: extent ? yOf(extent[1]) : 0, height: extent ? yOf(extent[0]) - yOf(extent[1]) : 0 });
      rect.style.display = extent ? "" : "none";
      const hit = node("rect", { x: x - 12, width: 24, y: MARGIN.top - 4, height: plotH + 8, fill: "transparent", "data-axis": i });
      hit.style.cursor = "crosshair";
      hit.appendChild(node("title", {}, `${axis.label || axis.key}: drag to filter, click to clear`));
      g.append(rect, hit);
      svg.appendChild(g);
      laid.push({ axis, scale: scales[i], rect });
    });
    if (range) drawLegend(range);
  };

  const drawLegend = ([lo, hi]) => {
    const x = WIDTH - 42;
    const cy = MARGIN.top + plotH / 2;
    const gradient = node("linearGradient", { id: gradientId, x1: 0, y1: 1, x2: 0, y2: 0 });
    for (let k = 0; k <= 10; k++) gradient.appendChild(node("stop", { offset: k / 10, "stop-color": viridis(k / 10) }));
    svg.appendChild(node("defs")).appendChild(gradient);
    svg.appendChild(node("rect", { x, y: MARGIN.top, width: 12, height: plotH, fill: `url(#${gradientId})`, stroke: "#999" }));
    svg.appendChild(node("text", { ...small, x: x - 4, y: MARGIN.top + 8, "text-anchor": "end" }, formatTick(hi)));
    svg.appendChild(node("text", { ...small, x: x - 4, y: MARGIN.top + plotH, "text-anchor": "end" }, formatTick(lo)));
    svg.appendChild(label(model.get("color_label") || "colour", 28,
      { x: x + 26, y: cy, "text-anchor": "middle", "font-size": 11, fill: "#222", transform: `rotate(-90 ${x + 26} ${cy})` }));
  };

  // The brush drag: pointer events on the svg, started on an axis's hit area.
  const toSvgY = (e) => {
    const ctm = svg.getScreenCTM(); // viewBox units, whatever size the svg is shown at
    const y = ctm ? new DOMPoint(e.clientX, e.clientY).matrixTransform(ctm.inverse()).y : MARGIN.top;
    return Math.min(Math.max(y, MARGIN.top), MARGIN.top + plotH);
  };
  const onDown = (e) => {
    const index = e.target instanceof Element ? e.target.getAttribute("data-axis") : null;
    if (index === null || !laid[Number(index)]) return;
    e.preventDefault();
    const y = toSvgY(e);
    drag = { index: Number(index), y0: y, y1: y };
    svg.setPointerCapture(e.pointerId);
  };
  const onMove = (e) => {
    if (!drag) return;
    drag.y1 = toSvgY(e);
    if (Math.abs(drag.y1 - drag.y0) < 3) return;
    const { rect } = laid[drag.index];
    rect.style.display = "";
    rect.setAttribute("y", String(Math.min(drag.y0, drag.y1)));
    rect.setAttribute("height", String(Math.abs(drag.y1 - drag.y0)));
  };
  const onUp = () => {
    if (!drag) return;
    const { axis, scale } = laid[drag.index];
    const brush = brushFromPixels(axis, scale, drag.y0 - MARGIN.top, drag.y1 - MARGIN.top, plotH);
    drag = null;
    const before = model.get("brushes") || {};
    const next = { ...before };
    if (brush === null) delete next[axis.key];
    else next[axis.key] = brush;
    if (JSON.stringify(next) === JSON.stringify(before)) return draw(); // no change event comes: undo the drag's rect
    model.set("brushes", next); // change:brushes redraws
    model.save_changes();
  };
  const onCancel = () => {
    drag = null;
    draw();
  };
  const pointer = [["pointerdown", onDown], ["pointermove", onMove], ["pointerup", onUp], ["pointercancel", onCancel]];
  for (const [type, handler] of pointer) svg.addEventListener(type, handler);

  const events = ["axes", "lines", "brushes", "selected", "color_label"].map((name) => `change:${name}`);
  draw();
  for (const event of events) model.on(event, draw);
  return () => {
    for (const event of events) model.off(event, draw);
    for (const [type, handler] of pointer) svg.removeEventListener(type, handler);
  };
}

export default { render };
