// The Model pane's graph view: nodes laid out by Python (x, y per node), drawn as SVG with pan (drag),
// zoom (wheel, around the pointer) and hover details; a nested model opens below on click. Beside it, the
// layer table, sortable by any column. All text goes in as textContent: layer names are data.

const SVG = "http://www.w3.org/2000/svg";
const NODE_W = 190;
const NODE_H = 46;

/** Zoom a viewBox [x, y, w, h] by `factor` (> 1 zooms out) keeping the point (px, py) fixed. */
export function zoomViewBox(box, factor, px, py) {
  const [x, y, w, h] = box;
  const width = Math.min(Math.max(w * factor, 40), 1e6);
  const scale = width / w;
  return [px - (px - x) * scale, py - (py - y) * scale, width, h * scale];
}

/** Rows sorted by a column; numbers numerically, text case-insensitively; stable. */
export function sortRows(rows, key, descending = false) {
  const sign = descending ? -1 : 1;
  return rows
    .map((row, index) => ({ row, index }))
    .sort((a, b) => {
      const u = a.row[key];
      const v = b.row[key];
      const order = typeof u === "number" && typeof v === "number"
        ? u - v
        : String(u).localeCompare(String(v), undefined, { sensitivity: "base" });
      return order !== 0 ? sign * order : a.index - b.index;
    })
    .map((item) => item.row);
}

function el(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Draw one graph into `host`; nested models open in `nestedHost`. */
function drawGraph(graph, host, nestedHost) {
  host.replaceChildren();
  if (!graph || !graph.nodes) return;
  if (!graph.traced) {
    host.appendChild(html("p", graph.reason || "No graph for this model."));
    return;
  }
  const svg = el("svg", { width: "100%", height: "460", class: "nbtrack-graph", preserveAspectRatio: "xMidYMin meet" });
  svg.style.cssText = "border:1px solid #ddd;background:white;cursor:grab;touch-action:none";
  const margin = 12;
  // Natural size for small graphs (centred), the top of big ones: the user zooms and pans from there.
  const width = Math.max(graph.width + 2 * margin, 640);
  let box = [-(width - graph.width - 2 * margin) / 2, 0, width, (width * 460) / 900];
  const apply = () => svg.setAttribute("viewBox", box.join(" "));
  apply();
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const edges = el("g");
  for (const [source, target] of graph.edges) {
    const a = byId.get(source);
    const b = byId.get(target);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W / 2 + margin;
    const y1 = a.y + NODE_H + margin;
    const x2 = b.x + NODE_W / 2 + margin;
    const y2 = b.y + margin;
    const mid = (y1 + y2) / 2;
    edges.appendChild(el("path", { d: `M${x1},${y1} C${x1},${mid} ${x2},${mid} ${x2},${y2}`, fill: "none", stroke: "#999" }));
  }
  svg.appendChild(edges);
  for (const n of graph.nodes) {
    const g = el("g", { class: "nbtrack-node" });
    g.appendChild(el("title", {}, `${n.name} (${n.cls})\noutput ${n.output_shape}\n${n.params.toLocaleString()} params (${n.trainable.toLocaleString()} trainable)`));
    g.appendChild(el("rect", { x: n.x + margin, y: n.y + margin, width: NODE_W, height: NODE_H, rx: 6,
      fill: n.children ? "#fdf1e3" : "#eef4fb", stroke: "#5b8cc6" }));
    g.appendChild(el("text", { x: n.x + margin + 8, y: n.y + margin + 18, "font-size": 12, "font-weight": 600 },
      (n.children ? "▸ " : "") + n.name.slice(0, 26)));
    g.appendChild(el("text", { x: n.x + margin + 8, y: n.y + margin + 35, "font-size": 10, fill: "#555" },
      `${n.cls.slice(0, 16)} · ${n.output_shape.slice(0, 18)} · ${n.params.toLocaleString()}`));
    if (n.children) {
      g.style.cursor = "pointer";
      g.addEventListener("click", () => {
        nestedHost.replaceChildren(html("div", `Inside ${n.name} (${n.cls}):`));
        const inner = html("div");
        nestedHost.appendChild(inner);
        drawGraph(n.children, inner, html("div"));
      });
    }
    svg.appendChild(g);
  }
  let drag = null;
  svg.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, box: [...box] };
    svg.setPointerCapture(e.pointerId);
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const rect = svg.getBoundingClientRect();
    const scale = box[2] / Math.max(rect.width, 1);
    box = [drag.box[0] - (e.clientX - drag.x) * scale, drag.box[1] - (e.clientY - drag.y) * scale, box[2], box[3]];
    apply();
  });
  svg.addEventListener("pointerup", () => { drag = null; });
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const rect = svg.getBoundingClientRect();
    const px = box[0] + ((e.clientX - rect.left) / Math.max(rect.width, 1)) * box[2];
    const py = box[1] + ((e.clientY - rect.top) / Math.max(rect.height, 1)) * box[3];
    box = zoomViewBox(box, e.deltaY > 0 ? 1.15 : 1 / 1.15, px, py);
    apply();
  }, { passive: false });
  host.appendChild(svg);
}

function drawTable(graph, host) {
  host.replaceChildren();
  if (!graph || !graph.nodes) return;
  const columns = [["name", "Layer"], ["cls", "Class"], ["output_shape", "Output shape"], ["params", "Params"]];
  let sortKey = null;
  let descending = false;
  const table = html("table");
  table.style.cssText = "border-collapse:collapse;font-size:12px;width:100%";
  const draw = () => {
    table.replaceChildren();
    const head = html("tr");
    for (const [key, title] of columns) {
      const th = html("th", title + (sortKey === key ? (descending ? " ▼" : " ▲") : ""));
      th.style.cssText = "cursor:pointer;text-align:left;border-bottom:1px solid #ccc;padding:2px 6px";
      th.addEventListener("click", () => {
        descending = sortKey === key ? !descending : false;
        sortKey = key;
        draw();
      });
      head.appendChild(th);
    }
    table.appendChild(head);
    const rows = sortKey ? sortRows(graph.nodes, sortKey, descending) : graph.nodes;
    for (const n of rows) {
      const tr = html("tr");
      for (const [key] of columns) {
        const td = html("td", key === "params" ? n.params.toLocaleString() : String(n[key]));
        td.style.padding = "1px 6px";
        if (key === "params") td.style.textAlign = "right";
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
  };
  draw();
  host.appendChild(table);
}

function render({ model, el: root }) {
  root.classList.add("nbtrack-model");
  const layout = html("div");
  layout.style.cssText = "display:flex;gap:12px;align-items:flex-start";
  const left = html("div");
  left.style.cssText = "flex:3;min-width:320px";
  const graphHost = html("div");
  const nestedHost = html("div");
  left.append(graphHost, nestedHost);
  const right = html("div");
  right.style.cssText = "flex:2;max-height:480px;overflow:auto;min-width:260px";
  layout.append(left, right);
  root.appendChild(layout);
  const draw = () => {
    const graph = model.get("graph");
    drawGraph(graph, graphHost, nestedHost);
    drawTable(graph, right);
  };
  draw();
  model.on("change:graph", draw);
  return () => model.off("change:graph", draw);
}

export default { render };
