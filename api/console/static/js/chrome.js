// What every page shares: the navigation (only the pages the role may use), who is signed
// in, the pending count, and the banners.
import { api, forget } from "./api.js";
import { el, showError } from "./dom.js";
import { may, state } from "./session.js";

export function renderChrome() {
  const page = document.body.dataset.page;
  const links = [];
  if (may("search")) links.push(["search", "Search"]);
  links.push(["persons", "Persons"], ["review", "Review queue"]);
  if (may("admin")) links.push(["audit", "Audit"], ["quality", "Photo quality"]);
  document.getElementById("nav").replaceChildren(...links.map(([name, text]) =>
    el("a", { href: `/console/${name}`, "aria-current": name === page ? "page" : null, "data-nav": name }, text)));
  pendingCount();
  setInterval(pendingCount, 60_000);
  if (may("admin")) parkedNotice();
  const who = document.getElementById("who");
  if (state.me.auth === "keyless-local") {
    who.replaceChildren(el("span", {}, "local admin"));
    document.getElementById("banner").replaceChildren(el("p", { class: "warning" },
      "Keyless local mode: no API key was ever created, so anyone who can reach this address " +
      "acts as admin. Create keys (facedb keys create) before sharing this service."));
  } else {
    who.replaceChildren(el("span", {}, `${state.me.name} (${state.me.role})`), " ",
      el("button", { type: "button", class: "link", onclick: () => {
        forget();
        location.href = "/console/signin";
      } }, "Sign out"));
  }
}

// The review queue's link carries the number of pairs waiting: refreshed every minute and
// after each of the reader's own decisions.
export async function pendingCount() {
  const link = document.querySelector('[data-nav="review"]');
  if (!link) return;
  try {
    const page = await api("/v1/matches?state=pending&limit=1");
    link.textContent = `Review queue (${page.total})`;
    link.setAttribute("aria-label", `Review queue, ${page.total} pairs waiting`);
  } catch (err) {
    link.textContent = "Review queue";  // the count is a courtesy: never an error banner
  }
}

// Webhook events that failed every attempt wait, parked, until an admin sends them again.
async function parkedNotice() {
  let health;
  try { health = await api("/v1/health"); } catch (err) { return; }  // 503 bodies are errors here
  const parked = health.notifications && health.notifications.parked;
  if (!parked) return;
  const notice = el("div", { class: "warning", role: "status", "data-parked": "" },
    `${parked} notification(s) to the webhook receiver failed every attempt and are parked` +
    `${health.notifications.last_error ? ` (last: ${health.notifications.last_error})` : ""}. ` +
    "Fix the receiver, then ",
    el("button", { type: "button", class: "secondary", onclick: async () => {
      try {
        const answer = await api("/v1/admin/notifications/retry", { method: "POST" });
        notice.replaceChildren(`${answer.requeued} notification(s) will be sent again.`);
      } catch (err) {
        showError(err);
      }
    } }, "send them again"));
  document.getElementById("banner").append(notice);
}
