// FaceDB console: the router. Each page is a module that fills the shell from the JSON API
// with the key kept in this tab only. No build step; nothing is fetched from outside.
import { ApiError, api } from "./api.js";
import { renderChrome } from "./chrome.js";
import { show, showError, showNotice } from "./dom.js";
import { renderAudit } from "./pages/audit.js";
import { renderPerson } from "./pages/person.js";
import { renderPersons } from "./pages/persons.js";
import { renderQuality } from "./pages/quality.js";
import { renderReview } from "./pages/review.js";
import { renderSearch } from "./pages/search.js";
import { renderSignin } from "./pages/signin.js";
import { state, takeFlash } from "./session.js";

const PAGES = {
  search: renderSearch, persons: renderPersons, person: renderPerson,
  review: renderReview, audit: renderAudit, quality: renderQuality,
};

async function boot() {
  const page = document.body.dataset.page;
  if (page === "signin") {
    renderSignin();
    return;
  }
  try {
    state.me = await api("/v1/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {  // back here once signed in
      location.href = `/console/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
      return;
    }
    show();
    showError(err);
    return;
  }
  renderChrome();
  const flashed = takeFlash();
  await PAGES[page]();
  if (flashed) showNotice(flashed);
}

boot();
