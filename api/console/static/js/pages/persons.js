// Persons: the filtered list, and a new person's form.
import { api, download, json } from "../api.js";
import { el, field, filterForm, pager, select, show, showError } from "../dom.js";
import { nameOf, years } from "../format.js";
import { STATUSES, may } from "../session.js";
import { personForm } from "./person-form.js";

export async function renderPersons() {
  const params = new URLSearchParams(location.search);
  const filters = filterForm({ class: "card row", role: "search" }, {},
  field("Name contains", el("input", { name: "name", value: params.get("name") })),
  field("Case number", el("input", { name: "external_ref", value: params.get("external_ref") })),
  field("Status", select("status", [["", "any"], ...STATUSES], params.get("status") || "")),
  el("button", { type: "submit" }, "Filter"));
  const limit = 25;
  const offset = Number(params.get("offset") || 0);
  const query = new URLSearchParams({ limit, offset });
  const filtered = new URLSearchParams();
  for (const name of ["name", "external_ref", "status"]) if (params.get(name)) filtered.set(name, params.get(name));
  for (const [name, value] of filtered) query.set(name, value);
  const nodes = [filters];
  try {
    const page = await api(`/v1/persons?${query}`);
    const columns = ["Name", "Case number", "Status", "Gender", "Age"];
    const rows = page.items.map((p) => el("tr", {},
      [el("a", { href: `/console/persons/${p.id}` }, nameOf(p)), p.external_ref || "—", p.status,
        p.gender || "—", years(p.age)].map((value, i) => el("td", { "data-label": columns[i] }, value))));
    // At phone width each row becomes a small card (labels from data-label): nothing off-screen.
    nodes.push(el("table", { class: "stack" },
      el("caption", {}, `${page.total} persons`),
      el("thead", {}, el("tr", {}, columns.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)));
    const csv = el("button", { type: "button", class: "secondary", onclick: () =>
      download(`/v1/exports/persons.csv?${filtered}`, "persons.csv").catch(showError) },
    `Download these ${page.total} persons as CSV`);
    nodes.push(pager(params, offset, limit, page.total), el("p", {}, csv));
  } catch (err) {
    showError(err);
  }
  if (may("enroll")) {
    nodes.push(el("h2", {}, "New person"), personForm(null, async (body) => {
      if (!Object.keys(body.attributes).length) delete body.attributes;
      const created = await api("/v1/persons", json("POST", body));
      location.href = `/console/persons/${created.id}`;
    }));
  }
  show(...nodes);
}
