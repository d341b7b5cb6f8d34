// Photo quality (admins): each register's faces by quality, and the persons whose best photo
// is too low to search by: the ones to ask families for another photo.
import { api, download } from "../api.js";
import { el, show, showError } from "../dom.js";
import { nameOf } from "../format.js";
import { may } from "../session.js";

export async function renderQuality() {
  if (!may("admin")) {
    show(el("p", {}, "The photo quality overview is for admins."));
    return;
  }
  const nodes = [el("p", {}, "Each face's quality is measured when it is enrolled (ISO/IEC 29794-5 components). ",
    "A person whose best photo is low will be missed by searches: ask the family or the unit for another photo."),
  el("div", { class: "row actions" }, el("button", { type: "button", class: "secondary", onclick: () =>
    download("/v1/admin/quality.csv", "quality.csv").catch(showError) }, "Download the list as CSV"))];
  try {
    for (const r of await api("/v1/admin/quality")) nodes.push(register(r));
  } catch (err) {
    showError(err);
  }
  show(...nodes);
}

function register(r) {
  const most = Math.max(1, ...Object.values(r.bands));
  const bands = el("div", { class: "bands", role: "img",
    "aria-label": Object.entries(r.bands).map(([band, n]) => `${n} faces scoring ${band}`).join(", ") },
  Object.entries(r.bands).map(([band, n]) => el("div", { class: "band-column" },
    el("div", { class: "band", style: { height: `${(5 * n) / most}rem` } }), el("div", { class: "muted" }, band))));
  const columns = ["Person", "Status", "Best score", "Why, and what to ask for"];
  const table = r.below.length ? el("table", { class: "stack" },
    el("caption", {}, `${r.below.length} person(s) to ask for another photo`),
    el("thead", {}, el("tr", {}, columns.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, r.below.map((p) => el("tr", {}, [
      el("a", { href: `/console/persons/${p.person_id}` }, nameOf(p)),
      p.status, p.best ? `${p.best.score}/100` : "—", p.advice,
    ].map((value, i) => el("td", { "data-label": columns[i] }, value))))))
    : el("p", { class: "muted" }, "Every person here has a photo good enough to search by.");
  return el("section", { class: "card", "aria-label": `${r.name} register` },
    el("h2", {}, `${r.name[0].toUpperCase()}${r.name.slice(1)} register`),
    el("p", {}, `${r.persons} persons, ${r.faces} faces (${r.measured} measured).`),
    bands, table);
}
