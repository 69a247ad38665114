/* The sandbox EHR: picks a patient, fires patient-view and order-select at AIMSS CDS, shows the
 * cards as a clinician sees them, and sends feedback. Every call carries a JWT signed here with
 * WebCrypto (ES384: ECDSA P-384 / SHA-384), so the service's real JWT checks run. */
"use strict";

const PATIENT_VIEW = "aimss-patient-view";
const ORDER_SELECT = "aimss-order-select";
const USER = "Practitioner/sandbox-clinician";
const INDICATOR_LABEL = { critical: "Critical", warning: "Warning", info: "Info" };
/* A grouped card lists its recommendations, and each suggestion names its own (cds_service/clinical/cards.py). */
const RECOMMENDATIONS = "org.example.aimss-cds.recommendations";
const RECOMMENDATION = "org.example.aimss-cds.recommendation";

const state = { config: null, key: null, kid: null, patients: [], patient: null };
const $ = (id) => document.getElementById(id);

/* ---- signing --------------------------------------------------------------------------- */

function base64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const encodeJson = (value) => base64url(new TextEncoder().encode(JSON.stringify(value)));

async function loadSigningKey() {
  const jwk = await (await fetch("/dev-signing-key.json")).json();
  state.kid = jwk.kid;
  state.key = await crypto.subtle.importKey(
    "jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d },
    { name: "ECDSA", namedCurve: "P-384" }, false, ["sign"]);
}

/** A CDS Client JWT: aud is the exact URL called; valid 5 minutes; a fresh jti each call. */
async function signFor(audience) {
  const iat = Math.floor(Date.now() / 1000);
  const header = encodeJson({ alg: "ES384", typ: "JWT", kid: state.kid });
  const payload = encodeJson({
    iss: state.config.issuer, aud: audience, iat, exp: iat + 300, jti: crypto.randomUUID(),
  });
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-384" }, state.key, new TextEncoder().encode(`${header}.${payload}`));
  return `${header}.${payload}.${base64url(signature)}`;
}

/* ---- calls ----------------------------------------------------------------------------- */

async function callService(method, path, body) {
  const url = state.config.cdsBaseUrl + path;
  const headers = { Accept: "application/json", Authorization: `Bearer ${await signFor(url)}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const started = performance.now();
  let response;
  try {
    response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    logCall(method, path, "network error", started);
    throw error;
  }
  logCall(method, path, response.status, started);
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

function logCall(method, path, status, started) {
  const item = document.createElement("li");
  const ms = Math.round(performance.now() - started);
  item.textContent = `${new Date().toLocaleTimeString()}  ${method} ${path} → ${status} (${ms} ms)`;
  $("call-log").prepend(item);
}

/* ---- patients and hooks ---------------------------------------------------------------- */

function renderPatientList() {
  const list = $("patient-list");
  list.replaceChildren();
  for (const patient of state.patients) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "patient";
    button.dataset.patientId = patient.id;
    button.innerHTML = `<span class="name">${escapeHtml(patient.name)}</span>` +
      `<span class="story">${escapeHtml(patient.story)}</span>`;
    button.addEventListener("click", () => openChart(patient));
    item.append(button);
    list.append(item);
  }
}

async function openChart(patient) {
  state.patient = patient;
  for (const button of document.querySelectorAll(".patient")) {
    button.setAttribute("aria-current", String(button.dataset.patientId === patient.id));
  }
  $("pick-hint").hidden = true;
  $("banner").hidden = false;
  $("patient-name").textContent = patient.name;
  $("patient-meta").textContent = `${patient.gender} · born ${patient.birthDate} · FHIR id ${patient.id}`;
  $("patient-story").textContent = patient.story;
  $("pv-panel").hidden = false;
  $("order-panel").hidden = false;
  renderDraftChoices(patient);
  clearCards($("os-cards"));
  await fireHook($("pv-cards"), PATIENT_VIEW, {
    hookInstance: crypto.randomUUID(),
    hook: "patient-view",
    fhirServer: state.config.fhirServer,
    context: { patientId: patient.id, userId: USER },
  });
}

function renderDraftChoices(patient) {
  const select = $("draft-select");
  select.replaceChildren();
  for (const draft of patient.drafts) {
    const option = document.createElement("option");
    option.value = draft.id;
    option.textContent = draft.label;
    select.append(option);
  }
  const none = patient.drafts.length === 0;
  $("order-form").hidden = none;
  $("no-drafts").hidden = !none;
}

async function selectOrder(event) {
  event.preventDefault();
  const patient = state.patient;
  const draft = patient.drafts.find((d) => d.id === $("draft-select").value);
  await fireHook($("os-cards"), ORDER_SELECT, {
    hookInstance: crypto.randomUUID(),
    hook: "order-select",
    fhirServer: state.config.fhirServer,
    context: {
      patientId: patient.id,
      userId: USER,
      selections: [`MedicationRequest/${draft.id}`],
      draftOrders: { resourceType: "Bundle", entry: [{ resource: draft.resource }] },
    },
  });
}

function clearCards(container) {
  container.replaceChildren();
  container.dataset.state = "idle";
}

async function fireHook(container, serviceId, body) {
  container.dataset.state = "loading";
  container.dataset.patient = body.context.patientId;
  container.replaceChildren(note("Asking AIMSS CDS…"));
  try {
    const { status, json } = await callService("POST", `/cds-services/${serviceId}`, body);
    if (body.context.patientId !== state.patient.id) return; // the user moved on
    if (status !== 200) {
      container.replaceChildren(note(`The CDS service answered HTTP ${status}.`, "error"));
      container.dataset.state = "error";
      return;
    }
    const cards = json.cards || [];
    container.replaceChildren(...(cards.length ? cards.map((c, i) => renderCard(c, serviceId, i === 0))
      : [note("No cards: nothing to suggest for this patient.")]));
    container.dataset.count = String(cards.length);
    container.dataset.state = "done";
  } catch (error) {
    container.replaceChildren(note("The CDS service could not be reached.", "error"));
    container.dataset.state = "error";
  }
}

function note(text, kind = "empty") {
  const p = document.createElement("p");
  p.className = kind;
  p.textContent = text;
  return p;
}

/* ---- cards ----------------------------------------------------------------------------- */

function renderCard(card, serviceId, open) {
  const article = document.createElement("article");
  article.className = `card card--${card.indicator}`;
  article.dataset.topic = card.source.topic ? card.source.topic.code : "";
  article.dataset.cardUuid = card.uuid || "";
  const held = (card.extension && card.extension[RECOMMENDATIONS]) || [];
  article.dataset.recommendations = held.map((coding) => coding.code).join(" ");

  const header = document.createElement("header");
  header.innerHTML = `<span class="badge">${escapeHtml(INDICATOR_LABEL[card.indicator] || card.indicator)}</span>` +
    `<h3>${escapeHtml(card.summary)}</h3>`;
  article.append(header);
  if (held.length > 1 || (held.length === 1 && held[0].code !== article.dataset.topic)) {
    const chips = document.createElement("ul");
    chips.className = "recommendations";
    chips.setAttribute("aria-label", "Recommendations on this card");
    for (const coding of held) {
      const chip = document.createElement("li");
      chip.textContent = coding.display || coding.code;
      chip.dataset.code = coding.code;
      chips.append(chip);
    }
    article.append(chips);
  }

  if (card.suggestions) {
    const suggestions = document.createElement("div");
    suggestions.className = "suggestions";
    for (const suggestion of card.suggestions) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = suggestion.isRecommended ? "suggestion primary" : "suggestion";
      button.dataset.suggestionUuid = suggestion.uuid || "";
      const of = suggestion.extension && suggestion.extension[RECOMMENDATION];
      if (of) {
        button.dataset.recommendation = of.code;
        button.title = `For: ${of.display || of.code}`;
      }
      button.textContent = suggestion.label;
      button.addEventListener("click", () => acceptSuggestion(card, suggestion, button, serviceId));
      suggestions.append(button);
    }
    article.append(suggestions);
  }

  if (card.detail) {
    const toggle = document.createElement("details");
    toggle.className = "detail-toggle";
    toggle.open = open;
    const label = document.createElement("summary");
    label.textContent = "Why, data and evidence";
    const detail = document.createElement("div");
    detail.className = "detail";
    detail.innerHTML = renderMarkdown(card.detail);
    toggle.append(label, detail);
    article.append(toggle);
  }

  if (card.links) {
    const links = document.createElement("div");
    links.className = "links";
    for (const link of card.links) {
      const a = document.createElement("a");
      a.textContent = link.label;
      if (/^https?:\/\//.test(link.url)) a.href = link.url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      links.append(a);
    }
    article.append(links);
  }

  const footer = document.createElement("footer");
  const source = document.createElement(card.source.url ? "a" : "span");
  source.className = "source";
  source.textContent = card.source.label;
  if (card.source.url && /^https?:\/\//.test(card.source.url)) {
    source.href = card.source.url;
    source.target = "_blank";
    source.rel = "noopener noreferrer";
  }
  footer.append(source);
  if (card.uuid) footer.append(dismissControl(card, article, serviceId));
  article.append(footer);
  return article;
}

function dismissControl(card, article, serviceId) {
  const wrapper = document.createElement("span");
  wrapper.className = "dismiss";
  const select = document.createElement("select");
  select.className = "override-reason";
  select.setAttribute("aria-label", "Reason for dismissing");
  select.append(new Option("Dismiss without a reason", ""));
  for (const reason of card.overrideReasons || []) {
    select.append(new Option(reason.display || reason.code, reason.code));
  }
  const button = document.createElement("button");
  button.type = "button";
  button.className = "dismiss-button";
  button.textContent = "Dismiss";
  button.addEventListener("click", () => dismissCard(card, article, select.value, serviceId));
  wrapper.append(select, button);
  return wrapper;
}

async function sendFeedback(serviceId, item) {
  const body = { feedback: [{ ...item, outcomeTimestamp: new Date().toISOString() }] };
  return callService("POST", `/cds-services/${serviceId}/feedback`, body);
}

async function acceptSuggestion(card, suggestion, button, serviceId) {
  button.disabled = true;
  const { status } = await sendFeedback(serviceId, {
    card: card.uuid, outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }],
  });
  if (status === 200) {
    button.textContent = `✓ ${suggestion.label}`;
    button.classList.add("taken");
    toast(`Suggestion taken: “${suggestion.label}”. Feedback recorded.`);
  } else {
    button.disabled = false;
    toast(`Feedback failed: HTTP ${status}`, true);
  }
}

async function dismissCard(card, article, reasonCode, serviceId) {
  const item = { card: card.uuid, outcome: "overridden" };
  const reason = (card.overrideReasons || []).find((r) => r.code === reasonCode);
  if (reason) item.overrideReason = { reason: { system: reason.system, code: reason.code } };
  const { status } = await sendFeedback(serviceId, item);
  if (status !== 200) {
    toast(`Feedback failed: HTTP ${status}`, true);
    return;
  }
  article.hidden = true;
  article.dataset.dismissed = "true";
  toast(`Card dismissed${reason ? ` (${reason.display || reason.code})` : ""}. Feedback recorded.`);
}

let toastTimer = null;
function toast(text, isError = false) {
  const element = $("toast");
  element.textContent = text;
  element.classList.toggle("error", isError);
  element.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { element.hidden = true; }, 4000);
}

/* ---- start ----------------------------------------------------------------------------- */

async function start() {
  state.config = await (await fetch("/config.json")).json();
  await loadSigningKey();
  state.patients = await (await fetch("/patients.json")).json();
  renderPatientList();
  $("order-form").addEventListener("submit", selectOrder);
  const services = $("services");
  try {
    const { status, json } = await callService("GET", "/cds-services");
    if (status !== 200) throw new Error(`HTTP ${status}`);
    services.textContent = `CDS services: ${json.services.map((s) => s.id).join(", ")}`;
    services.dataset.state = "ready";
  } catch (error) {
    services.textContent = `CDS service unavailable at ${state.config.cdsBaseUrl}`;
    services.dataset.state = "error";
  }
}

start();
