// FaceDB console: every page is filled from the JSON API with the key kept in this tab only.
"use strict";

const KEY = "facedb-key";
const state = { me: null };
// The closed sets (statuses, genders, audit actions, pair states) come from the server.
const VOCABULARY = JSON.parse(document.body.dataset.vocabulary || "{}");
const choices = (values) => (values || []).map((v) => [v, v]);

// --- talking to the API ---------------------------------------------------------------
class ApiError extends Error {
  constructor(status, code, message, details, results) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.results = results || null;  // an upload refused whole: each file's result
  }
}

const FRIENDLY = {
  no_face: "No face was found in this photo. Use a photo where the face is clearly visible.",
  not_an_image: "This file is not a photo FaceDB can read. Send a JPEG, PNG or WebP image.",
  unsupported_image_format: "This image format is not accepted. Send a JPEG, PNG or WebP image.",
  empty_image: "The file is empty.",
  truncated_image: "The photo is damaged or incomplete. Try another copy of it.",
  image_too_large: "The photo is too large.",
  request_too_large: "Too many photos at once.",
  database_unavailable: "The database cannot be reached. Nothing was saved; try again in a minute.",
  unauthenticated: "Your key was not accepted. Sign in again.",
  forbidden: "Your role may not do this.",
  already_linked: "One of these two records is already linked to another record by an earlier confirmation. Open that pair and reject it first if it was wrong.",
  network: "The FaceDB service did not answer. Check that it is running and try again.",
};

// Codes whose server message adds the specifics (sizes, counts) to the friendly sentence;
// for the others the friendly sentence says it all, once.
// (multiple_faces has no friendly sentence: the server's says how many faces, and what to do.)
const SPECIFIC = new Set(["image_too_large", "request_too_large", "already_linked"]);

function describe(err) {
  if (!(err instanceof ApiError)) return String(err.message || err);
  const friendly = FRIENDLY[err.code];
  const parts = [friendly || err.message];
  if (friendly && SPECIFIC.has(err.code) && err.message) parts.push(`(${err.message})`);
  const said = parts.join(" ");
  const detail = err.details.filter((d) => !said.includes(d.problem))  // say a thing once
    .map((d) => `${d.field.replace(/^body\./, "")}: ${d.problem}`);
  if (detail.length) parts.push(detail.join("; "));
  const text = parts.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError(0, "network", FRIENDLY.network);
  }
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    let body = null;
    if (type.includes("json")) body = await response.json().catch(() => null);
    const error = (body && body.error) || {};
    throw new ApiError(response.status, error.code || "http_error",
      error.message || `The service answered ${response.status}.`, error.details, error.results);
  }
  if (response.status === 204) return null;
  if (type.includes("json")) return response.json();
  return response.blob();
}

const json = (method, body) => ({
  method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

async function imageUrl(path) {
  return URL.createObjectURL(await api(path));
}

// --- building the page --------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    // Positions and widths go through the CSSOM: the policy (style-src 'self') refuses
    // style attributes, and a bar or a box set that way would silently not draw.
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldCounter = 0;
function field(label, control, hint) {
  const id = control.id || `f${++fieldCounter}`;
  control.id = id;
  return el("div", { class: "field" }, el("label", { for: id, text: label }), control,
    hint ? el("small", { class: "muted", text: hint }) : null);
}

function select(name, options, value) {
  return el("select", { name },
    options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
}

const content = () => document.getElementById("content");
function show(...nodes) { content().replaceChildren(...nodes); }
function clearMessages() { document.getElementById("messages").replaceChildren(); }
function showError(err) {
  document.getElementById("messages").replaceChildren(
    el("p", { class: "error" }, describe(err)));
  if (err instanceof ApiError && err.status === 401 && document.body.dataset.page !== "signin") {
    sessionStorage.removeItem(KEY);
  }
}
function showNotice(text) {
  document.getElementById("messages").replaceChildren(el("p", { class: "notice" }, text));
}

const may = (permission) => !!state.me && state.me.permissions.includes(permission);
const fmt = (value, digits = 0) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
const dateText = (value) => value || "undated";

function ageText(age, source) {
  if (age === null || age === undefined) return "age unknown";
  return `${fmt(age)} years (${source === "declared" ? "from birth date" : "estimated"})`;
}

// The age check of a face against a declared birth: a line saying what it found.
function ageCheckLine(check) {
  if (!check) return null;
  const label = { consistent: "Age fits", unlikely: "Age unlikely", impossible: "Age impossible" }[check.verdict];
  return el("div", { class: `age-check ${check.verdict}` }, `${label}: ${check.reason}.`);
}

function verdict(score) {
  if (score >= state.me.match_threshold) return ["match", "Match"];
  if (score >= state.me.candidate_threshold) return ["possible", "Possible"];
  return ["no", "No match"];
}

function scoreBar(score) {
  const [kind, label] = verdict(score);
  const pct = (v) => `${Math.max(0, Math.min(100, v * 100))}%`;
  return el("div", { class: "score" },
    el("div", { class: "bar", role: "img",
      "aria-label": `score ${score.toFixed(3)}, match threshold ${state.me.match_threshold}` },
      el("span", { class: `fill ${kind}`, style: { width: pct(score) } }),
      el("span", { class: "threshold", style: { left: pct(state.me.match_threshold) },
        title: `match threshold ${state.me.match_threshold}` })),
    el("span", { class: `verdict ${kind}` }, `${label} · ${score.toFixed(3)}`));
}

// A photo with its faces boxed; width and height are the photo's own pixels.
function boxedPhoto(src, width, height, boxes, alt) {
  const frame = el("div", { class: "photo" }, el("img", { src, alt }));
  boxes.forEach((box, i) => {
    frame.append(el("span", {
      class: "box",
      style: {
        left: `${(100 * box.x) / width}%`, top: `${(100 * box.y) / height}%`,
        width: `${(100 * box.w) / width}%`, height: `${(100 * box.h) / height}%`,
      },
    }, el("span", { class: "tag" }, `${i + 1}`)));
  });
  return frame;
}

async function crop(url, alt) {
  const img = el("img", { class: "crop", alt, width: 96, height: 96 });
  if (url) imageUrl(url).then((src) => { img.src = src; }).catch(() => { img.alt = `${alt} (unavailable)`; });
  return img;
}

function busy(form, on) {
  for (const control of form.querySelectorAll("button, input, select, textarea")) control.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

// --- chrome ---------------------------------------------------------------------------------
function renderChrome() {
  const page = document.body.dataset.page;
  const links = [["search", "Search"], ["persons", "Persons"], ["review", "Review queue"]];
  if (may("admin")) links.push(["audit", "Audit"]);
  document.getElementById("nav").replaceChildren(...links.map(([name, text]) =>
    el("a", { href: `/console/${name}`, "aria-current": name === page ? "page" : null, "data-nav": name }, text)));
  if (may("read")) {
    pendingCount();
    setInterval(pendingCount, 60_000);
  }
  if (may("admin")) parkedNotice();
  const who = document.getElementById("who");
  if (state.me.auth === "keyless-local") {
    who.replaceChildren(el("span", {}, "local admin"));
  } else {
    who.replaceChildren(el("span", {}, `${state.me.name} (${state.me.role})`), " ",
      el("button", { type: "button", class: "link", onclick: () => {
        sessionStorage.removeItem(KEY);
        location.href = "/console/signin";
      } }, "Sign out"));
  }
  if (state.me.auth === "keyless-local") {
    document.getElementById("banner").replaceChildren(el("p", { class: "warning" },
      "Keyless local mode: no API key was ever created, so anyone who can reach this address " +
      "acts as admin. Create keys (facedb keys create) before sharing this service."));
  }
}

// The review queue's link carries the number of pairs waiting, refreshed every minute.
async function pendingCount() {
  const link = document.querySelector('[data-nav="review"]');
  try {
    const page = await api("/v1/matches?state=pending&limit=1");
    link.textContent = `Review queue (${page.total})`;
    link.setAttribute("aria-label", `Review queue, ${page.total} pairs waiting`);
  } catch (err) {
    link.textContent = "Review queue";  // the count is a courtesy: never an error banner
  }
}

// Webhook events that failed every attempt wait, parked, until an admin sends them again.
async function parkedNotice() {
  let health;
  try { health = await api("/v1/health"); } catch (err) { return; }  // 503 bodies are errors here
  const parked = health.notifications && health.notifications.parked;
  if (!parked) return;
  const notice = el("div", { class: "warning", role: "status", "data-parked": "" },
    `${parked} notification(s) to the webhook receiver failed every attempt and are parked` +
    `${health.notifications.last_error ? ` (last: ${health.notifications.last_error})` : ""}. ` +
    "Fix the receiver, then ",
    el("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const answer = await api("/v1/admin/notifications/retry", { method: "POST" });
        notice.replaceChildren(`${answer.requeued} notification(s) will be sent again.`);
      } catch (err) {
        showError(err);
      }
    } }, "send them again"));
  document.getElementById("banner").append(notice);
}

// --- sign in ----------------------------------------------------------------------------------
function renderSignin() {
  const key = el("input", { type: "password", name: "key", autocomplete: "off", required: true });
  const form = el("form", { class: "card narrow", onsubmit: async (event) => {
    event.preventDefault();
    clearMessages();
    sessionStorage.setItem(KEY, key.value.trim());
    try {
      state.me = await api("/v1/me");
      location.href = "/console/search";
    } catch (err) {
      sessionStorage.removeItem(KEY);
      showError(err);
    }
  } },
  field("API key", key, "Ask your administrator for a key. It is kept in this browser tab only."),
  el("button", { type: "submit" }, "Sign in"));
  show(form);
  key.focus();
}

// --- search -----------------------------------------------------------------------------------
function renderSearch() {
  if (!may("search")) {
    show(el("p", {}, "Your role may not search. Ask for a searcher or reviewer key."));
    return;
  }
  const file = el("input", { type: "file", name: "file", accept: "image/jpeg,image/png,image/webp", required: true });
  const drop = el("div", { class: "drop" }, field("Photo", file),
    el("small", { class: "muted" }, "Drop a photo here, or choose one."));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) file.files = e.dataTransfer.files;
  });
  const results = el("section", { id: "results", "aria-live": "polite" });
  const form = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    clearMessages();
    const data = new FormData(form);
    for (const [name, value] of [...data.entries()]) if (value === "") data.delete(name);
    busy(form, true);
    results.replaceChildren(el("p", { class: "muted" }, "Searching…"));
    try {
      const answer = await api("/v1/search", { method: "POST", body: data });
      await renderResults(results, file.files[0], answer);
    } catch (err) {
      results.replaceChildren();
      showError(err);
    } finally {
      busy(form, false);
    }
  } },
  drop,
  el("div", { class: "row" },
    field("Photo taken on", el("input", { type: "date", name: "taken_at" }), "optional"),
    field("Status", select("status", [["", "any"], ...STATUSES])),
    field("Gender", select("gender", [["", "any"], ...choices(VOCABULARY.genders)])),
    field("Candidates per face", el("input", { type: "number", name: "k", min: 1, max: 100, value: 5 }))),
  el("button", { type: "submit" }, "Search"));
  show(form, results);
}

async function renderResults(target, photo, answer) {
  const src = URL.createObjectURL(photo);
  const probe = new Image();
  probe.src = src;
  await probe.decode().catch(() => null);
  const boxes = answer.faces.map((f) => f.box);
  const nodes = [boxedPhoto(src, probe.naturalWidth || 1, probe.naturalHeight || 1, boxes, "the searched photo")];
  for (const [i, face] of answer.faces.entries()) {
    const list = el("ol", { class: "candidates" });
    for (const c of face.candidates) {
      const years = c.years_between !== null
        ? `${fmt(c.years_between, 1)} years between the photos`
        : (c.years_since_photo !== null ? `photo ${fmt(c.years_since_photo, 1)} years old` : "undated photo");
      list.append(el("li", { class: "candidate" },
        await crop(c.crop_url, `enrolled face of ${c.person.name}`),
        el("div", { class: "who" },
          el("a", { href: `/console/persons/${c.person.id}` }, c.person.name),
          el("div", { class: "muted" }, `${c.person.status} · case ${c.person.external_ref || "—"}`),
          c.person.linked_person_id ? el("div", { class: "warning" }, "Already linked to another record by a confirmed match: ",
            el("a", { href: `/console/persons/${c.person.linked_person_id}` }, "open the linked record")) : null,
          el("div", {}, `Age at that photo: ${ageText(c.age_at_photo, c.age_source)} · ${dateText(c.taken_at)} · ${years}`),
          ageCheckLine(c.age_check),
          scoreBar(c.score))));
    }
    nodes.push(el("article", { class: "card face" },
      el("h2", {}, `Face ${i + 1}`),
      el("p", {}, `Estimated age ${fmt(face.age)}, ` + (face.gender && face.gender !== "unknown"
        ? `${face.gender}` + (face.gender_probability ? ` (${fmt(face.gender_probability * 100)}% sure)` : "")
        : "gender uncertain")),
      face.candidates.length ? list : el("p", { class: "muted" }, "No enrolled person passes the filters.")));
  }
  target.replaceChildren(...nodes);
}

// --- persons ----------------------------------------------------------------------------------
const STATUSES = choices(VOCABULARY.statuses);

function personForm(person, onsave) {
  const form = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    clearMessages();
    const body = {};
    for (const [name, value] of new FormData(form).entries()) {
      if (value !== "") body[name] = name === "birth_year" ? Number(value) : value;
      else if (person) body[name] = name === "name" ? undefined : null;
    }
    busy(form, true);
    try {
      await onsave(body);
    } catch (err) {
      showError(err);
    } finally {
      busy(form, false);
    }
  } },
  el("div", { class: "row" },
    field("Name", el("input", { name: "name", required: true, maxlength: 300, value: person?.name })),
    field("Case number", el("input", { name: "external_ref", maxlength: 200, value: person?.external_ref })),
    field("Status", select("status", STATUSES, person?.status || "missing")),
    field("Gender", select("gender", [["", "not recorded"], ...choices(VOCABULARY.genders)], person?.gender || "")),
    field("Birth date", el("input", { type: "date", name: "birth_date", value: person?.birth_date })),
    field("or birth year", el("input", { type: "number", name: "birth_year", min: 1900, max: 2200, value: person?.birth_year }))),
  el("button", { type: "submit" }, person ? "Save changes" : "Create person"));
  return form;
}

async function renderPersons() {
  const params = new URLSearchParams(location.search);
  const filters = el("form", { class: "card row", role: "search", onsubmit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(filters).entries()) if (value) query.set(name, value);
    location.search = query.toString();
  } },
  field("Name contains", el("input", { name: "name", value: params.get("name") })),
  field("Case number", el("input", { name: "external_ref", value: params.get("external_ref") })),
  field("Status", select("status", [["", "any"], ...STATUSES], params.get("status") || "")),
  el("button", { type: "submit" }, "Filter"));
  const limit = 25;
  const offset = Number(params.get("offset") || 0);
  const query = new URLSearchParams({ limit, offset });
  for (const name of ["name", "external_ref", "status"]) if (params.get(name)) query.set(name, params.get(name));
  const nodes = [filters];
  try {
    const page = await api(`/v1/persons?${query}`);
    const columns = ["Name", "Case number", "Status", "Gender", "Age"];
    const rows = page.items.map((p) => el("tr", {},
      [el("a", { href: `/console/persons/${p.id}` }, p.name), p.external_ref || "—", p.status,
        p.gender || "—", fmt(p.age)].map((value, i) => el("td", { "data-label": columns[i] }, value))));
    // At phone width each row becomes a small card (labels from data-label): nothing off-screen.
    nodes.push(el("table", { class: "stack" },
      el("caption", {}, `${page.total} persons`),
      el("thead", {}, el("tr", {}, columns.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
    const pager = el("nav", { class: "pager", "aria-label": "Pages" });
    const go = (to) => { params.set("offset", to); return `?${params}`; };
    if (offset > 0) pager.append(el("a", { href: go(Math.max(0, offset - limit)) }, "← Previous"));
    if (offset + limit < page.total) pager.append(el("a", { href: go(offset + limit) }, "Next →"));
    nodes.push(pager);
  } catch (err) {
    showError(err);
  }
  if (may("enroll")) {
    nodes.push(el("h2", {}, "New person"), personForm(null, async (body) => {
      const created = await api("/v1/persons", json("POST", body));
      location.href = `/console/persons/${created.id}`;
    }));
  }
  show(...nodes);
}

async function renderPerson() {
  const id = document.body.dataset.person;
  let person;
  try {
    person = await api(`/v1/persons/${encodeURIComponent(id)}`);
  } catch (err) {
    show(el("p", {}, el("a", { href: "/console/persons" }, "← All persons")));
    showError(err);
    return;
  }
  document.querySelector("h1").textContent = person.name;
  const report = el("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      const page = await api(`/v1/persons/${person.id}/report`);
      const link = el("a", { href: URL.createObjectURL(page), download: `case-${person.external_ref || person.id}.html` });
      document.body.append(link);
      link.click();
      link.remove();
    } catch (err) {
      showError(err);
    }
  } }, "Download the case report");
  const facts = el("dl", { class: "facts" }, [
    ["Case number", person.external_ref || "—"], ["Status", person.status],
    ["Gender", person.gender || "not recorded"],
    ["Born", person.birth_date || person.birth_year || "unknown"], ["Age today", fmt(person.age)],
    person.linked_person_id ? ["Linked to", el("a", { href: `/console/persons/${person.linked_person_id}`, "data-linked": "" }, "the matched record")] : null,
    !person.linked_person_id && person.linked_erased_at
      ? ["Linked to", `a record erased on ${new Date(person.linked_erased_at).toLocaleDateString()}`] : null,
  ].filter(Boolean).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  const gallery = el("section", { class: "gallery", "aria-label": "Photos" });
  const nodes = [el("p", {}, el("a", { href: "/console/persons" }, "← All persons")), facts, el("p", {}, report)];
  if (may("enroll")) {
    nodes.push(el("h2", {}, "Edit"), personForm(person, async (body) => {
      await api(`/v1/persons/${person.id}`, json("PATCH", body));
      location.reload();
    }));
    nodes.push(el("h2", {}, "Add photos"), uploadForm(person, gallery));
  }
  nodes.push(el("h2", {}, "Photos"), gallery);
  const pairs = el("section", { "aria-label": "Candidate pairs" });
  nodes.push(el("h2", {}, "Candidate pairs"), pairs);
  const notes = el("ol", { class: "notes", "aria-label": "Case notes" });
  nodes.push(el("h2", {}, "Case notes"), notes);
  if (may("note")) nodes.push(noteForm(person, notes));
  if (may("enroll")) nodes.push(el("h2", {}, "Delete"), deleteForm(person));
  show(...nodes);
  await Promise.all([renderGallery(person, gallery), renderNotes(person, notes),
    renderCasePairs(person, pairs), nameLinked(person)]);
}

// The linked record by its name, not "the matched record".
async function nameLinked(person) {
  const link = document.querySelector("[data-linked]");
  if (!link) return;
  try {
    const other = await api(`/v1/persons/${encodeURIComponent(person.linked_person_id)}`);
    link.textContent = `${other.name}${other.external_ref ? ` (case ${other.external_ref})` : ""}`;
  } catch (err) {
    link.textContent = "the matched record";  // still a working link
  }
}

// Every pair of this person, in every state, with its decision: the case's history.
async function renderCasePairs(person, target) {
  try {
    const page = await api(`/v1/matches?person_id=${encodeURIComponent(person.id)}&sort=score&limit=50`);
    if (!page.total) {
      target.replaceChildren(el("p", { class: "muted" }, "No candidate pair yet."));
      return;
    }
    const cards = [];
    for (const m of page.items) cards.push(await pairCard(m, () => location.reload()));
    target.replaceChildren(el("p", { class: "muted" }, `${page.total} pair(s), best score first; state: ` +
      page.items.map((m) => m.state).filter((v, i, all) => all.indexOf(v) === i).join(", ")), ...cards);
  } catch (err) {
    showError(err);
  }
}

async function renderNotes(person, list) {
  try {
    const notes = await api(`/v1/persons/${person.id}/notes`);
    list.replaceChildren(...(notes.length ? notes.map((n) => el("li", {},
      el("p", { class: "muted" }, `${new Date(n.created_at).toLocaleString()} · ${n.author || "unknown author"}`),
      el("p", { class: "note-text" }, n.text))) : [el("li", { class: "muted" }, "No note yet.")]));
  } catch (err) {
    showError(err);
  }
}

function noteForm(person, list) {
  const text = el("textarea", { name: "text", rows: 4, maxlength: 10000, required: true });
  const problem = el("p", { class: "error", role: "alert", hidden: true });
  const form = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    problem.hidden = true;
    busy(form, true);
    try {
      await api(`/v1/persons/${person.id}/notes`, json("POST", { text: text.value }));
      form.reset();
      await renderNotes(person, list);
    } catch (err) {
      problem.textContent = describe(err);
      problem.hidden = false;
      problem.scrollIntoView({ block: "nearest" });
    } finally {
      busy(form, false);
    }
  } }, field("New note (kept as written: notes are never edited)", text), problem,
  el("button", { type: "submit" }, "Add note"));
  return form;
}

function uploadForm(person, gallery) {
  const files = el("input", { type: "file", name: "files", multiple: true, accept: "image/jpeg,image/png,image/webp", required: true });
  const dates = el("div", { class: "dates" });
  files.addEventListener("change", () => {
    dates.replaceChildren(...[...files.files].map((f, i) =>
      field(`Date of ${f.name}`, el("input", { type: "date", name: "taken_at", "data-index": i }), "optional")));
  });
  const report = el("ul", { class: "report", "aria-live": "polite" });
  const list = (results) => {
    for (const r of results) {
      const conflict = r.photo && r.photo.age_conflict
        ? ` — but the age does not fit: ${r.photo.age_check.reason}. Check the photo's date and the birth date.` : "";
      report.append(el("li", { class: r.status === "refused" ? "error" : (conflict ? "warning" : "") },
        `${r.filename}: ${r.status}${r.error ? ` — ${describe(new ApiError(0, r.error.code, r.error.message))}` : ""}${conflict}`));
    }
  };
  const form = el("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    clearMessages();
    report.replaceChildren();
    const data = new FormData();
    const given = [...dates.querySelectorAll("input")].map((i) => i.value);
    [...files.files].forEach((f) => data.append("files", f));
    if (given.some((v) => v)) {
      if (given.some((v) => !v) && given.length > 1) {
        showError(new Error("Give a date for every photo, or for none."));
        return;
      }
      given.forEach((v) => data.append("taken_at", v));
    }
    busy(form, true);
    try {
      const answer = await api(`/v1/persons/${person.id}/photos`, { method: "POST", body: data });
      list(answer.results);
      showNotice(`${answer.stored} stored, ${answer.duplicates} already stored, ${answer.refused} refused.`);
      form.reset();
      dates.replaceChildren();
      await renderGallery(person, gallery);
    } catch (err) {
      if (err instanceof ApiError && err.results) {
        list(err.results);  // every file refused: say why for each, where the eye is
        report.prepend(el("li", { class: "error", role: "alert" }, `No photo was stored: ${err.results.length} refused.`));
      } else {
        report.append(el("li", { class: "error", role: "alert" }, describe(err)));
      }
      report.scrollIntoView({ block: "nearest" });
    } finally {
      busy(form, false);
    }
  } }, field("Photos (one face each)", files), dates, el("button", { type: "submit" }, "Upload"), report);
  return form;
}

async function renderGallery(person, gallery) {
  try {
    const photos = await api(`/v1/persons/${person.id}/photos`);
    if (!photos.length) {
      gallery.replaceChildren(el("p", { class: "muted" }, "No photo yet."));
      return;
    }
    const figures = [];
    const byDate = [...photos].sort((a, b) =>
      (a.taken_at || "9999") < (b.taken_at || "9999") ? -1 : (a.taken_at || "9999") > (b.taken_at || "9999") ? 1 : 0);
    for (const p of byDate) {
      const src = await imageUrl(p.image_url);
      const face = p.faces[0];
      figures.push(el("figure", { class: p.age_conflict ? "conflict" : null },
        boxedPhoto(src, p.width, p.height, p.faces.map((f) => f.box), `photo of ${person.name}`),
        el("figcaption", {}, `${p.filename || "photo"} · ${dateText(p.taken_at)} · age ${p.age_at_photo !== null ? `${fmt(p.age_at_photo)} (from birth date)` : `${fmt(face?.age)} (estimated)`}`,
          p.age_conflict ? el("span", { class: "warning" }, ` · Age conflict: ${p.age_check.reason}. Misfiled photo or wrong date?`) : null),
        may("enroll") ? el("div", { class: "photo-actions" }, photoDateForm(person, p, gallery),
          deletePhotoButton(person, p, gallery)) : null));
    }
    gallery.replaceChildren(...figures);
  } catch (err) {
    showError(err);
  }
}

// A photo filed under the wrong date: correct it; its age check and the pairs follow.
function photoDateForm(person, photo, gallery) {
  const name = photo.filename || "this photo";
  const input = el("input", { type: "date", name: "taken_at", value: photo.taken_at || "" });
  const problem = el("p", { class: "error", role: "alert", hidden: true });
  const form = el("form", { class: "row date-form", onsubmit: async (event) => {
    event.preventDefault();
    problem.hidden = true;
    busy(form, true);
    try {
      await api(`/v1/photos/${photo.id}`, json("PATCH", { taken_at: input.value || null }));
      await renderGallery(person, gallery);
      const pairs = document.querySelector('[aria-label="Candidate pairs"]');
      if (pairs) await renderCasePairs(person, pairs);
      showNotice(`${name} is now dated ${dateText(input.value || null)}; its age check and pairs were worked out again.`);
    } catch (err) {
      problem.textContent = describe(err);
      problem.hidden = false;
      problem.scrollIntoView({ block: "nearest" });
      busy(form, false);
    }
  } }, field(`Date of ${name}`, input, "empty: unknown"),
  el("button", { type: "submit", class: "secondary" }, "Save date"), problem);
  return form;
}

function deletePhotoButton(person, photo, gallery) {
  const name = `${photo.filename || "this photo"} (${dateText(photo.taken_at)})`;
  const dialog = el("dialog", { "aria-label": `Delete ${name}?` });
  const open = () => {
    dialog.replaceChildren(
      el("h2", {}, `Delete ${name}?`),
      el("p", {}, `This deletes ${name} of ${person.name} and its face: it leaves the search index ` +
        "and cross-matching. Other photos of the person stay. This cannot be undone."),
      el("div", { class: "row" },
        el("button", { type: "button", class: "danger", onclick: async () => {
          dialog.close();
          try {
            await api(`/v1/photos/${photo.id}`, { method: "DELETE" });
            await renderGallery(person, gallery);
            showNotice(`${name} deleted.`);
          } catch (err) {
            showError(err);
          }
        } }, "Delete the photo"),
        el("button", { type: "button", onclick: () => dialog.close() }, "Cancel")));
    dialog.showModal();
  };
  return el("div", {}, el("button", { type: "button", class: "secondary", onclick: open }, `Delete ${photo.filename || "photo"}…`), dialog);
}

function deleteForm(person) {
  const dialog = el("dialog", { "aria-labelledby": "confirm-title" });
  const open = el("button", { type: "button", class: "danger", onclick: async () => {
    let photos = [];
    try { photos = await api(`/v1/persons/${person.id}/photos`); } catch (err) { showError(err); return; }
    const faces = photos.reduce((n, p) => n + p.faces.length, 0);
    dialog.replaceChildren(
      el("h2", { id: "confirm-title" }, `Erase ${person.name}?`),
      el("p", {}, `This erases the record of ${person.name}` +
        (person.external_ref ? ` (case ${person.external_ref})` : "") +
        `, ${photos.length} photo(s) and ${faces} face(s), and their undecided review pairs. ` +
        "Decided review pairs stay as history, keeping only who decided, when and why. " +
        "A record linked to this one will say its linked record was erased. This cannot be undone."),
      el("div", { class: "row" },
        el("button", { type: "button", class: "danger", onclick: async () => {
          try {
            await api(`/v1/persons/${person.id}`, { method: "DELETE" });
            location.href = "/console/persons";
          } catch (err) {
            dialog.close();
            showError(err);
          }
        } }, "Erase for good"),
        el("button", { type: "button", onclick: () => dialog.close() }, "Cancel")));
    dialog.showModal();
  } }, `Erase ${person.name}…`);
  return el("div", { class: "card" }, open, dialog);
}

// --- review queue -----------------------------------------------------------------------------
async function renderReview() {
  const params = new URLSearchParams(location.search);
  const wanted = params.get("state") || "pending";
  const tabs = el("nav", { class: "tabs", "aria-label": "Review states" },
    [["pending", "Waiting"], ["confirmed", "Confirmed"], ["rejected", "Rejected"],
      ["superseded", "Superseded"], ["impossible", "Impossible by age"]].map(([s, text]) =>
      el("a", { href: `?state=${s}`, "aria-current": s === wanted ? "page" : null }, text)));
  const nodes = [tabs];
  try {
    const queue = wanted === "pending" || wanted === "impossible";
    const page = await api(`/v1/matches?state=${wanted}&sort=${queue ? "evidence" : "date"}&limit=50`);
    const explained = {
      pending: ", pairs without warnings first, then by how far each stands above the two persons' other candidates",
      impossible: ": the age check rules these out (a photo before the birth, or a face far too old or young). Kept here so nothing is lost: confirm one if the dates were wrong.",
      superseded: ": one of their persons was linked to someone else by a confirmation; reversing it brings them back",
    }[wanted] || ", newest first";
    nodes.push(el("p", { class: "muted" }, `${page.total} pair(s)${explained}`));
    for (const m of page.items) nodes.push(await pairCard(m));
  } catch (err) {
    showError(err);
  }
  show(...nodes);
}

function sideView(side, label, img) {
  const person = side.person;
  return el("div", { class: "side" },
    el("h3", {}, label),
    img,
    person ? el("a", { href: `/console/persons/${person.id}` }, person.name) : el("span", { class: "muted" }, "deleted record"),
    el("div", { class: "muted" }, person ? `${person.status} · case ${person.external_ref || "—"}` : ""),
    el("div", {}, `${ageText(side.age_at_photo, side.age_source)} · ${dateText(side.taken_at)}`));
}

async function pairCard(m, afterDecision = renderReview) {
  const [missingFace, foundFace] = await Promise.all([
    crop(m.missing.crop_url, "the missing person's face"),
    crop(m.found.crop_url, "the found person's face")]);
  const sides = [sideView(m.missing, "Missing", missingFace), sideView(m.found, "Found", foundFace)];
  const card = el("article", { class: "card pair" },
    el("div", { class: "sides" }, ...sides),
    el("p", {}, `Pair ${m.id} · ${m.state} · ` +
      `${m.years_between === null ? "years between unknown" : `${fmt(m.years_between, 1)} years between the photos`}` +
      ` · the missing person's candidate no. ${m.rank} · stands ${fmt(m.evidence, 3)} above their other candidates`),
    ageCheckLine(m.age_check),
    m.gender_conflict ? el("div", { class: "warning" }, "Gender differs: a recorded gender does not match the other side's. Check before confirming.") : null,
    m.superseded_by ? el("p", { class: "muted" }, `Out of the queue since pair ${m.superseded_by} was confirmed.`) : null,
    scoreBar(m.score));
  if (m.decision) {
    card.append(el("p", { class: "decision" },
      `${m.state} by ${m.decision.by || "—"} on ${new Date(m.decision.at).toLocaleString()}` +
      (m.decision.note ? `: “${m.decision.note}”` : "")));
  }
  if (may("review")) {
    const note = el("textarea", { name: "note", rows: 2, maxlength: 2000 });
    const decide = (decision) => async () => {
      clearMessages();
      try {
        await api(`/v1/matches/${m.id}/decision`, json("POST", { decision, note: note.value || null }));
        showNotice(`Pair ${m.id} ${decision}.`);
        await afterDecision();
      } catch (err) {
        showError(err);
      }
    };
    const dialog = el("dialog", { "aria-labelledby": `confirm-${m.id}` });
    const askFirst = () => {
      const who = (side) => side.person
        ? `${side.person.name}${side.person.external_ref ? ` (case ${side.person.external_ref})` : ""}` : "a deleted record";
      dialog.replaceChildren(
        el("h2", { id: `confirm-${m.id}` }, "Confirm these are one person?"),
        el("p", {}, `${who(m.missing)} and ${who(m.found)} will be linked and both records closed: ` +
          "they leave cross-matching, and their other waiting pairs leave the queue (listed under Superseded). " +
          "Rejecting this pair later undoes it."),
        el("div", { class: "row" },
          el("button", { type: "button", onclick: async () => { dialog.close(); await decide("confirmed")(); } }, "Yes, confirm"),
          el("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel")));
      dialog.showModal();
    };
    card.append(el("div", { class: "decide" }, field("Note", note),
      el("div", { class: "row" },
        m.state !== "confirmed" ? el("button", { type: "button", onclick: askFirst }, "Confirm: same person") : null,
        m.state !== "rejected" ? el("button", { type: "button", class: "secondary", onclick: decide("rejected") }, "Reject") : null)),
      dialog);
  }
  return card;
}

// --- audit --------------------------------------------------------------------------------------
async function renderAudit() {
  if (!may("admin")) {
    show(el("p", {}, "The audit trail is for admins."));
    return;
  }
  const params = new URLSearchParams(location.search);
  const filters = el("form", { class: "card row", onsubmit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(filters).entries()) if (value) query.set(name, value);
    location.search = query.toString();
  } },
  field("Action", select("action", [["", "any"], ...choices(VOCABULARY.actions)], params.get("action") || "")),
  field("Key id", el("input", { name: "key_id", value: params.get("key_id") })),
  el("button", { type: "submit" }, "Filter"));
  const nodes = [filters];
  try {
    const query = new URLSearchParams({ limit: 100 });
    for (const name of ["action", "key_id"]) if (params.get(name)) query.set(name, params.get(name));
    const entries = await api(`/v1/audit?${query}`);
    nodes.push(el("table", {},
      el("caption", {}, `${entries.length} most recent entries`),
      el("thead", {}, el("tr", {}, ["Time", "Action", "Key", "Client", "Faces", "Outcome"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, entries.map((e) => el("tr", {},
        el("td", {}, new Date(e.at).toLocaleString()), el("td", {}, e.action),
        el("td", {}, e.key_name || "—"), el("td", {}, e.client || "—"), el("td", {}, e.faces_found),
        el("td", {}, outcome(e)))))));
  } catch (err) {
    showError(err);
  }
  show(...nodes);
}

// What an entry did, in words: persons by name (a record since erased says so).
function outcome(entry) {
  const who = (id) => entry.names[id] || `an erased record (${id.slice(0, 8)}…)`;
  return entry.results.map((r) => {
    if (r.error) return `refused: ${r.error}`;
    if (r.candidates) return r.candidates.length ? `top ${who(r.candidates[0].person_id)} ${Number(r.candidates[0].score).toFixed(3)}` : "no candidate";
    if (r.decision) return `${r.decision} pair ${r.match_id}: ${who(r.missing_person_id)} and ${who(r.found_person_id)}`;
    if (r.changed) return `changed ${Object.keys(r.changed).join(", ") || "nothing"} of ${who(r.person_id)}`;
    if (r.files) return `${r.files.filter((f) => f.status === "stored").length} of ${r.files.length} photos stored for ${who(r.person_id)}`;
    if (r.job_id) return Object.entries(r).filter(([k]) => k !== "job_id").map(([k, v]) => `${k} ${v}`).join(", ");
    if (r.key_id) return `key ${r.name || r.key_id}`;
    if (r.taken_at) return `re-dated a photo of ${who(r.person_id)}: ${r.taken_at.before || "undated"} → ${r.taken_at.after || "undated"}`;
    if (r.photo_id) return `photo ${r.filename || r.photo_id.slice(0, 8) + "…"} of ${who(r.person_id)}`;
    if (r.person_id && r.score === undefined) return `person ${who(r.person_id)}`;
    if (r.manifest) return `imported ${r.manifest}: ${Object.entries(r.outcomes).map(([k, n]) => `${n} ${k}`).join(", ") || "no rows"}`;
    if (r.target) return `exported ${r.persons.length} persons, ${r.photos} photos to ${r.target}`;
    return `${r.person_id ? who(r.person_id) : ""} score ${Number(r.score).toFixed(3)}`;
  }).join("; ") || "—";
}

// --- start --------------------------------------------------------------------------------------
const RENDERERS = {
  signin: renderSignin, search: renderSearch, persons: renderPersons, person: renderPerson,
  review: renderReview, audit: renderAudit,
};

async function boot() {
  const page = document.body.dataset.page;
  if (page === "signin") {
    renderSignin();
    return;
  }
  try {
    state.me = await api("/v1/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      location.href = "/console/signin";
      return;
    }
    show();
    showError(err);
    return;
  }
  renderChrome();
  await RENDERERS[page]();
}

boot();
