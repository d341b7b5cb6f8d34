// Words and numbers as a caseworker reads them: ages in completed years, ISO dates,
// times with their zone.

// An age in completed years (29.8 is 29: a person counts years they have lived).
export function years(age) {
  if (age === null || age === undefined) return "—";
  return String(Math.floor(Number(age) + 1e-9));
}

export const fixed = (value, digits) =>
  (value === null || value === undefined ? "—" : Number(value).toFixed(digits));

export const dateText = (value) => value || "undated";

const two = (n) => String(n).padStart(2, "0");

// A moment as "2026-12-07 09:15 UTC+01:00", in the reader's own zone.
export function when(iso) {
  if (!iso) return "—";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return String(iso);
  const offset = -t.getTimezoneOffset();
  const zone = offset === 0 ? "UTC"
    : `UTC${offset > 0 ? "+" : "-"}${two(Math.floor(Math.abs(offset) / 60))}:${two(Math.abs(offset) % 60)}`;
  return `${t.getFullYear()}-${two(t.getMonth() + 1)}-${two(t.getDate())} ` +
    `${two(t.getHours())}:${two(t.getMinutes())} ${zone}`;
}

// The date part of a moment, as an ISO date in the reader's zone.
export const day = (iso) => (iso ? when(iso).slice(0, 10) : "—");

export function ageText(age, source) {
  if (age === null || age === undefined) return "age unknown";
  return `${years(age)} years (${source === "declared" ? "from birth date" : "estimated"})`;
}

// A case detail's label: the unit's own (from the server), else its key in words.
export function detailLabel(key, labels) {
  if (labels[key]) return labels[key];
  const words = key.replace(/[_-]/g, " ").trim();
  return words ? words.charAt(0).toUpperCase() + words.slice(1) : key;
}

// A person as the pages name them: a record whose name is blank is still openable.
export const nameOf = (person) => (person && person.name && person.name.trim()) || "(no name)";

export function whoText(person) {
  if (!person) return "a deleted record";
  return `${nameOf(person)}${person.external_ref ? ` (case ${person.external_ref})` : ""}`;
}
