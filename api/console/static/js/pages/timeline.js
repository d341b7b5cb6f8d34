// One timeline on the case page: the record, its photos (when taken, when added), pairs
// raised and decided, notes (saved searches among them) and, for admins, case reports made.
import { api } from "../api.js";
import { el, showError } from "../dom.js";
import { when, whoText } from "../format.js";
import { may } from "../session.js";

const shorten = (text, n = 140) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

async function events(person) {
  const [photos, pairs, notes] = await Promise.all([
    api(`/v1/persons/${person.id}/photos`),
    api(`/v1/matches?person_id=${encodeURIComponent(person.id)}&sort=date&limit=200`),
    api(`/v1/persons/${person.id}/notes`)]);
  const out = [{ at: person.created_at, kind: "Record", text: "created" }];
  for (const p of photos) {
    const name = p.filename || "a photo";
    if (p.taken_at) out.push({ at: p.taken_at, kind: "Photo", text: `${name} taken`, dateOnly: true });
    out.push({ at: p.created_at, kind: "Photo", text: `${name} added${p.age_conflict ? " (age conflict)" : ""}` });
  }
  for (const m of pairs.items) {
    const other = m.missing.person_id === person.id ? m.found : m.missing;
    out.push({ at: m.created_at, kind: "Pair", text: `pair ${m.id} raised with ${whoText(other.person)}, score ${m.score.toFixed(3)}` });
    if (m.decision) {
      out.push({ at: m.decision.at, kind: "Decision",
        text: `pair ${m.id} ${m.state} by ${m.decision.by || "—"}${m.decision.note ? `: “${shorten(m.decision.note)}”` : ""}` });
    }
  }
  for (const n of notes) out.push({ at: n.created_at, kind: n.text.startsWith("Search by ") ? "Search" : "Note", text: `${n.author || "unknown author"}: ${shorten(n.text)}` });
  if (may("admin")) {
    const exports = await api("/v1/audit?action=export&limit=500").catch(() => []);
    for (const e of exports) {
      if (e.results.some((r) => r.report === person.id)) out.push({ at: e.at, kind: "Report", text: `case report made by ${e.key_name || "local admin"}` });
    }
  }
  return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
}

export async function renderTimeline(person, target) {
  try {
    const items = await events(person);
    target.replaceChildren(...items.map((e) => el("li", { "data-kind": e.kind.toLowerCase() },
      el("span", { class: "when" }, e.dateOnly ? e.at : when(e.at)),
      el("span", {}, el("span", { class: "kind" }, e.kind), e.text))));
  } catch (err) {
    showError(err);
  }
}
