// The record's form, to create a person or change one: its fields, the case details, and
// every error said under the field it concerns.
import { busy, clearFormError, el, field, formError, select } from "../dom.js";
import { detailLabel } from "../format.js";
import { DETAILS, STATUSES, VOCABULARY, choices } from "../session.js";

const BIRTH_RULE = "not in the future, and not after the person's earliest photo";

// The values of a person's details the form edits: the unit's own, then any other the API
// set that is text (a detail that is not text is kept as it is, shown on the case page).
function editableDetails(person) {
  const held = (person && person.attributes) || {};
  const keys = [...Object.keys(DETAILS), ...Object.keys(held).filter((k) => !(k in DETAILS) && typeof held[k] === "string")];
  return keys.map((k) => [k, detailLabel(k, DETAILS), typeof held[k] === "string" ? held[k] : ""]);
}

export function personForm(person, onsave) {
  const details = editableDetails(person);
  const form = el("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    clearFormError(form);
    const body = {};
    const attributes = { ...((person && person.attributes) || {}) };
    for (const [name, raw] of new FormData(form).entries()) {
      const value = typeof raw === "string" ? raw.trim() : raw;
      if (name.startsWith("attributes.")) {
        const key = name.slice("attributes.".length);
        if (value) attributes[key] = value;
        else delete attributes[key];
      } else if (name === "name") body.name = raw;  // the service trims it; blank is refused, in words
      else if (value !== "") body[name] = name === "birth_year" ? Number(value) : value;
      else if (person) body[name] = null;
    }
    body.attributes = attributes;
    busy(form, true);
    try {
      await onsave(body);
    } catch (err) {
      busy(form, false);
      formError(form, err);
      return;
    }
    busy(form, false);
  } },
  el("div", { class: "row" },
    field("Name", el("input", { name: "name", required: true, maxlength: 300, value: person?.name })),
    field("Case number", el("input", { name: "external_ref", maxlength: 200, value: person?.external_ref })),
    field("Status", select("status", STATUSES, person?.status || "missing")),
    field("Gender", select("gender", [["", "not recorded"], ...choices(VOCABULARY.genders)], person?.gender || "")),
    field("Birth date", el("input", { type: "date", name: "birth_date", value: person?.birth_date }), BIRTH_RULE),
    field("or birth year", el("input", { type: "number", name: "birth_year", min: 1900, max: new Date().getFullYear(), value: person?.birth_year }),
      "when only the year is known")),
  el("fieldset", { class: "details" }, el("legend", {}, "Case details"),
    el("div", { class: "row" }, details.map(([key, label, value]) =>
      field(label, key === "circumstances"
        ? el("textarea", { name: `attributes.${key}`, rows: 2, maxlength: 4000 }, value)
        : el("input", { name: `attributes.${key}`, maxlength: 500, value }))))),
  el("button", { type: "submit" }, person ? "Save changes" : "Create person"));
  return form;
}
