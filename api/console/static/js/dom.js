// Building the page: elements, form fields, and messages where the reader is looking.
import { ApiError, describe, forget } from "./api.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    // Positions and widths go through the CSSOM: the policy (style-src 'self') refuses
    // style attributes, and a bar or a box set that way would silently not draw.
    else if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let fieldCounter = 0;
export function field(label, control, hint) {
  const id = control.id || `f${++fieldCounter}`;
  control.id = id;
  const help = hint ? el("small", { class: "muted", id: `${id}-hint`, text: hint }) : null;
  if (help) control.setAttribute("aria-describedby", help.id);
  return el("div", { class: "field" }, el("label", { for: id, text: label }), control, help);
}

export function select(name, options, value) {
  return el("select", { name },
    options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
}

const content = () => document.getElementById("content");
export function show(...nodes) { content().replaceChildren(...nodes); }
export function clearMessages() { document.getElementById("messages").replaceChildren(); }

// An error that belongs to no form (a page that could not load): at the top, in view.
export function showError(err) {
  const box = document.getElementById("messages");
  box.replaceChildren(el("p", { class: "error" }, describe(err)));
  box.scrollIntoView({ block: "nearest" });
  if (err instanceof ApiError && err.status === 401 && document.body.dataset.page !== "signin") forget();
}

export function showNotice(text) {
  const box = document.getElementById("messages");
  box.replaceChildren(el("p", { class: "notice", role: "status" }, text));
  box.scrollIntoView({ block: "nearest" });
}

export function busy(form, on) {
  for (const control of form.querySelectorAll("button, input, select, textarea")) control.disabled = on;
  form.setAttribute("aria-busy", on ? "true" : "false");
}

// Clear what an earlier attempt said in this form.
export function clearFormError(form) {
  form.querySelectorAll(".form-error").forEach((n) => n.remove());
  form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
}

// An error of a form, said where the reader is: under the control it names (marked
// invalid and focused), else just above the form's button; scrolled into view.
export function formError(form, err) {
  clearFormError(form);
  const names = err instanceof ApiError ? err.fields : [];
  const control = names.map((n) => form.querySelector(`[name="${CSS.escape(n)}"]`)).find(Boolean);
  const said = el("p", { class: "error form-error", role: "alert" }, describe(err));
  if (control) {
    control.setAttribute("aria-invalid", "true");
    (control.closest(".field") || control.parentNode).append(said);
  } else {
    const button = form.querySelector("button[type=submit]");
    if (button) button.before(said);
    else form.append(said);
  }
  said.scrollIntoView({ block: "center" });
  if (control) control.focus({ preventScroll: true });
  return said;
}

// A dialog asking before an action; ``body`` the nodes that say what it touches.
export function ask({ title, body, yes, danger = false, onyes }) {
  const dialog = el("dialog", { "aria-label": title });
  const close = () => { dialog.close(); dialog.remove(); };
  const form = el("form", { method: "dialog", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const done = await onyes(form);
    if (done !== false) close();
  } },
  el("h2", {}, title), ...body,
  el("div", { class: "row" },
    el("button", { type: "submit", class: danger ? "danger" : null }, yes),
    el("button", { type: "button", class: "secondary", onclick: close }, "Cancel")));
  dialog.append(form);
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

// A filter form: submitting it reloads the page with its non-empty fields (after those of
// ``kept``) as the query string.
export function filterForm(attrs, kept, ...children) {
  const form = el("form", { ...attrs, onsubmit: (event) => {
    event.preventDefault();
    const query = new URLSearchParams(kept);
    for (const [name, value] of new FormData(form).entries()) if (value) query.set(name, value);
    location.search = query.toString();
  } }, ...children);
  return form;
}

// Previous / next links over a listing, keeping the page's other parameters.
export function pager(params, offset, limit, total) {
  const nav = el("nav", { class: "pager", "aria-label": "Pages" });
  const go = (to) => { params.set("offset", to); return `?${params}`; };
  if (offset > 0) nav.append(el("a", { href: go(Math.max(0, offset - limit)) }, "← Previous"));
  if (offset + limit < total) nav.append(el("a", { href: go(offset + limit) }, "Next →"));
  return nav;
}
