// CopyButton view (anywidget ES module): puts the `text` trait on the clipboard from the click
// itself (browsers only allow it during a user gesture), and when the browser refuses (no
// clipboard API outside secure contexts, permission denied) shows the text selected in a box
// with how to copy it by hand. The kernel keeps `text` current, so nothing waits on it.

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function render({ model, el }) {
  const root = h("div", "bn-copy");
  const button = h("button", "bn-btn bn-copy-btn", model.get("label"));
  button.title = "Put the equivalent %%bytenite cell on the clipboard";
  const note = h("span", "bn-copy-note");
  const fallback = h("div", "bn-copy-fallback");
  const box = h("textarea", "bn-copy-text");
  box.readOnly = true;
  box.rows = 8;
  const why = h("div", "bn-copy-why");
  fallback.append(why, box);
  fallback.style.display = "none";
  root.append(button, note, fallback);
  el.appendChild(root);

  function refused(reason) {
    box.value = model.get("text");
    why.textContent =
      `The browser did not allow copying (${reason}). The cell is selected below: ` +
      "press Ctrl+C (⌘C on a Mac), then paste it into a new cell.";
    fallback.style.display = "";
    note.textContent = "";
    root.dataset.copy = "refused";
    box.focus();
    box.select();
    model.send({ type: "copy", ok: false, reason });
  }

  button.addEventListener("click", () => {
    const text = model.get("text");
    fallback.style.display = "none";
    const clip = typeof navigator !== "undefined" ? navigator.clipboard : null;
    if (!clip || typeof clip.writeText !== "function") {
      refused("no clipboard access on this page");
      return;
    }
    clip.writeText(text).then(
      () => {
        note.textContent = "Copied: paste it into a new cell.";
        root.dataset.copy = "copied";
        model.send({ type: "copy", ok: true });
      },
      (err) => refused((err && err.name) || "permission denied"),
    );
  });
  const relabel = () => {
    button.textContent = model.get("label");
  };
  const disable = () => {
    button.disabled = !model.get("text");
  };
  model.on("change:label", relabel);
  model.on("change:text", disable);
  disable();
  return () => {
    model.off("change:label", relabel);
    model.off("change:text", disable);
  };
}

export default { render };
