// Sign in with an API key; then the page that sent the reader here, or the role's first.
import { api, forget, keep } from "../api.js";
import { el, field, formError, show } from "../dom.js";
import { afterSignIn, state } from "../session.js";

export function renderSignin() {
  const key = el("input", { type: "password", name: "key", autocomplete: "off", required: true });
  const form = el("form", { class: "card narrow", onsubmit: async (event) => {
    event.preventDefault();
    keep(key.value.trim());
    try {
      state.me = await api("/v1/me");
      location.href = afterSignIn();
    } catch (err) {
      forget();
      formError(form, err);
    }
  } },
  field("API key", key, "Ask your administrator for a key. It is kept in this browser tab only."),
  el("button", { type: "submit" }, "Sign in"));
  show(form);
  key.focus();
}
