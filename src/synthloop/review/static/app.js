// synthloop review: the page over /api/*. Every piece of record text goes in with textContent
// (never innerHTML), so a record that holds HTML or a <script> tag shows as text.
"use strict";
const FACETS = ["round", "kind", "task", "topic", "skill", "persona", "stage", "reason"];
const LABELS = {round: "round", kind: "pipeline status", task: "task", topic: "topic", skill: "skill", persona: "persona", stage: "rejected at stage", reason: "rejection reason"};
const PAGE = 50;
const S = {offset: 0, total: 0, rows: [], cur: -1, view: null, meta: null, lastBatch: ""};
const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}

async function api(path, body) {
  const opts = body === undefined ? {} : {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const r = await fetch(path, opts);
  const data = await r.json();
  if (!r.ok) { toast(data.error || r.statusText, true); throw new Error(data.error); }
  return data;
}

function toast(text, error) {
  const t = $("toast"); t.textContent = text; t.className = error ? "error" : ""; t.hidden = false;
  clearTimeout(toast.timer); toast.timer = setTimeout(() => { t.hidden = true; }, 2600);
}

function filters() {
  const f = {};
  for (const k of [...FACETS, "min_score", "max_score", "reviewed", "q"]) { const v = $(k).value; if (v !== "") f[k] = v; }
  return f;
}

function saveHash() { const p = new URLSearchParams(filters()); if (S.offset) p.set("offset", S.offset); history.replaceState(null, "", "#" + p.toString()); }
function loadHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of [...FACETS, "min_score", "max_score", "reviewed", "q"]) if (p.has(k)) $(k).value = p.get(k);
  S.offset = parseInt(p.get("offset") || "0", 10) || 0;
}

async function loadMeta() {
  const m = S.meta = await api("/api/meta");
  $("run-name").textContent = m.name;
  document.title = m.name + " · synthloop review";
  $("counts").textContent = `${m.total.toLocaleString()} records · ${m.reviewed.toLocaleString()} reviewed · as ${m.reviewer} · judge threshold ${m.min_score}`;
  const box = $("facet-selects");
  if (!box.childElementCount) {
    for (const k of FACETS) {
      const sel = el("select", {id: k}, el("option", {value: ""}, "any"));
      for (const [v, n] of m.facets[k] || []) sel.append(el("option", {value: String(v)}, `${v} (${n})`));
      sel.addEventListener("change", () => refresh(true));
      box.append(el("label", {}, LABELS[k], sel));
    }
  }
}

async function refresh(resetOffset, keepCurrent) {
  if (resetOffset) S.offset = 0;
  saveHash();
  const p = new URLSearchParams({...filters(), offset: S.offset, limit: PAGE});
  const data = await api("/api/records?" + p.toString());
  const curId = keepCurrent && S.rows[S.cur] ? S.rows[S.cur].id : null;
  S.total = data.total; S.rows = data.rows;
  $("match-count").textContent = data.total.toLocaleString();
  $("page-info").textContent = data.total ? `${S.offset + 1}–${S.offset + data.rows.length} of ${data.total.toLocaleString()}` : "no records match";
  renderList();
  if (curId !== null) { const i = S.rows.findIndex((r) => r.id === curId); select(i >= 0 ? i : Math.min(S.cur, S.rows.length - 1), true); }
  else if (S.cur >= S.rows.length) S.cur = -1;
}

function reviewBadges(r) {
  const out = el("span", {});
  if (r.label) out.append(el("span", {class: "badge " + r.label}, r.label === "accepted" ? "✓ human" : "✗ human"));
  if (r.flagged) out.append(el("span", {class: "badge flag"}, "flag"));
  if (r.edited) out.append(el("span", {class: "badge edit"}, "edited"));
  if (r.noted) out.append(el("span", {class: "badge"}, "note"));
  return out;
}

function renderList() {
  const body = $("list").tBodies[0]; body.replaceChildren();
  S.rows.forEach((r, i) => {
    const tr = el("tr", {"data-id": r.id, onclick: () => select(i)},
      el("td", {}, el("span", {class: "dot " + r.kind, title: "pipeline: " + r.kind})),
      el("td", {}, el("div", {class: "id"}, r.id), el("div", {class: "preview"}, r.preview)),
      el("td", {}, `${r.task} · ${r.topic} · ${r.skill}`, r.stage ? el("div", {class: "muted"}, `${r.stage}: ${r.reason}`) : null),
      el("td", {}, r.score === null ? "–" : String(r.score)),
      el("td", {}, reviewBadges(r)));
    if (i === S.cur) tr.classList.add("current");
    body.append(tr);
  });
}

async function select(i, quiet) {
  if (i < 0 || i >= S.rows.length) { if (!quiet) { S.cur = -1; $("detail").replaceChildren(el("p", {class: "muted"}, "No record selected.")); } return; }
  S.cur = i;
  for (const tr of $("list").tBodies[0].rows) tr.classList.toggle("current", tr.dataset.id === S.rows[i].id);
  const tr = $("list").tBodies[0].rows[i]; if (tr) tr.scrollIntoView({block: "nearest"});
  S.view = await api("/api/record/" + encodeURIComponent(S.rows[i].id));
  renderDetail();
}

function block(cls, title, text, edited) {
  return el("div", {class: cls}, el("div", {class: "role"}, title, edited ? el("span", {class: "edited-mark"}, "edited by a reviewer") : null), el("pre", {}, text));
}

function renderDetail() {
  const v = S.view, r = v.record, st = v.state || {}, edits = st.edits || {};
  const d = $("detail"); d.replaceChildren();
  d.append(el("h2", {}, `${r.task} · ${r.topic} · ${r.skill}`), el("div", {class: "muted"}, `${r.id} · round ${r.round} · persona: ${r.persona} · ${r.difficulty}`));
  const pipe = r.status === "rejected" ? `rejected by the pipeline at ${r.rejected_stage}: ${r.rejected_reason}` : "accepted by the pipeline";
  d.append(el("div", {class: "state " + (st.label || "")}, pipe, el("br"),
    st.label ? `human: ${st.label} by ${st.reviewer}${st.reason ? " — " + st.reason : ""}` : "human: not reviewed",
    st.flagged ? el("span", {class: "badge flag"}, " flagged") : null));
  d.append(el("div", {class: "actions"},
    el("button", {class: "ok", type: "button", onclick: () => decide("accept")}, "accept (a)"),
    el("button", {class: "bad", type: "button", onclick: rejectPrompt}, "reject (r)"),
    el("button", {type: "button", onclick: editPrompt}, "edit (e)"),
    el("button", {type: "button", onclick: toggleFlag}, st.flagged ? "unflag (f)" : "flag (f)"),
    el("button", {type: "button", onclick: notePrompt}, "note (n)")));
  if (r.messages.length) {
    d.append(el("h3", {}, "Conversation"));
    r.messages.forEach((m, i) => { const key = `messages.${i}.content`; d.append(block("msg " + m.role, m.role, key in edits ? edits[key] : m.content, key in edits)); });
  }
  const fields = ["explanation", "problem", "reasoning", "answer", "tests", "text"].filter((k) => r[k] || edits[k]);
  if (fields.length) {
    d.append(el("h3", {}, "Reasoning, answer and tests"));
    for (const k of fields) d.append(block("field", k, k in edits ? edits[k] : r[k], k in edits));
  }
  d.append(el("h3", {}, "Verdicts"));
  if (!r.verdicts.length) d.append(el("p", {class: "muted"}, "none"));
  for (const x of r.verdicts) d.append(el("div", {class: "verdict"}, el("span", {class: x.ok ? "ok" : "no"}, x.ok ? "pass " : "fail "), `${x.stage} / ${x.name}`, x.score === null ? "" : ` · score ${x.score}`, el("div", {class: "muted"}, x.reason)));
  const L = v.lineage;
  d.append(el("h3", {}, "Lineage"), kv([["teacher", L.teacher], ["params", JSON.stringify(L.params)], ["prompt template", `${L.template} ${L.template_hash}`],
    ["parents", L.parents.length ? L.parents.join(", ") : "none"], ["round", L.round], ["cost", `$${Number(L.cost_usd).toFixed(5)} · ${L.tokens} tokens · ${L.requests} requests`], ["content hash", L.content_hash]]));
  if ((st.notes || []).length) { d.append(el("h3", {}, "Notes")); for (const n of st.notes) d.append(el("p", {}, el("b", {}, n.reviewer + ": "), n.text, el("span", {class: "muted"}, "  " + n.time))); }
  if (v.history.length) {
    d.append(el("h3", {}, "History"));
    const ul = el("ul", {class: "history"});
    for (const h of v.history) ul.append(el("li", {class: h.undone ? "undone" : ""}, `${h.time} ${h.reviewer}: ${h.action}${h.reason ? " — " + h.reason : ""}${h.source !== "app" ? " (" + h.source + ")" : ""}`));
    d.append(ul);
  }
}

function kv(pairs) { return el("table", {class: "kv"}, ...pairs.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", {}, String(v))))); }

function currentId() { return S.rows[S.cur] ? S.rows[S.cur].id : null; }

async function decide(action, extra) {
  const id = currentId(); if (!id) return;
  const res = await api("/api/decide", {ids: [id], action, ...(extra || {})});
  S.lastBatch = res.batch; $("last-action").textContent = `${action} ${id}`;
  await refresh(false, true);
  if ((action === "accept" || action === "reject") && S.cur < S.rows.length - 1 && $("reviewed").value !== "no") await select(S.cur + 1);
  else if ($("reviewed").value === "no") await select(Math.min(S.cur, S.rows.length - 1));
  loadMeta(); loadAgreement();
}

function modal(title, body, onOk) {
  $("modal-title").textContent = title; $("modal-body").replaceChildren(...body); $("modal").hidden = false;
  const first = $("modal-body").querySelector("input,textarea"); if (first) first.focus();
  $("modal-form").onsubmit = async (ev) => { ev.preventDefault(); if (await onOk() !== false) closeModal(); };
}
function closeModal() { $("modal").hidden = true; }

function rejectPrompt() {
  if (!currentId()) return;
  const input = el("input", {type: "text", id: "reason-input", placeholder: "what is wrong (required)", autocomplete: "off"});
  modal("Reject " + currentId(), [el("label", {for: "reason-input"}, "reason"), input], async () => {
    if (!input.value.trim()) { toast("a rejection needs a reason", true); return false; }
    closeModal(); await decide("reject", {reason: input.value.trim()});
  });
}

function notePrompt() {
  if (!currentId()) return;
  const input = el("input", {type: "text", id: "note-input", placeholder: "a note for other reviewers", autocomplete: "off"});
  modal("Note on " + currentId(), [input], async () => { if (!input.value.trim()) return false; closeModal(); await decide("note", {reason: input.value.trim()}); });
}

function editPrompt() {
  if (!S.view || !currentId()) return;
  const r = S.view.record, edits = (S.view.state || {}).edits || {}, areas = [];
  r.messages.forEach((m, i) => { const key = `messages.${i}.content`; if (m.role !== "system") areas.push([key, `${m.role} message ${i}`, key in edits ? edits[key] : m.content]); });
  for (const k of ["explanation", "problem", "reasoning", "answer", "tests", "text"]) if (r[k] || edits[k]) areas.push([k, k, k in edits ? edits[k] : r[k]]);
  const body = [], tas = [];
  areas.forEach(([key, label, value], i) => { const ta = el("textarea", {id: "edit-" + i, "data-key": key}); ta.value = value; tas.push([key, ta, value]); body.push(el("label", {for: "edit-" + i}, label), ta); });
  body.push(el("div", {class: "muted"}, "Ctrl+Enter saves. The shard is never changed: the edit is stored as a decision."));
  modal("Edit " + currentId(), body, async () => {
    const changed = {}; for (const [key, ta, old] of tas) if (ta.value !== old) changed[key] = ta.value;
    if (!Object.keys(changed).length) return true;
    closeModal(); await decide("edit", {edits: changed});
  });
}

async function toggleFlag() { if (!S.view) return; await decide((S.view.state || {}).flagged ? "unflag" : "flag"); }

function bulk(action) {
  const f = filters(), n = S.total;
  if (!n) { toast("nothing matches"); return; }
  const body = [el("p", {}, `${action} all ${n.toLocaleString()} records matching the current filters? (undo reverses it)`)];
  let input = null;
  if (action === "reject") { input = el("input", {type: "text", id: "bulk-reason", placeholder: "reason (required)"}); body.push(input); }
  modal(`Bulk ${action}`, body, async () => {
    if (input && !input.value.trim()) { toast("a rejection needs a reason", true); return false; }
    closeModal();
    const res = await api("/api/bulk", {filters: f, action, reason: input ? input.value.trim() : ""});
    S.lastBatch = res.batch; $("last-action").textContent = `bulk ${action}: ${res.count} records`;
    toast(`${action}: ${res.count} records`); await refresh(false, true); if (S.cur >= 0) await select(S.cur, true); loadMeta();
  });
  $("modal-ok").focus();
}

async function undo() {
  const res = await api("/api/undo", {});
  if (!res.count) { toast("nothing to undo"); return; }
  $("last-action").textContent = `undid ${res.count} record(s)`; toast(`undone: ${res.count} record(s)`);
  await refresh(false, true); if (S.cur >= 0) await select(S.cur, true); loadMeta();
}

async function loadAgreement() {
  const a = await api("/api/agreement"), box = $("agreement"); box.replaceChildren();
  const fmt = (x) => x === null || x === undefined ? "–" : Number(x).toFixed(2);
  const all = (a.judge.all || [])[0];
  box.append(el("div", {}, all ? `judge vs human: κ ${fmt(all.kappa)}, accuracy ${fmt(all.accuracy)} (n=${all.n})` : "judge vs human: no reviewed judged records yet"));
  for (const g of ["rubric", "skill"]) for (const x of a.judge[g] || []) box.append(el("div", {class: "agree-row"}, el("b", {}, `${g} ${x.group}`), ` κ ${fmt(x.kappa)} · acc ${fmt(x.accuracy)} · n=${x.n}`));
  const rv = a.reviewers;
  box.append(el("div", {}, `reviewers: ${rv.double_reviewed} double-reviewed; κ ${fmt(rv.cohen_kappa)}, α ${fmt(rv.krippendorff_alpha)}`));
}

function move(delta) {
  const i = S.cur + delta;
  if (i >= 0 && i < S.rows.length) return select(i);
  if (i >= S.rows.length && S.offset + PAGE < S.total) { S.offset += PAGE; return refresh(false).then(() => select(0)); }
  if (i < 0 && S.offset > 0) { S.offset = Math.max(0, S.offset - PAGE); return refresh(false).then(() => select(S.rows.length - 1)); }
}

function onKey(ev) {
  if (!$("modal").hidden) {
    if (ev.key === "Escape") closeModal();
    else if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("modal-form").requestSubmit();
    return;
  }
  const t = ev.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) { if (ev.key === "Escape") t.blur(); return; }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const keys = {j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1), a: () => decide("accept"), r: rejectPrompt,
    e: editPrompt, f: toggleFlag, n: notePrompt, u: undo, A: () => bulk("accept"), R: () => bulk("reject"), "/": () => $("q").focus()};
  const fn = keys[ev.key]; if (fn) { ev.preventDefault(); fn(); }
}

async function start() {
  await loadMeta(); loadHash();
  for (const id of ["min_score", "max_score", "reviewed"]) $(id).addEventListener("change", () => refresh(true));
  let timer = null; $("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => refresh(true), 200); });
  $("q").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { clearTimeout(timer); refresh(true); } });
  $("clear").addEventListener("click", () => { for (const k of [...FACETS, "min_score", "max_score", "reviewed", "q"]) $(k).value = ""; refresh(true); });
  $("prev-page").addEventListener("click", () => { S.offset = Math.max(0, S.offset - PAGE); refresh(false); });
  $("next-page").addEventListener("click", () => { if (S.offset + PAGE < S.total) { S.offset += PAGE; refresh(false); } });
  $("bulk-accept").addEventListener("click", () => bulk("accept"));
  $("bulk-reject").addEventListener("click", () => bulk("reject"));
  $("bulk-flag").addEventListener("click", () => bulk("flag"));
  $("undo").addEventListener("click", undo);
  $("modal-cancel").addEventListener("click", closeModal);
  document.addEventListener("keydown", onKey);
  await refresh(false);
  loadAgreement(); setInterval(loadAgreement, 15000);
}
start();
