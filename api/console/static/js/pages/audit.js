// The audit trail (admins): who did what, when, with each outcome in words.
import { api } from "../api.js";
import { el, field, filterForm, select, show, showError } from "../dom.js";
import { fixed, when } from "../format.js";
import { VOCABULARY, choices, may } from "../session.js";

export async function renderAudit() {
  if (!may("admin")) {
    show(el("p", {}, "The audit trail is for admins."));
    return;
  }
  const params = new URLSearchParams(location.search);
  const filters = filterForm({ class: "card row" }, {},
  field("Action", select("action", [["", "any"], ...choices(VOCABULARY.actions)], params.get("action") || "")),
  field("Key id", el("input", { name: "key_id", value: params.get("key_id") })),
  el("button", { type: "submit" }, "Filter"));
  const nodes = [filters];
  try {
    const query = new URLSearchParams({ limit: 100 });
    for (const name of ["action", "key_id"]) if (params.get(name)) query.set(name, params.get(name));
    const entries = await api(`/v1/audit?${query}`);
    const columns = ["Time", "Action", "Key", "Client", "Faces", "Outcome"];
    nodes.push(el("table", { class: "stack audit" },
      el("caption", {}, `${entries.length} most recent entries`),
      el("thead", {}, el("tr", {}, columns.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, entries.map((e) => el("tr", {},
        [when(e.at), e.action, e.key_name || "—", e.client || "—", e.faces_found, outcome(e)]
          .map((value, i) => el("td", { "data-label": columns[i] }, value)))))));
  } catch (err) {
    showError(err);
  }
  show(...nodes);
}

// What an entry did, in words: persons by name (a record since erased says so).
export function outcome(entry) {
  const who = (id) => entry.names[id] || `an erased record (${String(id).slice(0, 8)}…)`;
  return entry.results.map((r) => {
    if (r.error) return `refused: ${r.error}`;
    if (r.report) return `case report of ${who(r.report)}`;
    if (r.table) return `the ${r.table} list as CSV, ${r.rows} row(s)`;
    if (r.candidates) return r.candidates.length ? `top ${who(r.candidates[0].person_id)} ${fixed(r.candidates[0].score, 3)}` : "no candidate";
    if (r.decision) return `${r.decision} pair ${r.match_id}: ${who(r.missing_person_id)} and ${who(r.found_person_id)}`;
    if (r.changed) return `changed ${Object.keys(r.changed).join(", ") || "nothing"} of ${who(r.person_id)}`;
    if (r.files) return `${r.files.filter((f) => f.status === "stored").length} of ${r.files.length} photos stored for ${who(r.person_id)}`;
    if (r.job_id) return Object.entries(r).filter(([k]) => k !== "job_id").map(([k, v]) => `${k} ${v}`).join(", ");
    if (r.key_id) return `key ${r.name || r.key_id}`;
    if (r.taken_at) return `re-dated a photo of ${who(r.person_id)}: ${r.taken_at.before || "undated"} → ${r.taken_at.after || "undated"}`;
    if (r.photo_id) return `photo ${r.filename || String(r.photo_id).slice(0, 8) + "…"} of ${who(r.person_id)}`;
    if (r.person_id && r.score === undefined) return `person ${who(r.person_id)}`;
    if (r.manifest) return `imported ${r.manifest}: ${Object.entries(r.outcomes).map(([k, n]) => `${n} ${k}`).join(", ") || "no rows"}`;
    if (r.target) return `exported ${r.persons.length} persons, ${r.photos} photos to ${r.target}`;
    if (r.score !== undefined) return `${r.person_id ? who(r.person_id) : "a face"} score ${fixed(r.score, 3)}`;
    return Object.keys(r).join(", ") || "—";
  }).join("; ") || "—";
}
