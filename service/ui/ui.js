// The triage page: the review queue worked through the JSON API. Every piece of text from
// the service goes into the page as text (textContent), never as markup.
"use strict";

const LABELS = { SUPPORTED: "Supported", REFUTED: "Refuted", NOT_ENOUGH_INFO: "Not enough info" };
const KEY = "claimsieve-key";
const state = { key: sessionStorage.getItem(KEY), items: [], index: 0, drafts: new Map() };

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = { detail: text };
  }
  if (!response.ok) throw new Problem(response.status, data);
  return data;
}

function say(text, kind) {
  const box = $("message");
  box.textContent = text || "";
  box.className = kind || "";
  box.hidden = !text;
}

// Sign-in ------------------------------------------------------------------------------

async function signIn(key) {
  state.key = key;
  try {
    await api("GET", "/v1/agreement");
  } catch (error) {
    state.key = null;
    sessionStorage.removeItem(KEY);
    say(
      error.status === 403
        ? "This key may not review claims: sign in with a trainer key."
        : `Sign-in failed: ${error.message}`,
      "error",
    );
    return;
  }
  sessionStorage.setItem(KEY, key);
  say("");
  $("sign-in").hidden = true;
  $("tabs").hidden = false;
  show("queue");
  await loadCorpora();
  await loadQueue();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  state.key = null;
  state.items = [];
  $("tabs").hidden = true;
  $("queue").hidden = true;
  $("agreement").hidden = true;
  $("sign-in").hidden = false;
  $("key").value = "";
}

function show(tab) {
  $("queue").hidden = tab !== "queue";
  $("agreement").hidden = tab !== "agreement";
  $("tab-queue").classList.toggle("active", tab === "queue");
  $("tab-agreement").classList.toggle("active", tab === "agreement");
  if (tab === "agreement") loadAgreement();
}

// The queue ----------------------------------------------------------------------------

async function loadCorpora() {
  const select = $("f-corpus");
  try {
    const corpora = await api("GET", "/v1/corpora");
    for (const corpus of corpora) {
      const option = el("option", corpus.name);
      option.value = corpus.name;
      select.append(option);
    }
  } catch (error) {
    say(`Could not list corpora: ${error.message}`, "error");
  }
}

async function loadQueue() {
  const params = new URLSearchParams({ limit: "20" });
  if ($("f-corpus").value) params.set("corpus", $("f-corpus").value);
  if ($("f-verdict").value) params.set("verdict", $("f-verdict").value);
  if ($("f-since").value) params.set("since", `${$("f-since").value}T00:00:00Z`);
  try {
    const page = await api("GET", `/v1/review-queue?${params}`);
    state.items = page.items;
    state.index = 0;
    say("");
  } catch (error) {
    say(`Could not load the queue: ${error.message}`, "error");
    return;
  }
  renderList();
  render();
}

function renderList() {
  const list = $("queue-list");
  list.replaceChildren();
  state.items.forEach((item, index) => {
    const row = el("li", null, index === state.index ? "current" : "");
    if (item.done) row.classList.add("done");
    row.append(el("span", LABELS[item.claim.verdict] || "—", `verdict ${item.claim.verdict}`));
    row.append(el("span", item.claim.text, "text"));
    row.addEventListener("click", () => go(index));
    list.append(row);
  });
  $("queue-count").textContent = `${state.items.filter((i) => !i.done).length} to review`;
}

function draftOf(claimId) {
  if (!state.drafts.has(claimId)) {
    state.drafts.set(claimId, { label: null, corrected: "", note: "", evidence: new Set() });
  }
  return state.drafts.get(claimId);
}

// Text with the given [start, end) ranges marked; everything goes in as text.
function marked(text, ranges, cls) {
  const out = document.createDocumentFragment();
  let cursor = 0;
  for (const { start, end } of [...ranges].sort((a, b) => a.start - b.start)) {
    if (start < cursor) continue;
    out.append(document.createTextNode(text.slice(cursor, start)));
    out.append(el("mark", text.slice(start, end), cls));
    cursor = end;
  }
  out.append(document.createTextNode(text.slice(cursor)));
  return out;
}

function render() {
  const item = state.items[state.index];
  $("claim").hidden = !item;
  $("empty").hidden = Boolean(item) || !state.key;
  if (!item) return;
  const claim = item.claim;
  const draft = draftOf(claim.id);
  $("claim-position").textContent = `Claim ${state.index + 1} of ${state.items.length}`;
  $("claim-corpus").textContent = item.corpus;
  $("claim-version").textContent = claim.version;
  $("claim-text").textContent = claim.text;
  const verdict = $("claim-verdict");
  verdict.textContent = LABELS[claim.verdict] || "no verdict";
  verdict.className = `verdict ${claim.verdict}`;
  $("claim-confidence").textContent =
    claim.confidence === null ? "" : `confidence ${claim.confidence.toFixed(2)}`;
  const reasons = $("claim-reasons");
  reasons.replaceChildren();
  for (const reason of claim.reasons) {
    const row = el("li");
    row.append(el("code", reason.code), document.createTextNode(` ${reason.message}`));
    reasons.append(row);
  }
  $("prompt").textContent = item.prompt ? `Prompt: ${item.prompt}` : "";
  $("response").replaceChildren(marked(item.check_text || claim.source_text, claim.spans, "claim"));
  const deciding = new Set(claim.reasons.filter((r) => r.evidence).map((r) => r.evidence.passage_id));
  const evidence = $("evidence");
  evidence.replaceChildren();
  claim.evidence.forEach((passage, n) => {
    const row = el("li", null, deciding.has(passage.passage_id) || (!deciding.size && n === 0) ? "deciding" : "");
    const head = el("label", null, "passage-head");
    const box = el("input");
    box.type = "checkbox";
    box.checked = draft.evidence.has(passage.passage_id);
    box.addEventListener("change", () => {
      if (box.checked) draft.evidence.add(passage.passage_id);
      else draft.evidence.delete(passage.passage_id);
    });
    head.append(box, el("strong", passage.title), el("span", ` ${passage.stance} · similarity ${passage.similarity.toFixed(2)}`));
    row.append(head, el("p", null, "passage"));
    row.lastChild.append(marked(passage.text, [passage.span], "sentence"));
    evidence.append(row);
  });
  $("corrected").value = draft.corrected;
  $("note").value = draft.note;
  for (const button of document.querySelectorAll("[data-label]")) {
    button.classList.toggle("chosen", button.dataset.label === draft.label);
  }
  $("do-correct").disabled = !draft.label || item.done;
  $("do-confirm").disabled = Boolean(item.done) || !claim.verdict;
  renderList();
}

function go(index) {
  if (index < 0 || index >= state.items.length) return;
  state.index = index;
  render();
}

function nextOpen() {
  const after = state.items.findIndex((item, n) => n > state.index && !item.done);
  if (after >= 0) go(after);
  else if (state.items.every((item) => item.done)) loadQueue();
}

function choose(label) {
  const item = state.items[state.index];
  if (!item || item.done) return;
  draftOf(item.claim.id).label = label;
  render();
}

async function submit(action) {
  const item = state.items[state.index];
  if (!item || item.done) return;
  const claim = item.claim;
  const draft = draftOf(claim.id);
  draft.corrected = $("corrected").value;
  draft.note = $("note").value;
  const body = { action, expected_version: claim.version };
  if (action === "correct") {
    if (!draft.label) {
      say("Choose a label first (S, R or N).", "error");
      return;
    }
    body.label = draft.label;
    if (draft.corrected.trim()) body.corrected_text = draft.corrected.trim();
    if (draft.evidence.size) body.evidence_ids = [...draft.evidence];
  }
  if (draft.note.trim()) body.note = draft.note.trim();
  try {
    const saved = await api("POST", `/v1/claims/${encodeURIComponent(claim.id)}/reviews`, body);
    item.done = true;
    claim.version = saved.claim_version;
    state.drafts.delete(claim.id);
    say(`Saved: ${LABELS[saved.review.label]} (${saved.review.action}).`, "ok");
    nextOpen();
    render();
  } catch (error) {
    if (error.status === 409) {
      say(
        `Not saved: ${error.message.replace(/\.?$/, ".")} Nothing you typed is lost — press “Reload claim” to see ` +
          "what is there now, then save again.",
        "conflict",
      );
      offerReload(claim.id);
    } else {
      say(`Not saved: ${error.message}`, "error");
    }
  }
}

function offerReload(claimId) {
  const button = el("button", "Reload claim");
  button.type = "button";
  button.id = "reload";
  button.addEventListener("click", async () => {
    try {
      const fresh = await api("GET", `/v1/claims/${encodeURIComponent(claimId)}`);
      const item = state.items.find((i) => i.claim.id === claimId);
      if (item) item.claim = fresh;
      say(`Reloaded: the claim is at version ${fresh.version} (${fresh.review_state}).`, "ok");
      render();
    } catch (error) {
      say(`Could not reload the claim: ${error.message}`, "error");
    }
  });
  $("message").append(" ", button);
}

// Agreement ----------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function matrixPicture(confusion) {
  const labels = Object.keys(confusion);
  const cell = 90;
  const left = 150;
  const top = 60;
  const size = labels.length * cell;
  const picture = svg("svg", {
    width: left + size + 10,
    height: top + size + 10,
    role: "img",
    "aria-label": "confusion matrix: rows are trainers' labels, columns the model's verdicts",
  });
  const most = Math.max(1, ...labels.flatMap((g) => labels.map((p) => confusion[g][p])));
  picture.append(svg("text", { x: left + size / 2, y: 16, "text-anchor": "middle", class: "axis" }, "model verdict"));
  labels.forEach((predicted, column) => {
    picture.append(
      svg("text", { x: left + column * cell + cell / 2, y: top - 10, "text-anchor": "middle" }, LABELS[predicted] || predicted),
    );
  });
  labels.forEach((gold, row) => {
    picture.append(svg("text", { x: left - 8, y: top + row * cell + cell / 2, "text-anchor": "end" }, LABELS[gold] || gold));
    labels.forEach((predicted, column) => {
      const count = confusion[gold][predicted];
      const shade = count / most;
      picture.append(
        svg("rect", {
          x: left + column * cell,
          y: top + row * cell,
          width: cell - 2,
          height: cell - 2,
          fill: gold === predicted ? `rgba(46,125,50,${0.1 + 0.9 * shade})` : `rgba(198,40,40,${0.1 + 0.9 * shade})`,
        }),
      );
      picture.append(
        svg("text", { x: left + column * cell + cell / 2, y: top + row * cell + cell / 2 + 5, "text-anchor": "middle", class: "count" }, count),
      );
    });
  });
  return picture;
}

function fixed(value) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(2);
}

async function loadAgreement() {
  let report;
  try {
    report = await api("GET", "/v1/agreement");
  } catch (error) {
    say(`Could not load the agreement report: ${error.message}`, "error");
    return;
  }
  const model = report.model_vs_trainer;
  $("agreement-summary").textContent =
    `${report.reviewed_claims} reviewed claims · accuracy ${fixed(model.accuracy)} · macro-F1 ${fixed(model.macro_f1)} ` +
    "(rows: trainers' latest labels; columns: the model's verdicts)";
  $("matrix").replaceChildren(matrixPicture(model.confusion));
  const body = $("per-label").tBodies[0];
  body.replaceChildren();
  for (const [label, row] of Object.entries(model.per_label)) {
    const line = el("tr");
    for (const value of [LABELS[label] || label, fixed(row.precision), fixed(row.recall), fixed(row.f1), row.support]) {
      line.append(el("td", value));
    }
    body.append(line);
  }
  const pair = report.trainer_vs_trainer;
  $("kappa").textContent =
    `Trainer vs trainer: ${pair.doubly_reviewed} doubly reviewed claims, Cohen's kappa ${fixed(pair.cohen_kappa)}`;
}

// Keys ---------------------------------------------------------------------------------

function typing(target) {
  return ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
}

document.addEventListener("keydown", (event) => {
  if ($("queue").hidden || $("claim").hidden) return;
  if (typing(event.target)) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.closest("#claim")) {
      event.preventDefault();
      submit("correct");
    } else if (event.key === "Escape") {
      event.target.blur();
    }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const item = state.items[state.index];
  const draft = item && draftOf(item.claim.id);
  const actions = {
    y: () => submit("confirm"),
    s: () => choose("SUPPORTED"),
    r: () => choose("REFUTED"),
    n: () => choose("NOT_ENOUGH_INFO"),
    c: () => $("corrected").focus(),
    j: () => go(state.index + 1),
    k: () => go(state.index - 1),
    ArrowRight: () => go(state.index + 1),
    ArrowLeft: () => go(state.index - 1),
    Enter: () => draft && draft.label && submit("correct"),
  };
  const act = actions[event.key.length === 1 ? event.key.toLowerCase() : event.key];
  if (act) {
    event.preventDefault();
    act();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("key").value.trim());
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadQueue();
  });
  $("sign-out").addEventListener("click", signOut);
  $("tab-queue").addEventListener("click", () => show("queue"));
  $("tab-agreement").addEventListener("click", () => show("agreement"));
  $("do-confirm").addEventListener("click", () => submit("confirm"));
  $("do-correct").addEventListener("click", () => submit("correct"));
  $("do-next").addEventListener("click", () => go(state.index + 1));
  $("do-prev").addEventListener("click", () => go(state.index - 1));
  for (const button of document.querySelectorAll("[data-label]")) {
    button.addEventListener("click", () => choose(button.dataset.label));
  }
  for (const [id, field] of [["corrected", "corrected"], ["note", "note"]]) {
    $(id).addEventListener("input", () => {
      const item = state.items[state.index];
      if (item) draftOf(item.claim.id)[field] = $(id).value;
    });
  }
  if (state.key !== null) signIn(state.key);
});
