// The case page: the record and its details, photos over time, the candidate pairs with
// their decisions, the case notes, and (for an enroller) edit, upload and erase.
import { ApiError, api, describe, download, json } from "../api.js";
import { ask, busy, clearFormError, el, field, formError, show, showError, showNotice } from "../dom.js";
import { dateText, day, detailLabel, nameOf, when, whoText, years } from "../format.js";
import { DETAILS, flash, may } from "../session.js";
import { boxedPhoto, qualityLine } from "../widgets.js";
import { pairCard } from "./pair.js";
import { personForm } from "./person-form.js";
import { renderTimeline } from "./timeline.js";

export async function renderPerson() {
  const id = document.body.dataset.person;
  let person;
  try {
    person = await api(`/v1/persons/${encodeURIComponent(id)}`);
  } catch (err) {
    show(el("p", {}, el("a", { href: "/console/persons" }, "← All persons")));
    showError(err);
    return;
  }
  document.querySelector("h1").textContent = nameOf(person);
  const gallery = el("section", { class: "gallery", "aria-label": "Photos" });
  const pairs = el("section", { "aria-label": "Candidate pairs" });
  const notes = el("ol", { class: "notes", "aria-label": "Case notes" });
  const nodes = [el("p", {}, el("a", { href: "/console/persons" }, "← All persons")),
    facts(person), details(person), el("p", {}, reportButton(person))];
  if (may("enroll")) {
    nodes.push(el("h2", {}, "Edit"), personForm(person, async (body) => {
      await api(`/v1/persons/${person.id}`, json("PATCH", body));
      location.reload();
    }));
    nodes.push(el("h2", {}, "Add photos"), uploadForm(person, gallery));
  }
  const timeline = el("ol", { class: "timeline", "aria-label": "Timeline" });
  nodes.push(el("h2", {}, "Photos"), gallery, el("h2", {}, "Candidate pairs"), pairs,
    el("h2", {}, "Case notes"), notes);
  if (may("note")) nodes.push(noteForm(person, notes));
  nodes.push(el("h2", {}, "Timeline"), timeline);
  if (may("enroll")) nodes.push(el("h2", {}, "Erase"), eraseButton(person));
  show(...nodes);
  await Promise.all([renderGallery(person, gallery), renderNotes(person, notes),
    renderCasePairs(person, pairs), nameLinked(person), renderTimeline(person, timeline)]);
}

function facts(person) {
  return el("dl", { class: "facts" }, [
    ["Case number", person.external_ref || "—"], ["Status", person.status],
    ["Gender", person.gender || "not recorded"],
    ["Born", person.birth_date || person.birth_year || "unknown"], ["Age today", years(person.age)],
    person.linked_person_id ? ["Linked to", el("a", { href: `/console/persons/${person.linked_person_id}`, "data-linked": "" }, "the matched record")] : null,
    !person.linked_person_id && person.linked_erased_at
      ? ["Linked to", `a record erased on ${day(person.linked_erased_at)}`] : null,
  ].filter(Boolean).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

// The case details (attributes), each under its label; a value that is not text as JSON.
function details(person) {
  const held = person.attributes || {};
  const keys = [...Object.keys(DETAILS).filter((k) => k in held), ...Object.keys(held).filter((k) => !(k in DETAILS))];
  const rows = keys.flatMap((k) => [el("dt", {}, detailLabel(k, DETAILS)),
    el("dd", { class: "detail" }, typeof held[k] === "string" ? held[k] : JSON.stringify(held[k]))]);
  return el("section", { "aria-label": "Case details" }, el("h2", {}, "Case details"),
    rows.length ? el("dl", { class: "facts" }, rows) : el("p", { class: "muted" }, "No case detail recorded."));
}

function reportButton(person) {
  return el("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      await download(`/v1/persons/${person.id}/report`, `case-${person.external_ref || person.id}.html`);
    } catch (err) {
      showError(err);
    }
  } }, "Download the case report");
}

// The linked record by its name, not "the matched record".
async function nameLinked(person) {
  const link = document.querySelector("[data-linked]");
  if (!link) return;
  try {
    link.textContent = whoText(await api(`/v1/persons/${encodeURIComponent(person.linked_person_id)}`));
  } catch (err) {
    link.textContent = "the matched record";  // still a working link
  }
}

// Every pair of this person, in every state, with its decision: the case's history.
export async function renderCasePairs(person, target) {
  try {
    const page = await api(`/v1/matches?person_id=${encodeURIComponent(person.id)}&sort=score&limit=50`);
    if (!page.total) {
      target.replaceChildren(el("p", { class: "muted" }, "No candidate pair yet."));
      return;
    }
    const states = page.items.map((m) => m.state).filter((v, i, all) => all.indexOf(v) === i);
    target.replaceChildren(el("p", { class: "muted" }, `${page.total} pair(s), best score first; state: ${states.join(", ")}`),
      ...page.items.map((m) => pairCard(m, () => location.reload())));
  } catch (err) {
    showError(err);
  }
}

async function renderNotes(person, list) {
  try {
    const notes = await api(`/v1/persons/${person.id}/notes`);
    list.replaceChildren(...(notes.length ? notes.map((n) => el("li", {},
      el("p", { class: "muted" }, `${when(n.created_at)} · ${n.author || "unknown author"}`),
      el("p", { class: "note-text" }, n.text))) : [el("li", { class: "muted" }, "No note yet.")]));
  } catch (err) {
    showError(err);
  }
}

function noteForm(person, list) {
  const text = el("textarea", { name: "text", rows: 4, maxlength: 10000, required: true });
  const form = el("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearFormError(form);
    busy(form, true);
    try {
      await api(`/v1/persons/${person.id}/notes`, json("POST", { text: text.value }));
      form.reset();
      await renderNotes(person, list);
    } catch (err) {
      formError(form, err);
    } finally {
      busy(form, false);
    }
  } }, field("New note (kept as written: notes are never edited)", text),
  el("button", { type: "submit" }, "Add note"));
  return form;
}

const PHOTO_RULE = "on or after the birth, not in the future; empty: unknown";

function uploadForm(person, gallery) {
  const files = el("input", { type: "file", name: "files", multiple: true, accept: "image/jpeg,image/png,image/webp", required: true });
  const dates = el("div", { class: "dates row" });
  files.addEventListener("change", () => {
    dates.replaceChildren(...[...files.files].map((f, i) =>
      field(`Date of ${f.name}`, el("input", { type: "date", name: "taken_at", "data-index": i }), PHOTO_RULE)));
  });
  const report = el("ul", { class: "report", "aria-live": "polite" });
  // Each file's outcome in the list, and a refused file's reason under its own date too.
  const list = (results) => {
    results.forEach((r, i) => {
      const conflict = r.photo && r.photo.age_conflict
        ? ` — but the age does not fit: ${r.photo.age_check.reason}. Check the photo's date and the birth date.` : "";
      const why = r.error ? describe(new ApiError(0, r.error.code, r.error.message)) : "";
      const poor = r.warning ? ` — but ${r.warning}.` : "";  // why, and what to look for
      report.append(el("li", { class: r.status === "refused" ? "error" : (conflict || poor ? "warning" : "") },
        `${r.filename}: ${r.status}${why ? ` — ${why}` : ""}${conflict}${poor}`));
      const date = dates.querySelector(`[data-index="${i}"]`);
      if (r.error && date && /photo date|not a date/.test(r.error.message)) {
        date.setAttribute("aria-invalid", "true");
        date.closest(".field").append(el("p", { class: "error form-error", role: "alert" }, why));
      }
    });
  };
  const form = el("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearFormError(form);
    report.replaceChildren();
    if (!files.files.length) {
      formError(form, new Error("Choose one or more photos first."));
      return;
    }
    const data = new FormData();
    const given = [...dates.querySelectorAll("input")].map((i) => i.value);
    [...files.files].forEach((f) => data.append("files", f));
    if (given.some((v) => v)) given.forEach((v) => data.append("taken_at", v));  // empty: unknown
    busy(form, true);
    try {
      const answer = await api(`/v1/persons/${person.id}/photos`, { method: "POST", body: data });
      list(answer.results);
      report.prepend(el("li", { class: "notice", role: "status" },
        `${answer.stored} stored, ${answer.duplicates} already stored, ${answer.refused} refused.`));
      if (!answer.refused) {
        form.reset();
        dates.replaceChildren();
      }
      await renderGallery(person, gallery);
    } catch (err) {
      if (err instanceof ApiError && err.results) {
        list(err.results);  // every file refused: say why for each, where the eye is
        report.prepend(el("li", { class: "error", role: "alert" }, `No photo was stored: ${err.results.length} refused.`));
      } else {
        report.append(el("li", { class: "error", role: "alert" }, describe(err)));
      }
    } finally {
      busy(form, false);
    }
    report.scrollIntoView({ block: "nearest" });
  } }, field("Photos (one face each)", files), dates, el("button", { type: "submit" }, "Upload"), report);
  return form;
}

async function renderGallery(person, gallery) {
  try {
    const [photos, quality] = await Promise.all([api(`/v1/persons/${person.id}/photos`),
      api(`/v1/persons/${person.id}/quality`)]);
    if (!photos.length) {
      gallery.replaceChildren(el("p", { class: "muted" }, "No photo yet."));
      return;
    }
    const figures = [];
    const order = (p) => p.taken_at || "9999";
    const byDate = [...photos].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
    for (const p of byDate) {
      const src = await api(p.image_url).then((blob) => URL.createObjectURL(blob));
      const face = p.faces[0];
      const age = p.age_at_photo !== null ? `${years(p.age_at_photo)} (from birth date)` : `${years(face?.age)} (estimated)`;
      figures.push(el("figure", { class: p.age_conflict ? "conflict" : null },
        boxedPhoto(src, p.width, p.height, p.faces.map((f) => f.box), `photo of ${nameOf(person)}`),
        el("figcaption", {}, `${p.filename || "photo"} · ${dateText(p.taken_at)} · age ${age}`,
          p.age_conflict ? el("span", { class: "warning" }, ` · Age conflict: ${p.age_check.reason}. Misfiled photo or wrong date?`) : null,
          face ? qualityLine(face.quality) : null),
        may("enroll") ? el("div", { class: "photo-actions" }, photoDateForm(person, p, gallery),
          deletePhotoButton(person, p, gallery)) : null));
    }
    const warning = quality.warning
      ? el("p", { class: "warning", id: "photo-quality", role: "status" }, `${quality.warning[0].toUpperCase()}${quality.warning.slice(1)}`)
      : null;
    gallery.replaceChildren(...(warning ? [warning] : []), ...figures);
  } catch (err) {
    showError(err);
  }
}

// A photo filed under the wrong date: correct it; its age check and the pairs follow.
function photoDateForm(person, photo, gallery) {
  const name = photo.filename || "this photo";
  const input = el("input", { type: "date", name: "taken_at", value: photo.taken_at || "" });
  const form = el("form", { class: "row date-form", onsubmit: async (event) => {
    event.preventDefault();
    clearFormError(form);
    busy(form, true);
    try {
      await api(`/v1/photos/${photo.id}`, json("PATCH", { taken_at: input.value || null }));
      await renderGallery(person, gallery);
      const pairs = document.querySelector('[aria-label="Candidate pairs"]');
      if (pairs) await renderCasePairs(person, pairs);
      showNotice(`${name} is now dated ${dateText(input.value || null)}; its age check and pairs were worked out again.`);
    } catch (err) {
      busy(form, false);
      formError(form, err);
    }
  } }, field(`Date of ${name}`, input, PHOTO_RULE),
  el("button", { type: "submit", class: "secondary" }, "Save date"));
  return form;
}

function deletePhotoButton(person, photo, gallery) {
  const name = `${photo.filename || "this photo"} (${dateText(photo.taken_at)})`;
  const open = () => ask({
    title: `Delete ${name}?`, yes: "Delete the photo", danger: true,
    body: [el("p", {}, `This deletes ${name} of ${nameOf(person)} and its face: it leaves the search index ` +
      "and cross-matching. Other photos of the person stay. This cannot be undone.")],
    onyes: async () => {
      try {
        await api(`/v1/photos/${photo.id}`, { method: "DELETE" });
        await renderGallery(person, gallery);
        showNotice(`${name} deleted.`);
      } catch (err) {
        showError(err);
      }
    },
  });
  return el("div", {}, el("button", { type: "button", class: "secondary", onclick: open }, `Delete ${photo.filename || "photo"}…`));
}

function eraseButton(person) {
  const open = async () => {
    let photos = [];
    try { photos = await api(`/v1/persons/${person.id}/photos`); } catch (err) { showError(err); return; }
    const faces = photos.reduce((n, p) => n + p.faces.length, 0);
    const what = `${whoText(person)}, ${photos.length} photo(s) and ${faces} face(s)`;
    ask({
      title: `Erase ${nameOf(person)}?`, yes: "Erase for good", danger: true,
      body: [el("p", {}, `This erases the record of ${what}, and their undecided review pairs. ` +
        "Decided review pairs stay as history, keeping only who decided, when and why. " +
        "A record linked to this one will say its linked record was erased. This cannot be undone.")],
      onyes: async (form) => {
        try {
          await api(`/v1/persons/${person.id}`, { method: "DELETE" });
        } catch (err) {
          formError(form, err);
          return false;
        }
        flash(`Erased the record of ${what}, with its undecided pairs.`);
        location.href = "/console/persons";
        return true;
      },
    });
  };
  return el("div", { class: "card" }, el("button", { type: "button", class: "danger", onclick: open }, `Erase ${nameOf(person)}…`));
}
