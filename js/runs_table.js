// The runs table of the compare widget and the runs browser: one row per run, columns chosen by Python, a
// checkbox per row for the selection (`selected`, two-way), sort by header click (`sort`, two-way; Python
// re-sorts and resends `rows`), rows outside the parallel-coordinates brush dimmed (`highlight`). Clicking a
// run's name sends {event: "open", id}. All cell text goes in as textContent: run names and config values are data.

/** @typedef {"state"|"text"|"number"|"time"|"duration"|"tags"} Kind */
/** @typedef {{key: string, label: string, kind: Kind}} Column */
/** @typedef {{id: string, color: string|null, cells: Record<string, any>}} Row */

const STATE_COLORS = new Map([
  ["running", "#1f77b4"],
  ["finished", "#2ca02c"],
  ["failed", "#d62728"],
  ["crashed", "#ff7f0e"],
  ["interrupted", "#7f7f7f"],
  ["stopped-early", "#9467bd"],
]);
const NON_FINITE = new Map([["NaN", NaN], ["Infinity", Infinity], ["-Infinity", -Infinity]]);
const DESCENDING_FIRST = new Set(["number", "time", "duration"]);
const RIGHT_ALIGNED = new Set(["number", "time", "duration"]);
const CELL_LIMIT = 60;

/** The badge colour of a run state; unknown states are grey. @param {any} state */
export function stateColor(state) {
  return STATE_COLORS.get(String(state).toLowerCase().replace("_", "-")) || "#7f7f7f";
}

/** @param {number} n */
const pad2 = (n) => String(n).padStart(2, "0");

/** Exponent form with at most 4 significant digits and no trailing zeros: 1.5e+7, 1.234e-5. @param {number} v */
const exponent = (v) => v.toExponential(3).replace(/\.?0+e/, "e");

/**
 * 4 significant digits; exact integers below 1e6 as they are (no thousands separators); very large or
 * small values in exponent form. Also takes the strings "NaN", "Infinity", "-Infinity" that JSON can't carry.
 * @param {any} x
 */
export function formatNumber(x) {
  const v = typeof x === "string" && NON_FINITE.has(x) ? NON_FINITE.get(x) : x;
  if (typeof v !== "number") return v === null || v === undefined ? "" : String(v);
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  if (v === 0) return "0";
  const abs = Math.abs(v);
  if (Number.isInteger(v) && abs < 1e6) return String(v);
  if (abs >= 1e6 || abs < 1e-4) return exponent(v);
  const rounded = Number(v.toPrecision(4));
  return Math.abs(rounded) >= 1e6 ? exponent(v) : String(rounded);
}

/** "1h 02m", "3m 05s", "12.3s"; empty for missing or negative values. @param {any} seconds */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || typeof seconds === "boolean") return "";
  const s = Number(seconds);
  if (!Number.isFinite(s) || s < 0) return "";
  if (s < 59.95) return `${s.toFixed(1)}s`;
  if (s < 3599.5) {
    const whole = Math.round(s);
    return `${Math.floor(whole / 60)}m ${pad2(whole % 60)}s`;
  }
  const minutes = Math.round(s / 60);
  return `${Math.floor(minutes / 60)}h ${pad2(minutes % 60)}m`;
}

/** Epoch seconds (or an ISO string) as local "YYYY-MM-DD HH:MM". @param {any} value */
export function formatTime(value) {
  if (value === null || value === undefined || typeof value === "boolean") return "";
  const ms = typeof value === "number" ? value * 1000 : Date.parse(String(value));
  if (!Number.isFinite(ms)) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** @param {string} text @param {number} [limit] */
export function truncate(text, limit = CELL_LIMIT) {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

/**
 * The text of one cell, cut to `limit` characters (pass Infinity for the full text, e.g. for a title).
 * @param {any} value @param {Kind} kind @param {number} [limit]
 */
export function formatCell(value, kind, limit = CELL_LIMIT) {
  if (value === null || value === undefined) return "";
  let text;
  if (typeof value === "boolean") text = value ? "true" : "false";
  else if (Array.isArray(value)) text = value.map((v) => formatCell(v, "text", Infinity)).join(", ");
  else if (kind === "time") text = formatTime(value);
  else if (kind === "duration") text = formatDuration(value);
  else if (typeof value === "number" || (kind === "number" && NON_FINITE.has(value))) text = formatNumber(value);
  else if (typeof value === "object") text = JSON.stringify(value);
  else text = String(value);
  return truncate(text, limit);
}

/** @param {any} sort @returns {{key: string, descending: boolean}} */
export function parseSort(sort) {
  const s = typeof sort === "string" ? sort : "";
  return s.startsWith("-") ? { key: s.slice(1), descending: true } : { key: s, descending: false };
}

/**
 * The sort after a click on column `key`: the same column flips; a new one starts descending for
 * numbers, times and durations, ascending otherwise.
 * @param {string} currentSort @param {string} key @param {Kind} kind
 */
export function nextSort(currentSort, key, kind) {
  const current = parseSort(currentSort);
  if (current.key === key) return current.descending ? key : `-${key}`;
  return DESCENDING_FIRST.has(kind) ? `-${key}` : key;
}

/** A new selection with `id` added or removed. @param {string[]|null} selected @param {string} id */
export function toggleSelection(selected, id) {
  const current = selected || [];
  return current.includes(id) ? current.filter((x) => x !== id) : [...current, id];
}

/**
 * A new selection with all visible ids added (`on`) or removed; ids selected but not visible are kept.
 * @param {string[]|null} selected @param {string[]} visibleIds @param {boolean} on
 */
export function selectAll(selected, visibleIds, on) {
  const current = selected || [];
  if (!on) {
    const visible = new Set(visibleIds);
    return current.filter((id) => !visible.has(id));
  }
  const next = [...current];
  const have = new Set(current);
  for (const id of visibleIds) {
    if (!have.has(id)) next.push(id);
    have.add(id);
  }
  return next;
}

/** The header checkbox: "all", "some" or "none" of the visible rows selected. */
export function headerState(selected, visibleIds) {
  const chosen = new Set(selected || []);
  const count = visibleIds.filter((id) => chosen.has(id)).length;
  return count === 0 ? "none" : count === visibleIds.length ? "all" : "some";
}

/** Whether a row is dimmed: only while `highlight` is a non-empty list that lacks the id. */
export function isDimmed(highlight, id) {
  return Array.isArray(highlight) && highlight.length > 0 && !highlight.includes(id);
}

/** "Showing 50 of 120 runs" when Python cut the rows, else "120 runs". */
export function rowsSummary(shown, total) {
  const all = Number.isFinite(total) ? Math.max(total, shown) : shown;
  const noun = all === 1 ? "run" : "runs";
  return shown < all ? `Showing ${shown} of ${all} ${noun}` : `${all} ${noun}`;
}

/** The column whose cell opens the run: "name", else the first text column. @param {Column[]} columns */
export function nameColumn(columns) {
  const named = columns.find((c) => c.key === "name") || columns.find((c) => c.kind === "text");
  return named ? named.key : null;
}

/** @param {HTMLElement} parent @param {string} tag @param {string} [text] */
function add(parent, tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // text, never HTML
  parent.appendChild(node);
  return node;
}

/** @param {HTMLElement} td @param {any} value @param {Kind} kind */
function fillCell(td, value, kind) {
  if (value === null || value === undefined) return;
  if (kind === "state") {
    const badge = add(td, "span", formatCell(value, kind));
    badge.style.cssText = "color:white;border-radius:8px;padding:0 7px;font-size:11px;white-space:nowrap";
    badge.style.background = stateColor(value);
  } else if (kind === "tags" && Array.isArray(value)) {
    for (const tag of value) {
      const chip = add(td, "span", formatCell(tag, "text", 30));
      chip.title = String(tag);
      chip.style.cssText = "background:#eef1f5;border:1px solid #d5dbe3;border-radius:8px;padding:0 6px;margin-right:3px;font-size:11px;white-space:nowrap";
    }
  } else {
    const text = formatCell(value, kind);
    td.appendChild(document.createTextNode(text));
    const full = formatCell(value, kind, Infinity);
    if (full !== text) td.title = full;
  }
}

function render({ model, el }) {
  el.classList.add("nbtrack-runs-table");
  const summary = add(el, "div");
  summary.style.cssText = "font-size:12px;color:#555;margin:2px 0 4px";
  const scroller = add(el, "div");
  scroller.style.cssText = "max-height:360px;overflow:auto;border:1px solid #ddd";
  const table = add(scroller, "table");
  table.style.cssText = "border-collapse:separate;border-spacing:0;font-size:12px;width:100%";
  /** @param {string} name @param {any} value */
  const commit = (name, value) => {
    model.set(name, value);
    model.save_changes();
  };
  const checkbox = (parent) => {
    const box = add(parent, "input");
    box.type = "checkbox";
    box.style.margin = "0";
    return box;
  };

  const draw = () => {
    /** @type {Column[]} */
    const columns = model.get("columns") || [];
    /** @type {Row[]} */
    const rows = model.get("rows") || [];
    const chosen = new Set(model.get("selected") || []);
    const highlight = model.get("highlight");
    const sort = parseSort(model.get("sort"));
    const nameKey = nameColumn(columns);
    const ids = rows.map((row) => row.id);
    summary.textContent = rowsSummary(rows.length, model.get("total"));
    table.replaceChildren();

    const head = add(add(table, "thead"), "tr");
    const th0 = add(head, "th");
    const all = checkbox(th0);
    const state = headerState([...chosen], ids);
    all.checked = state === "all";
    all.indeterminate = state === "some";
    all.disabled = ids.length === 0;
    all.title = state === "all" ? "Clear the selection" : "Select all shown runs";
    all.addEventListener("change", () => commit("selected", selectAll(model.get("selected"), ids, state !== "all")));
    for (const column of columns) {
      const arrow = sort.key === column.key ? (sort.descending ? " ▼" : " ▲") : "";
      const th = add(head, "th", column.label + arrow);
      th.title = column.key;
      th.style.cursor = "pointer";
      if (RIGHT_ALIGNED.has(column.kind)) th.style.textAlign = "right";
      th.addEventListener("click", () => commit("sort", nextSort(model.get("sort"), column.key, column.kind)));
    }
    for (const th of head.children) {
      th.style.cssText += ";position:sticky;top:0;z-index:1;background:#fafafa;border-bottom:1px solid #ccc;padding:3px 8px;white-space:nowrap;user-select:none";
      if (!th.style.textAlign) th.style.textAlign = "left";
    }

    const body = add(table, "tbody");
    if (rows.length === 0) {
      const td = add(add(body, "tr"), "td", "No runs match.");
      td.colSpan = columns.length + 1;
      td.style.cssText = "padding:6px 8px;color:#777";
    }
    for (const row of rows) {
      const tr = add(body, "tr");
      if (chosen.has(row.id)) tr.style.background = "#e3edfb";
      if (isDimmed(highlight, row.id)) tr.style.opacity = "0.35";
      const box = checkbox(add(tr, "td"));
      box.checked = chosen.has(row.id);
      box.addEventListener("change", () => commit("selected", toggleSelection(model.get("selected"), row.id)));
      for (const column of columns) {
        const td = add(tr, "td");
        const value = row.cells ? row.cells[column.key] : undefined;
        if (column.key === nameKey) {
          if (row.color) {
            const swatch = add(td, "span");
            swatch.style.cssText = "display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px";
            swatch.style.background = row.color;
          }
          td.style.cssText = "cursor:pointer;color:#1a5fb4";
          td.addEventListener("click", () => model.send({ event: "open", id: row.id }));
        }
        fillCell(td, value, column.kind);
        if (column.key === nameKey) td.title = `Open ${formatCell(value, "text", Infinity) || row.id}`;
        if (RIGHT_ALIGNED.has(column.kind)) td.style.cssText += ";text-align:right;font-variant-numeric:tabular-nums";
      }
      for (const td of tr.children) td.style.cssText += ";padding:2px 8px;border-bottom:1px solid #eee;white-space:nowrap";
    }
  };

  const events = ["columns", "rows", "total", "selected", "sort", "highlight"].map((name) => `change:${name}`);
  draw();
  for (const event of events) model.on(event, draw);
  return () => {
    for (const event of events) model.off(event, draw);
  };
}

export default { render };
