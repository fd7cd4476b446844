// The Files pane of the nbtrack dashboard: the run's files with sizes, a download button each, and an
// inline preview of small text files. State comes from the kernel through the model (`files`, `preview`);
// downloads ask the kernel for the bytes, which arrive as a custom message with one buffer.

/** @param {number} bytes */
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "?";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** The file name part of a path inside the run folder, for the browser's save dialog. */
export function downloadName(path) {
  const parts = String(path).split("/");
  return parts[parts.length - 1] || "download";
}

/**
 * @param {HTMLElement} parent
 * @param {string} tag
 * @param {string} [text]
 */
function add(parent, tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text; // text, never HTML: file names and contents are data
  parent.appendChild(node);
  return node;
}

function render({ model, el }) {
  el.classList.add("nbtrack-files");
  const table = add(el, "table");
  table.style.borderCollapse = "collapse";
  table.style.fontSize = "13px";
  const preview = add(el, "pre");
  preview.style.cssText = "max-height:360px;overflow:auto;background:#f7f7f7;padding:6px;font-size:12px;white-space:pre-wrap";

  const draw = () => {
    table.replaceChildren();
    const files = model.get("files") || [];
    if (files.length === 0) {
      add(add(table, "tr"), "td", "No files yet.");
      return;
    }
    for (const file of files) {
      const row = add(table, "tr");
      const name = add(row, "td", file.name);
      name.style.padding = "2px 12px 2px 0";
      const size = add(row, "td", formatSize(file.size));
      size.style.cssText = "text-align:right;padding:2px 12px;color:#555";
      const actions = add(row, "td");
      const download = add(actions, "button", "Download");
      download.className = "jupyter-button";
      download.addEventListener("click", () => model.send({ request: "download", name: file.name }));
      if (file.previewable) {
        const show = add(actions, "button", "Preview");
        show.className = "jupyter-button";
        show.addEventListener("click", () => model.send({ request: "preview", name: file.name }));
      }
    }
  };
  const showPreview = () => {
    const text = model.get("preview") || "";
    preview.textContent = text;
    preview.style.display = text ? "block" : "none";
  };

  /** @param {any} message @param {DataView[]} buffers */
  const onMessage = (message, buffers) => {
    if (!message || message.kind !== "file" || !buffers || buffers.length === 0) return;
    const blob = new Blob([buffers[0].buffer], { type: "application/octet-stream" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = downloadName(message.name);
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  draw();
  showPreview();
  model.on("change:files", draw);
  model.on("change:preview", showPreview);
  model.on("msg:custom", onMessage);
  return () => {
    model.off("change:files", draw);
    model.off("change:preview", showPreview);
    model.off("msg:custom", onMessage);
  };
}

export default { render };
