// JobsDashboard table view (anywidget ES module). Only the current page of rows is in the
// model; filters and paging are traits the kernel observes to compute the next page.
import {
  statusLabel, statusClass, rowActions, rowSeconds, formatDuration, formatCreated, pageInfo,
} from "./dashboard_logic.js";
import { coalesce } from "./throttle.js";

function h(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function select(options, value, onChange, allLabel) {
  const sel = h("select");
  for (const opt of ["", ...options]) {
    const o = h("option", null, opt === "" ? allLabel : opt);
    o.value = opt;
    if (opt === value) o.selected = true;
    sel.appendChild(o);
  }
  sel.addEventListener("change", () => onChange(sel.value));
  return sel;
}

const COLUMNS = ["status", "name", "template", "created (UTC)", "duration", "chunks", ""];

function render({ model, el }) {
  const root = h("div", "bn-dashboard");
  el.appendChild(root);
  const bar = h("div", "bn-dash-bar");
  const table = h("table", "bn-dash-table");
  const pager = h("div", "bn-pager");
  const notice = h("div", "bn-notice");
  root.append(bar, table, pager, notice);

  function setTrait(name, value) {
    model.set(name, value);
    if (name !== "page") model.set("page", 0);
    model.save_changes();
  }

  function update() {
    const rows = model.get("rows") || [];
    const total = model.get("total") || 0;
    const info = pageInfo(model.get("page"), model.get("page_size") || 20, total);
    root.dataset.total = String(total);

    const refresh = h("button", "bn-btn", "Refresh");
    refresh.addEventListener("click", () => model.send({ type: "refresh" }));
    bar.replaceChildren(
      h("strong", null, "ByteNite jobs"),
      h("span", "bn-muted", "state"),
      select(model.get("states") || [], model.get("state_filter"), (v) => setTrait("state_filter", v), "all"),
      h("span", "bn-muted", "template"),
      select(model.get("templates") || [], model.get("template_filter"), (v) => setTrait("template_filter", v), "all"),
      refresh,
    );

    const head = h("tr");
    for (const c of COLUMNS) head.appendChild(h("th", null, c));
    const body = rows.map((r) => {
      const tr = h("tr");
      tr.dataset.jobId = r.id;
      const st = h("td", `bn-state bn-state-${statusClass(r.status)}`, statusLabel(r.status));
      const name = h("td", "bn-name", r.name || r.id);
      name.title = r.id;
      const actions = h("td");
      for (const action of rowActions(r.status)) {
        const b = h("button", `bn-btn bn-act-${action}`, action);
        b.addEventListener("click", () => model.send({ type: "action", action, job_id: r.id }));
        actions.appendChild(b);
      }
      tr.append(
        st,
        name,
        h("td", null, r.template_id || ""),
        h("td", null, formatCreated(r.created_at)),
        durationCell(r),
        h("td", null, r.num_chunks == null ? "" : String(r.num_chunks)),
        actions,
      );
      return tr;
    });
    table.replaceChildren(head, ...body);

    const prev = h("button", "bn-btn", "‹ prev");
    prev.disabled = !info.hasPrev;
    prev.addEventListener("click", () => setTrait("page", info.page - 1));
    const next = h("button", "bn-btn", "next ›");
    next.disabled = !info.hasNext;
    next.addEventListener("click", () => setTrait("page", info.page + 1));
    pager.replaceChildren(prev, h("span", null, info.label), next);
    notice.textContent = model.get("notice") || "";
    notice.style.display = notice.textContent ? "" : "none";
  }
  // Running jobs' durations count up in the browser: no kernel messages to tick a clock.
  const running = [];
  function durationCell(r) {
    const td = h("td", "bn-duration", formatDuration(rowSeconds(r, Date.now())));
    if (!["complete", "failed", "aborted"].includes(r.status) && r.started_at) {
      running.push([td, r]);
    }
    return td;
  }
  const schedule = coalesce(() => {
    running.length = 0;
    update();
  });
  const timer = setInterval(() => {
    for (const [td, r] of running) td.textContent = formatDuration(rowSeconds(r, Date.now()));
  }, 1000);
  const traits = ["rows", "total", "page", "page_size", "states", "templates", "state_filter",
    "template_filter", "notice"];
  for (const k of traits) model.on(`change:${k}`, schedule);
  update();
  return () => {
    clearInterval(timer);
    for (const k of traits) model.off(`change:${k}`, schedule);
  };
}

export default { render };
