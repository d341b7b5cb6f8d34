// The review queue: pairs by state, filtered, sorted and paged; or one pair by its number.
import { api, download } from "../api.js";
import { el, field, filterForm, pager, select, show, showError } from "../dom.js";
import { dateText, nameOf, whoText, years } from "../format.js";
import { crop } from "../widgets.js";
import { pairCard } from "./pair.js";

const TABS = [["pending", "Waiting"], ["confirmed", "Confirmed"], ["rejected", "Rejected"],
  ["inconclusive", "Inconclusive"], ["superseded", "Superseded"], ["impossible", "Impossible by age"]];
const EXPLAINED = {
  pending: ", pairs without warnings first, then by how far each stands above the two persons' other candidates",
  impossible: ": the age check rules these out (a photo before the birth, or a face far too old or young). Kept here so nothing is lost: confirm one if the dates were wrong.",
  inconclusive: ": a reviewer could not decide these (the reason is on each); a new photo of either person puts a pair back in the queue",
  superseded: ": one of their persons was linked to someone else by a confirmation; reversing it brings them back",
};
const LIMIT = 20;
const FILTERS = ["min_score", "external_ref", "warned", "max_years_between"];

export async function renderReview() {
  const params = new URLSearchParams(location.search);
  if (params.get("pair")) {
    await renderOne(params.get("pair"));
    return;
  }
  const wanted = params.get("state") || "pending";
  const tabs = el("nav", { class: "tabs", "aria-label": "Review states" },
    TABS.map(([s, text]) => el("a", { href: `?state=${s}`, "aria-current": s === wanted ? "page" : null }, text)));
  const queue = wanted === "pending" || wanted === "impossible";
  const sort = params.get("sort") || (queue ? "evidence" : "date");
  const filters = filterForm({ class: "card row filters", role: "search" }, { state: wanted },
  field("Score from", el("input", { type: "number", name: "min_score", min: -1, max: 1, step: 0.01, value: params.get("min_score") })),
  field("Case number", el("input", { name: "external_ref", maxlength: 200, value: params.get("external_ref") }), "either side"),
  field("Warnings", select("warned", [["", "any"], ["true", "with a warning"], ["false", "without"]], params.get("warned") || "")),
  field("Years between, at most", el("input", { type: "number", name: "max_years_between", min: 0, max: 150, step: 1, value: params.get("max_years_between") })),
  field("Order", select("sort", [["evidence", "evidence (the queue's order)"], ["score", "highest score"], ["date", "newest"]], sort)),
  el("button", { type: "submit" }, "Apply"));
  const nodes = [tabs, filters];
  const offset = Number(params.get("offset") || 0);
  try {
    const filtered = new URLSearchParams({ state: wanted, sort });
    for (const name of FILTERS) if (params.get(name)) filtered.set(name, params.get(name));
    const page = await api(`/v1/matches?${filtered}&limit=${LIMIT}&offset=${offset}`);
    const shown = page.total ? ` (${offset + 1}–${offset + page.items.length} shown)` : "";
    nodes.push(el("p", { class: "muted" }, `${page.total} pair(s)${shown}${EXPLAINED[wanted] || ", newest first"}`));
    nodes.push(...page.items.map((m) => pairCard(m, renderReview)));
    const csv = el("button", { type: "button", class: "secondary", onclick: () =>
      download(`/v1/exports/pairs.csv?${filtered}`, `pairs-${wanted}.csv`).catch(showError) },
    `Download these ${page.total} pairs as CSV`);
    nodes.push(pager(params, offset, LIMIT, page.total), el("p", {}, csv));
  } catch (err) {
    showError(err);
  }
  show(...nodes);
}

// One pair, and why it is here: every photo of both persons with its date and age, and
// each side's other candidates with their scores.
async function renderOne(id) {
  const back = el("p", {}, el("a", { href: "/console/review" }, "← The review queue"));
  try {
    const m = await api(`/v1/matches/${encodeURIComponent(id)}`);
    const why = el("section", { class: "why", "aria-label": "Why this pair" });
    show(back, pairCard(m, () => renderOne(id)), el("h2", {}, "Why this pair"), why);
    why.replaceChildren(...await Promise.all([[m.missing, "Missing"], [m.found, "Found"]].map(
      ([side, label]) => sideEvidence(m, side, label))));
  } catch (err) {
    show(back);
    showError(err);
  }
}

async function sideEvidence(m, side, label) {
  if (!side.person) return el("div", { class: "card" }, el("h3", {}, label), el("p", { class: "muted" }, "an erased record"));
  const [photos, others] = await Promise.all([
    api(`/v1/persons/${side.person.id}/photos`),
    api(`/v1/matches?person_id=${encodeURIComponent(side.person.id)}&sort=score&limit=10`)]);
  const faces = photos.flatMap((p) => p.faces.map((f) => el("figure", { class: "evidence-face" },
    crop(f.crop_url, `a face of ${nameOf(side.person)}`),
    el("figcaption", {}, `${dateText(p.taken_at)} · age ${p.age_at_photo !== null ? years(p.age_at_photo) : `about ${years(f.age)}`}` +
      (p.age_conflict ? " · age conflict" : "")))));
  const rivals = others.items.filter((o) => o.id !== m.id).map((o) => {
    const other = o.missing.person_id === side.person.id ? o.found : o.missing;
    return el("li", {}, el("a", { href: `/console/review?pair=${o.id}` }, `pair ${o.id}`),
      ` with ${whoText(other.person)}: ${o.score.toFixed(3)} (${o.state})`);
  });
  return el("div", { class: "card" }, el("h3", {}, `${label}: ${whoText(side.person)}`),
    el("div", { class: "evidence-faces" }, faces),
    el("p", {}, rivals.length ? "Their other candidates, best first:" : "No other candidate."),
    rivals.length ? el("ul", { class: "rivals" }, rivals) : null);
}
