// Who is signed in, what their role may do, and the closed sets the server sends.

export const state = { me: null };

// The closed sets (statuses, genders, audit actions, pair states, case details) come from
// the server, from the one place they are defined.
export const VOCABULARY = JSON.parse(document.body.dataset.vocabulary || "{}");
export const choices = (values) => (values || []).map((v) => [v, v]);
export const STATUSES = choices(VOCABULARY.statuses);
export const DETAILS = VOCABULARY.details || {};

export const may = (permission) => !!state.me && state.me.permissions.includes(permission);

// The first page a role may use: the searcher's search, the enroller's persons.
export const landing = () => (may("search") ? "/console/search" : "/console/persons");

// Where to go after signing in: the page that sent the reader to sign in, if it is ours.
export function afterSignIn() {
  const next = new URLSearchParams(location.search).get("next") || "";
  const ours = next.startsWith("/console/") && !next.startsWith("/console/signin") && !next.includes("//");
  return ours ? next : landing();
}

// A sentence to show on the next page (after an erase, the list says what was erased).
const FLASH = "facedb-flash";
export const flash = (text) => sessionStorage.setItem(FLASH, text);
export function takeFlash() {
  const text = sessionStorage.getItem(FLASH);
  sessionStorage.removeItem(FLASH);
  return text;
}
