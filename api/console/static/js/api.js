// Talking to the API: every call carries the key kept in this tab (sessionStorage) only.

const KEY = "facedb-key";

export const key = () => sessionStorage.getItem(KEY);
export const keep = (value) => sessionStorage.setItem(KEY, value);
export const forget = () => sessionStorage.removeItem(KEY);

export class ApiError extends Error {
  constructor(status, code, message, details, results) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.results = results || null;  // an upload refused whole: each file's result
  }

  // The request's fields this error names (body.birth_date -> birth_date).
  get fields() {
    return this.details.map((d) => String(d.field || "").replace(/^(body|query|path)\./, ""))
      .filter(Boolean);
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
  contention: "Someone else changed this at the same moment. Nothing was saved; try again.",
  network: "The FaceDB service did not answer. Check that it is running and try again.",
};

// Codes whose server message adds the specifics (sizes, counts) to the friendly sentence;
// for the others the friendly sentence says it all, once.
// (multiple_faces has no friendly sentence: the server's says how many faces, and what to do.)
const SPECIFIC = new Set(["image_too_large", "request_too_large", "already_linked"]);

// The request's field names as the forms label them.
const FIELD_LABELS = {
  name: "Name", external_ref: "Case number", status: "Status", gender: "Gender",
  birth_date: "Birth date", birth_year: "Birth year", taken_at: "Photo date",
  attributes: "Case details", note: "Note", text: "Note", files: "Photos", file: "Photo",
  k: "Candidates per face", threshold: "Threshold", min_age: "Age from", max_age: "Age to",
};

export function fieldLabel(name) {
  if (FIELD_LABELS[name]) return FIELD_LABELS[name];
  const last = name.split(".").pop().replace(/_/g, " ");
  return last.charAt(0).toUpperCase() + last.slice(1);
}

const sentence = (text) => text.charAt(0).toUpperCase() + text.slice(1);

export function describe(err) {
  if (!(err instanceof ApiError)) return String(err.message || err);
  const friendly = FRIENDLY[err.code];
  const parts = [friendly || err.message];
  if (friendly && SPECIFIC.has(err.code) && err.message) parts.push(`(${err.message})`);
  const said = parts.join(" ");
  const detail = err.details.filter((d) => !said.includes(d.problem))  // say a thing once
    .map((d) => `${fieldLabel(String(d.field || "").replace(/^(body|query|path)\./, ""))}: ${d.problem}`);
  if (detail.length) parts.push(detail.join("; "));
  return sentence(parts.join(" "));
}

export async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (key()) headers.set("Authorization", `Bearer ${key()}`);
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

export const json = (method, body) => ({
  method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

export async function imageUrl(path) {
  return URL.createObjectURL(await api(path));
}

// Fetch a file with the key and hand it to the browser as a download.
export async function download(path, filename) {
  const blob = await api(path);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
}
