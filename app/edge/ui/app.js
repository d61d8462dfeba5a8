// The review page: try a text, work through the queue, see feedback per label.
// Every text from the log is inserted with textContent, never as HTML.
"use strict";

const KEY = "textcls.apiKey";
const PAGE = 20;
const $ = (id) => document.getElementById(id);
const state = { view: "try", offset: 0, total: 0, labels: new Map(), served: new Map() };

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    let detail = data.detail ?? r.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg).join("; ");
    if (r.status === 401) showLogin("The API key was refused: " + detail);
    throw new ApiError(r.status, detail);
  }
  return data;
}

// A logged time as the filter reads dates: UTC, "2026-12-06 21:55:03 UTC".
function utcTime(iso) {
  return new Date(iso).toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const pct = (p) => (p * 100).toFixed(1) + "%";

// A rough language tag for the highlighted text, so the CJK font and spacing apply.
function langOf(text) {
  if (/[\u3040-\u30ff]/.test(text)) return "ja";
  if (/[\u3400-\u9fff]/.test(text)) return "zh";
  return "";
}

// The text with each weighed token wrapped in a span coloured by its weight. Offsets are in
// code points (as the server counts them), hence Array.from rather than string indices.
function renderHighlighted(target, text, tokens) {
  target.replaceChildren();
  target.lang = langOf(text);
  const chars = Array.from(text);
  const maxAbs = Math.max(1e-9, ...tokens.map((t) => Math.abs(t.weight)));
  let at = 0;
  for (const t of tokens) {
    if (t.start > at) target.append(chars.slice(at, t.start).join(""));
    const span = el("span", { class: "tok", text: chars.slice(t.start, t.end).join("") });
    const strength = Math.min(1, Math.abs(t.weight) / maxAbs);
    if (strength >= 0.05) {
      const rgb = t.weight > 0 ? "var(--pos)" : "var(--neg)";
      span.style.background = `rgba(${rgb}, ${(0.12 + 0.6 * strength).toFixed(2)})`;
      span.dataset.weight = t.weight.toFixed(4);
      span.classList.add(t.weight > 0 ? "pos" : "neg");
    }
    span.title = `weight ${t.weight >= 0 ? "+" : ""}${t.weight.toFixed(4)}`;
    target.append(span);
    at = t.end;
  }
  if (at < chars.length) target.append(chars.slice(at).join(""));
}

function rankingTable(table, ranking) {
  table.replaceChildren();
  for (const r of ranking) {
    const bar = el("span", { class: "bar" });
    bar.style.width = Math.max(2, Math.round(r.confidence * 160)) + "px";
    table.append(el("tr", {}, el("td", { text: r.label }),
      el("td", { class: "num", text: pct(r.confidence) }), el("td", {}, bar)));
  }
}

// --- login and navigation -------------------------------------------------------------
function showLogin(message = "") {
  $("login").hidden = false;
  $("nav").hidden = $("logout").hidden = true;
  for (const id of ["view-try", "view-queue", "view-stats", "view-intents", "filters"]) {
    $(id).hidden = true;
  }
  $("login-error").textContent = message;
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    const models = await api("GET", "/models");
    state.served = new Map(models.models.filter((m) => m.ready).map((m) => [m.name, m]));
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) showLogin(String(err.message));
    return false;
  }
  $("login").hidden = true;
  $("nav").hidden = $("logout").hidden = false;
  const select = $("try-model");
  select.replaceChildren(...[...state.served.values()].map(
    (m) => el("option", { value: m.name, text: `${m.name} v${m.version}` })));
  await loadFilters().catch((err) => { $("filter-error").textContent = err.message; });
  show(state.view);
  refreshQueueCount();
  return true;
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll(".tab")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  $("view-try").hidden = view !== "try";
  $("view-queue").hidden = view !== "queue";
  $("view-stats").hidden = view !== "stats";
  $("view-intents").hidden = view !== "intents";
  $("filters").hidden = view === "try" || view === "intents";
  for (const n of document.querySelectorAll(".queue-only")) n.hidden = view !== "queue";
  if (view === "queue") loadQueue();
  if (view === "stats") loadStats();
  if (view === "intents") loadIntents();
}

// --- try it -----------------------------------------------------------------------------
async function tryText(event) {
  event.preventDefault();
  const text = $("try-text").value;
  $("try-error").textContent = "";
  $("try-submit").disabled = true;
  try {
    const body = { text };
    if ($("try-model").value) body.model = $("try-model").value;
    const r = await api("POST", "/explain", body);
    $("try-result").hidden = false;
    $("try-label").textContent = r.label;
    $("try-confidence").textContent = pct(r.confidence);
    $("try-fallback").hidden = !r.fallback;
    $("try-model-version").textContent = `${r.model} v${r.version}`;
    $("try-explained").textContent = r.explained_label;
    renderHighlighted($("try-highlight"), text, r.tokens);
    $("try-truncated").textContent = r.truncated
      ? `Only the first ${r.token_limit} of ${r.tokens_total} words were weighed.` : "";
    rankingTable($("try-ranking"), r.ranking);
  } catch (err) {
    $("try-error").textContent = err.message;
  } finally {
    $("try-submit").disabled = false;
  }
}

// --- filters ----------------------------------------------------------------------------
async function loadFilters() {
  const { versions } = await api("GET", "/review/versions");
  const select = $("f-model");
  const keep = select.value;
  select.replaceChildren(el("option", { value: "", text: "any" }));
  for (const v of versions) {
    select.append(el("option", {
      value: `${v.model}/${v.version}`,
      text: `${v.model} v${v.version} (${v.predictions})${v.served ? "" : " - not served"}`,
    }));
  }
  select.value = keep;
  const labels = new Set();
  for (const m of state.served.values()) for (const l of m.classes) labels.add(l);
  $("f-labels").replaceChildren(...[...labels].sort().map((l) => el("option", { value: l })));
}

function filterQuery(withStatus) {
  const q = new URLSearchParams();
  const mv = $("f-model").value;
  if (mv) {
    const [model, version] = mv.split("/");
    q.set("model", model);
    q.set("version", version);
  }
  if ($("f-label").value.trim() && withStatus) q.set("label", $("f-label").value.trim());
  if ($("f-since").value) q.set("since", $("f-since").value + "T00:00:00Z");
  if ($("f-until").value) {
    const end = new Date($("f-until").value + "T00:00:00Z");
    end.setUTCDate(end.getUTCDate() + 1); // the whole "to" day
    q.set("until", end.toISOString());
  }
  if ($("f-trace").value.trim() && withStatus) q.set("trace_id", $("f-trace").value.trim());
  if (withStatus) q.set("status", $("f-status").value);
  return q;
}

// --- queue ------------------------------------------------------------------------------
async function refreshQueueCount() {
  try {
    const r = await api("GET", "/review/queue?limit=1&status=pending");
    $("queue-count").textContent = r.total ? String(r.total) : "";
  } catch {
    $("queue-count").textContent = "";
  }
}

async function loadQueue() {
  $("filter-error").textContent = "";
  const q = filterQuery(true);
  q.set("limit", PAGE);
  q.set("offset", state.offset);
  let page;
  try {
    page = await api("GET", "/review/queue?" + q);
  } catch (err) {
    $("filter-error").textContent = err.message;
    return;
  }
  state.total = page.total;
  for (const s of page.label_sets) state.labels.set(`${s.model}/${s.version}`, s.labels);
  $("queue-total").textContent = `(${page.total})`;
  const list = $("queue");
  list.replaceChildren(...page.items.map(queueItem));
  if (!page.items.length) list.append(el("li", { class: "muted", text: "Nothing to review." }));
  const last = Math.min(state.offset + PAGE, page.total);
  $("queue-page").textContent = page.total ? `${state.offset + 1}-${last} of ${page.total}` : "";
  $("queue-prev").disabled = state.offset === 0;
  $("queue-next").disabled = last >= page.total;
  // Explanations one after another, so a full page does not arrive as a burst.
  for (const [i, item] of page.items.entries()) {
    await explainItem(list.children[i], item);
  }
}

function queueItem(item) {
  const node = $("queue-item").content.firstElementChild.cloneNode(true);
  node.dataset.requestId = item.request_id;
  node.dataset.index = item.index;
  const prio = node.querySelector(".priority");
  prio.textContent = { fallback: "fallback", low_confidence: "low confidence", other: "" }[item.priority];
  prio.classList.add(item.priority);
  prio.hidden = item.priority === "other";
  node.querySelector(".when").textContent = utcTime(item.created_at);
  node.querySelector(".which").textContent = `${item.model} v${item.version}` +
    (item.duplicates > 1 ? ` · ${item.duplicates} near-duplicates` : "") +
    (item.similar > item.duplicates ? ` · stands for ${item.similar} similar texts` : "");
  if (item.trace_id) {
    const trace = node.querySelector(".trace");
    trace.textContent = `trace ${item.trace_id}`;
    trace.title = "W3C trace id of the request: find its spans in your tracing backend";
    trace.hidden = false;
  }
  const text = node.querySelector(".text");
  text.textContent = item.text ?? "(text not logged: TEXTCLS_LOG_TEXT)";
  text.lang = langOf(item.text ?? "");
  node.querySelector(".predicted").textContent = item.label;
  node.querySelector(".confidence").textContent = pct(item.confidence);
  const picker = node.querySelector(".picker");
  const choices = item.ranking.map((r) => r.label);
  for (const label of choices) {
    const b = el("button", { type: "button", text: label, "data-label": label });
    if (label === item.label) b.classList.add("predicted");
    b.title = label === item.label ? "The prediction is right" : "This is the correct label";
    b.addEventListener("click", () => sendFeedback(node, item, label));
    picker.append(b);
  }
  const other = node.querySelector(".other-label");
  const labels = state.labels.get(`${item.model}/${item.version}`) ?? [];
  other.append(el("option", { value: "", text: "other label..." }));
  for (const l of labels) if (!choices.includes(l)) other.append(el("option", { value: l, text: l }));
  other.hidden = labels.length === 0;
  other.addEventListener("change", () => other.value && sendFeedback(node, item, other.value));
  if (item.corrected_label) markSaved(node, item.corrected_label);
  return node;
}

async function explainItem(node, item) {
  if (!item.text || !node) return;
  const why = node.querySelector(".why");
  const body = { text: item.text, model: item.model, version: item.version, label: item.label };
  try {
    let r;
    try {
      r = await api("POST", "/explain", body);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      delete body.version; // that version is no longer served: explain with the current one
      r = await api("POST", "/explain", body);
      why.textContent = `v${item.version} is no longer served; weights from v${r.version}. `;
    }
    renderHighlighted(node.querySelector(".text"), item.text, r.tokens);
    const top = [...r.tokens].sort((a, b) => b.weight - a.weight).slice(0, 3)
      .filter((t) => t.weight > 0).map((t) => t.text);
    why.textContent += top.length
      ? `Most weight for ${item.label}: ${top.join(", ")}`
      : `No single word moves ${item.label}.`;
  } catch (err) {
    why.textContent = "No explanation: " + err.message;
  }
}

function markSaved(node, label) {
  node.classList.add("done");
  const saved = node.querySelector(".saved");
  saved.hidden = false;
  saved.textContent = "saved: " + label;
  for (const b of node.querySelectorAll(".picker button")) {
    b.classList.toggle("chosen", b.dataset.label === label);
  }
}

async function sendFeedback(node, item, label) {
  const error = node.querySelector(".item-error");
  error.textContent = "";
  for (const b of node.querySelectorAll("button, select")) b.disabled = true;
  try {
    await api("POST", "/feedback", { request_id: item.request_id, index: item.index, label });
    markSaved(node, label);
    refreshQueueCount();
  } catch (err) {
    error.textContent = "Not saved: " + err.message;
  } finally {
    for (const b of node.querySelectorAll("button, select")) b.disabled = false;
  }
}

// --- feedback per label -----------------------------------------------------------------
async function loadStats() {
  $("filter-error").textContent = "";
  let r;
  try {
    r = await api("GET", "/review/stats?" + filterQuery(false));
  } catch (err) {
    $("filter-error").textContent = err.message;
    return;
  }
  const rate = r.disagreement_rate === null ? "no feedback yet" : pct(r.disagreement_rate);
  $("stats-summary").textContent =
    `${r.predictions} predictions, ${r.reviewed} reviewed, ${r.disagreed} corrected ` +
    `(disagreement rate ${rate}).`;
  const body = $("stats").tBodies[0];
  body.replaceChildren();
  for (const s of r.labels) {
    const bar = el("span", { class: "bar rate-bar" });
    bar.style.width = Math.round((s.disagreement_rate ?? 0) * 80) + "px";
    const rateCell = el("td", {}, bar, " ",
      s.disagreement_rate === null ? "-" : pct(s.disagreement_rate));
    body.append(el("tr", { "data-label": s.label },
      el("td", { text: s.label }), el("td", { text: String(s.predictions) }),
      el("td", { text: String(s.fallbacks) }), el("td", { text: String(s.reviewed) }),
      el("td", { text: String(s.disagreed) }), rateCell,
      el("td", { text: String(s.corrected_to) })));
  }
  if (!r.labels.length) body.append(el("tr", {}, el("td", { text: "No predictions logged." })));
}

// --- new intents ---------------------------------------------------------------------------
async function loadIntents() {
  $("intents-error").textContent = "";
  let r;
  try {
    r = await api("GET", "/review/intents?status=open");
  } catch (err) {
    $("intents-error").textContent = err.message;
    return;
  }
  const list = $("intents");
  list.replaceChildren(...r.intents.map((g) => intentItem(g, r.labels[g.model] ?? [])));
  if (!r.intents.length) {
    list.append(el("li", { class: "muted", text: "No open intents: run textcls intents discover." }));
  }
  $("intents-total").textContent = `(${r.intents.length} open)`;
  $("intents-count").textContent = r.intents.length ? String(r.intents.length) : "";
}

function intentItem(group, labels) {
  const node = $("intent-item").content.firstElementChild.cloneNode(true);
  node.dataset.intent = String(group.id);
  node.querySelector(".size").textContent = `${group.size} texts`;
  node.querySelector(".terms").textContent = group.terms.join(", ");
  if (group.nearest_label !== null) {
    node.querySelector(".near").textContent =
      `nearest label ${group.nearest_label} (similarity ${group.nearest_similarity.toFixed(2)})`;
  }
  const examples = node.querySelector(".examples");
  for (const text of group.examples) examples.append(el("li", { text, lang: langOf(text) }));
  const select = node.querySelector(".map-label");
  for (const label of labels) select.append(el("option", { value: label, text: label }));
  if (group.nearest_label !== null && labels.includes(group.nearest_label)) {
    select.value = group.nearest_label;
  }
  node.querySelector(".name-form").addEventListener("submit", (e) => {
    e.preventDefault();
    decideIntent(node, group, "name", node.querySelector(".new-label").value.trim());
  });
  node.querySelector(".map-form").addEventListener("submit", (e) => {
    e.preventDefault();
    decideIntent(node, group, "map", select.value);
  });
  node.querySelector(".dismiss").addEventListener("click", () => {
    decideIntent(node, group, "dismiss", null);
  });
  return node;
}

async function decideIntent(node, group, action, label) {
  const error = node.querySelector(".item-error");
  error.textContent = "";
  const controls = node.querySelectorAll("button, select, input");
  for (const c of controls) c.disabled = true;
  try {
    const r = await api("POST", `/review/intents/${group.id}`, { action, label });
    node.classList.add("done");
    const saved = node.querySelector(".saved");
    saved.hidden = false;
    saved.textContent = action === "dismiss"
      ? "dismissed"
      : `${r.intent.status} ${r.intent.label}: ${r.feedback_rows} texts labelled`;
  } catch (err) {
    error.textContent = "Not saved: " + err.message;
    for (const c of controls) c.disabled = false;
  }
}

// --- wiring -----------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("api-key").value.trim());
  });
  $("logout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    showLogin();
  });
  for (const b of document.querySelectorAll(".tab")) {
    b.addEventListener("click", () => show(b.dataset.view));
  }
  $("try-form").addEventListener("submit", tryText);
  $("filter-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.offset = 0;
    show(state.view);
  });
  $("queue-prev").addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadQueue();
  });
  $("queue-next").addEventListener("click", () => {
    state.offset += PAGE;
    loadQueue();
  });
  const key = sessionStorage.getItem(KEY);
  if (key !== null) signIn(key);
  else showLogin();
});
