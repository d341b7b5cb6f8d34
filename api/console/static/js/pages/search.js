// Search: a photo against every enrolled face, with the API's filters.
import { api, json } from "../api.js";
import { busy, clearFormError, el, field, formError, select, show, showError } from "../dom.js";
import { ageText, dateText, fixed, nameOf, when, whoText, years } from "../format.js";
import { STATUSES, VOCABULARY, choices, may, state } from "../session.js";
import { ageCheckLine, boxedPhoto, crop, qualityLine, scoreBar } from "../widgets.js";

export function renderSearch() {
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
    clearFormError(form);
    const data = new FormData(form);
    for (const [name, value] of [...data.entries()]) if (value === "") data.delete(name);
    busy(form, true);
    results.replaceChildren(el("p", { class: "muted" }, "Searching…"));
    try {
      const answer = await api("/v1/search", { method: "POST", body: data });
      await renderResults(results, file.files[0], answer, data.get("taken_at"));
    } catch (err) {
      results.replaceChildren();
      formError(form, err);
    } finally {
      busy(form, false);
    }
  } },
  drop,
  el("div", { class: "row" },
    field("Photo taken on", el("input", { type: "date", name: "taken_at" }), "optional: then each candidate says the years between"),
    field("Register", select("status", [["", "any"], ...STATUSES])),
    field("Gender", select("gender", [["", "any"], ...choices(VOCABULARY.genders)])),
    field("Age today from", el("input", { type: "number", name: "min_age", min: 0, max: 150, step: 1 })),
    field("Age today to", el("input", { type: "number", name: "max_age", min: 0, max: 150, step: 1 })),
    field("Threshold", el("input", { type: "number", name: "threshold", min: -1, max: 1, step: 0.01,
      placeholder: String(state.me.match_threshold) }), "a match from this score"),
    field("Candidates per face", el("input", { type: "number", name: "k", min: 1, max: 100, value: 5 }))),
  el("button", { type: "submit" }, "Search"));
  show(form, results);
}

// What a saved search says in the case file: who searched, when, the photo, the candidates.
function searchSummary(photo, answer, takenAt) {
  const lines = [`Search by ${state.me.name || "local admin"} on ${when(new Date().toISOString())}` +
    ` with ${photo.name}${takenAt ? ` (taken ${takenAt})` : ""}; match threshold ${answer.threshold}.`];
  answer.faces.forEach((face, i) => {
    lines.push(`Face ${i + 1} (estimated age ${years(face.age)}): ` + (face.candidates.map((c) =>
      `${whoText(c.person)} ${c.score.toFixed(3)}${c.match ? " (match)" : ""}`).join("; ") || "no candidate"));
  });
  return lines.join("\n");
}

function saveButton(person, photo, answer, takenAt) {
  const button = el("button", { type: "button", class: "secondary", onclick: async () => {
    button.disabled = true;
    try {
      await api(`/v1/persons/${person.id}/notes`, json("POST", { text: searchSummary(photo, answer, takenAt) }));
      button.replaceWith(el("span", { class: "notice saved" }, "Saved to the case notes of ",
        el("a", { href: `/console/persons/${person.id}` }, nameOf(person)), "."));
    } catch (err) {
      button.disabled = false;
      showError(err);
    }
  } }, `Save this search to ${nameOf(person)}'s case`);
  return button;
}

// The searched photo as a new record of the found register, in one step.
function enrollButton(photo, takenAt) {
  const button = el("button", { type: "button", class: "secondary", onclick: async () => {
    button.disabled = true;
    try {
      const person = await api("/v1/persons", json("POST",
        { name: `Unidentified person, searched ${new Date().toISOString().slice(0, 10)}`, status: "unidentified" }));
      const data = new FormData();
      data.append("files", photo);
      if (takenAt) data.append("taken_at", takenAt);
      await api(`/v1/persons/${person.id}/photos`, { method: "POST", body: data });
      location.href = `/console/persons/${person.id}`;
    } catch (err) {
      button.disabled = false;
      showError(err);
    }
  } }, "Enroll this photo as a new unidentified record");
  return button;
}

// Whether the faces were compared with their age axis removed (cross-age search), and why not.
function ageAxisLine() {
  const line = el("p", { class: "muted", id: "age-axis" });
  api("/v1/health").then((health) => {
    const axis = health.age_axis;
    if (axis) line.textContent = `Age axis ${axis.on ? "removed" : "not removed"} (cross-age search): ${axis.reason}.`;
  }).catch(() => {});  // a courtesy line: the health answer's own errors are shown elsewhere
  return line;
}

async function renderResults(target, photo, answer, takenAt) {
  const src = URL.createObjectURL(photo);
  const probe = new Image();
  probe.src = src;
  await probe.decode().catch(() => null);
  const boxes = answer.faces.map((f) => f.box);
  const nodes = [boxedPhoto(src, probe.naturalWidth || 1, probe.naturalHeight || 1, boxes, "the searched photo"),
    el("p", { class: "muted", id: "searched" }, `Searched ${answer.searched.persons.toLocaleString("en")} enrolled ` +
      `persons (${answer.searched.faces.toLocaleString("en")} faces): in a large register the right person ` +
      "may lie further down the list; ask for more candidates per face (up to 100) to read deeper."),
    ageAxisLine()];
  for (const [i, face] of answer.faces.entries()) {
    const list = el("ol", { class: "candidates" });
    for (const c of face.candidates) {
      const between = c.years_between !== null
        ? `${fixed(c.years_between, 1)} years between the photos`
        : (c.years_since_photo !== null ? `photo ${fixed(c.years_since_photo, 1)} years old` : "undated photo");
      list.append(el("li", { class: "candidate" },
        crop(c.crop_url, `enrolled face of ${nameOf(c.person)}`),
        el("div", { class: "who" },
          el("a", { href: `/console/persons/${c.person.id}` }, nameOf(c.person)),
          el("div", { class: "muted" }, `${c.person.status} · case ${c.person.external_ref || "—"}`),
          c.person.linked_person_id ? el("div", { class: "warning" }, "Already linked to another record by a confirmed match: ",
            el("a", { href: `/console/persons/${c.person.linked_person_id}` }, "open the linked record")) : null,
          el("div", {}, `Age at that photo: ${ageText(c.age_at_photo, c.age_source)} · ${dateText(c.taken_at)} · ${between}`),
          ageCheckLine(c.age_check),
          scoreBar(c.score),
          may("note") ? el("div", { class: "row actions" }, saveButton(c.person, photo, answer, takenAt)) : null)));
    }
    nodes.push(el("article", { class: "card face" },
      el("h2", {}, `Face ${i + 1}`),
      el("p", {}, `Estimated age ${years(face.age)}, ` + (face.gender && face.gender !== "unknown"
        ? `${face.gender}` + (face.gender_probability ? ` (${fixed(face.gender_probability * 100, 0)}% sure)` : "")
        : "gender uncertain")),
      qualityLine(face.quality),
      face.candidates.length ? list : el("p", { class: "muted" }, "No enrolled person passes the filters.")));
  }
  nodes.push(el("div", { class: "row actions no-print" },
    el("button", { type: "button", class: "secondary", onclick: () => window.print() }, "Print these results"),
    may("enroll") ? enrollButton(photo, takenAt) : null));
  target.replaceChildren(...nodes);
}
