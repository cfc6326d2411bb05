// GSCo hub page: sign in with a bearer token, ask for a diagnosis, review it.
// Plain browser JavaScript, no build step and nothing fetched from outside the hub.
// Every value from the API is put on the page as text (never as HTML).
"use strict";

const TOKEN_KEY = "gsco-hub-token"; // sessionStorage only: gone when the tab closes, never in a URL
const PREVIEW_TYPES = ["image/png", "image/jpeg"];
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);
const state = { tasks: [], decision: null, previewUrl: null, caseUrls: [] };

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

// The API's error body is {"error": {"code", "message"}}; anything else gets a plain fallback.
async function errorText(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (parseError) {
    body = null;
  }
  if (body && body.error && body.error.message) {
    return `${body.error.message} (${body.error.code || response.status})`;
  }
  return `The hub answered ${response.status} ${response.statusText || ""}`.trim();
}

// One way to call the API: the bearer token in the header; 401 signs the user out.
async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, { Authorization: `Bearer ${token()}` });
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
  } catch (networkError) {
    throw new Error("The hub cannot be reached. Check the connection and try again.");
  }
  if (!response.ok) {
    const message = await errorText(response);
    if (response.status === 401) {
      signOut();
    }
    throw new Error(message);
  }
  return response;
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  $("sign-in").hidden = false;
  $("ask").hidden = true;
  $("answer").hidden = true;
  $("sign-out").hidden = true;
  $("token").value = "";
}

async function signIn(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  showError("");
  try {
    const body = await (await api("/v1/tasks")).json();
    state.tasks = body.tasks;
  } catch (error) {
    signOut();
    showError(error.message);
    return;
  }
  fillTasks();
  $("sign-in").hidden = true;
  $("ask").hidden = false;
  $("sign-out").hidden = false;
  $("task").focus();
}

function option(value, text) {
  const node = document.createElement("option");
  node.value = value;
  node.textContent = text;
  return node;
}

function fillTasks() {
  const select = $("task");
  select.replaceChildren(...state.tasks.map((t) => option(t.task_id, `${t.task_id} (${t.modality})`)));
  if (!state.tasks.length) {
    showError("No task is being served yet: ask the hub administrator to approve a specialist.");
  }
  describeTask();
}

function currentTask() {
  return state.tasks.find((t) => t.task_id === $("task").value);
}

function describeTask() {
  const task = currentTask();
  $("task-info").textContent = task
    ? `Labels: ${task.labels.join(", ")}. Serving ${task.models.length} specialist(s).`
    : "";
}

function isDicom(file) {
  return !PREVIEW_TYPES.includes(file.type);
}

function preview(file) {
  const img = $("preview-img");
  $("preview").hidden = false;
  $("preview-name").textContent = file.name;
  if (isDicom(file)) {
    img.hidden = true;
    img.removeAttribute("src");
    $("preview-none").hidden = false;
    return;
  }
  $("preview-none").hidden = true;
  if (state.previewUrl) {
    URL.revokeObjectURL(state.previewUrl);
  }
  state.previewUrl = URL.createObjectURL(file);
  img.src = state.previewUrl;
  img.hidden = false;
}

function percent(value) {
  return `${(100 * value).toFixed(1)} %`;
}

function short(text) {
  return text ? String(text).replace(/^sha256:/, "").slice(0, 12) : "";
}

async function diagnose(event) {
  event.preventDefault();
  showError("");
  const file = $("image").files[0];
  if (!file) {
    showError("Choose an image first.");
    return;
  }
  const form = new FormData();
  form.append("image", file, file.name);
  form.append("task_id", $("task").value);
  form.append("k", $("k").value);
  form.append("generalist", $("generalist").checked ? "true" : "false");
  $("diagnose").disabled = true;
  $("busy").textContent = "Asking the specialists...";
  try {
    const decision = await (await api("/v1/diagnoses", { method: "POST", body: form })).json();
    await showDecision(decision);
  } catch (error) {
    showError(error.message);
  } finally {
    $("diagnose").disabled = false;
    $("busy").textContent = "";
  }
}

function sentence(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : "";
}

async function showDecision(d) {
  state.decision = d;
  const notice = sentence(d.notice || "decision support, not for use without clinician review");
  $("answer-notice").textContent = d.ai_label ? `${notice}. ${sentence(d.ai_label)}.` : `${notice}.`;
  $("result-label").textContent = d.label;
  $("result-confidence").textContent = percent(d.confidence);
  const withoutGeneralist = d.no_generalist || !d.generalist_used;
  const saysIt = /no generalist/i.test(d.arbiter);
  $("result-arbiter").textContent = withoutGeneralist && !saysIt ? `${d.arbiter} (no generalist)` : d.arbiter;
  $("no-generalist").hidden = !withoutGeneralist;
  $("no-generalist").textContent =
    "No generalist took part: the specialists' votes and the similar cases decided.";
  $("low-confidence").hidden = !d.low_confidence;
  drawVotes(d.specialists);
  fillModels(d.specialists);
  $("generalist-text").textContent = d.generalist_text || "No generalist answered for this image.";
  $("notes").replaceChildren(
    ...(d.notes || []).map((note) => {
      const item = document.createElement("li");
      item.textContent = note;
      return item;
    }),
  );
  $("decision-id").textContent = d.id;
  $("decision-at").textContent = d.created_at;
  const labels = (currentTask() || { labels: [] }).labels;
  $("review-label").replaceChildren(...labels.map((l) => option(l, l)));
  $("review-label").value = labels.find((l) => l !== d.label) || d.label;
  $("review-status").textContent = "";
  $("confirm").disabled = false;
  $("override").disabled = false;
  $("answer").hidden = false;
  $("answer-title").focus();
  await showCases(d.similar_cases || []);
}

// One row per specialist: a bar for its probability of each label (SVG, no library).
function drawVotes(specialists) {
  const labels = (currentTask() || { labels: [] }).labels;
  const rowH = 22;
  const labelW = 190;
  const barW = 320;
  const rows = [];
  specialists.forEach((s) => {
    rows.push({ head: `${s.model_name} v${s.version}: ${s.label}` });
    labels.forEach((label) => rows.push({ label, p: (s.probabilities || {})[label] || 0, chosen: label === s.label }));
  });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", String(labelW + barW + 70));
  svg.setAttribute("height", String(rows.length * rowH + 4));
  svg.setAttribute("aria-hidden", "true");
  rows.forEach((row, i) => {
    const y = i * rowH + 2;
    const text = document.createElementNS(SVG, "text");
    text.setAttribute("x", row.head ? "0" : "16");
    text.setAttribute("y", String(y + 15));
    text.setAttribute("class", row.head ? "vote-head" : "vote-label");
    text.textContent = row.head || row.label;
    svg.appendChild(text);
    if (row.head) {
      return;
    }
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", String(labelW));
    bar.setAttribute("y", String(y + 3));
    bar.setAttribute("height", "14");
    bar.setAttribute("width", String(Math.max(1, row.p * barW)));
    bar.setAttribute("class", row.chosen ? "bar chosen" : "bar");
    svg.appendChild(bar);
    const value = document.createElementNS(SVG, "text");
    value.setAttribute("x", String(labelW + barW + 6));
    value.setAttribute("y", String(y + 15));
    value.setAttribute("class", "vote-value");
    value.textContent = percent(row.p);
    svg.appendChild(value);
  });
  $("votes").replaceChildren(svg);
  $("votes-caption").textContent = specialists
    .map((s) => `${s.model_name} v${s.version} votes ${s.label} (${percent(s.probability)})`)
    .join("; ");
}

function cell(text, title) {
  const node = document.createElement("td");
  node.textContent = text;
  if (title) {
    node.title = title;
  }
  return node;
}

function fillModels(specialists) {
  $("models").replaceChildren(
    ...specialists.map((s) => {
      const row = document.createElement("tr");
      row.append(
        cell(s.model_name),
        cell(s.version),
        cell(s.backbone),
        cell(short(s.digest), s.digest),
        cell(short(s.site_fingerprint), s.site_fingerprint),
      );
      return row;
    }),
  );
}

// Thumbnails need the bearer token, so they are fetched as blobs rather than linked.
async function showCases(cases) {
  state.caseUrls.forEach((url) => URL.revokeObjectURL(url));
  state.caseUrls = [];
  const list = $("cases");
  list.replaceChildren();
  if (!cases.length) {
    const item = document.createElement("li");
    item.textContent = "No similar cases (the hub has no case library for this task).";
    list.appendChild(item);
    return;
  }
  const pending = [];
  for (const c of cases) {
    const item = document.createElement("li");
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.alt = `Reference case ${c.case_id}, labelled ${c.label}`;
    img.width = 96;
    img.height = 96;
    const caption = document.createElement("figcaption");
    caption.textContent = `${c.label}, similarity ${c.similarity.toFixed(3)}`;
    figure.append(img, caption);
    item.appendChild(figure);
    list.appendChild(item);
    pending.push({ c, img, caption });
  }
  // The whole list is shown first; the thumbnails fill in as they arrive.
  for (const { c, img, caption } of pending) {
    try {
      const blob = await (await api(c.thumbnail_url)).blob();
      img.src = URL.createObjectURL(blob);
      state.caseUrls.push(img.src);
    } catch (error) {
      caption.textContent += " (thumbnail unavailable)";
    }
  }
}

async function review(action) {
  const d = state.decision;
  const body = {
    action,
    label: action === "confirm" ? d.label : $("review-label").value,
    comment: $("review-comment").value,
  };
  showError("");
  try {
    await api(`/v1/diagnoses/${encodeURIComponent(d.id)}/review`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (error) {
    showError(error.message);
    return;
  }
  $("review-status").textContent =
    action === "confirm" ? `Confirmed: ${body.label}. Recorded in the audit trail.`
      : `Overridden: ${body.label}. Recorded in the audit trail.`;
  $("confirm").disabled = true;
  $("override").disabled = true;
}

function chooseFile(file) {
  const transfer = new DataTransfer();
  transfer.items.add(file);
  $("image").files = transfer.files;
  preview(file);
}

function wire() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value.trim());
  });
  $("sign-out").addEventListener("click", () => {
    showError("");
    signOut();
  });
  $("task").addEventListener("change", describeTask);
  $("image").addEventListener("change", () => {
    if ($("image").files[0]) {
      preview($("image").files[0]);
    }
  });
  const drop = $("drop");
  ["dragenter", "dragover"].forEach((name) =>
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files[0]) {
      chooseFile(event.dataTransfer.files[0]);
    }
  });
  $("ask-form").addEventListener("submit", diagnose);
  $("confirm").addEventListener("click", () => review("confirm"));
  $("override").addEventListener("click", () => review("override"));
  $("answer-title").tabIndex = -1;
  if (token()) {
    signIn(token());
  }
}

wire();
