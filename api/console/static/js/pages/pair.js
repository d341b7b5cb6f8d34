// One candidate pair as a card: both faces side by side, every warning of the pair and of
// the photos it rests on, the score in words, and (for a reviewer) the decision.
import { api, json } from "../api.js";
import { ask, el, field, formError, select, showNotice } from "../dom.js";
import { ageText, dateText, fixed, nameOf, when, whoText } from "../format.js";
import { pendingCount } from "../chrome.js";
import { may, state } from "../session.js";
import { VERDICTS, ageCheckLine, crop, qualityLine, scoreBar, scoreMeaning } from "../widgets.js";

// Why a reviewer could not decide (the API's `reason` of an inconclusive decision).
export const REASONS = [["better_photo", "Needs a better photo"], ["second_examiner", "Needs another examiner"],
  ["dna_or_dental", "Needs DNA or dental records"]];
const reasonText = (reason) => (REASONS.find(([v]) => v === reason) || [reason, reason])[1];

function sideView(side, label) {
  const person = side.person;
  return el("div", { class: "side" },
    el("h3", {}, label),
    crop(side.crop_url, `the ${label.toLowerCase()} person's face`),
    person ? el("a", { href: `/console/persons/${person.id}` }, nameOf(person)) : el("span", { class: "muted" }, "deleted record"),
    el("div", { class: "muted" }, person ? `${person.status} · case ${person.external_ref || "—"}` : ""),
    el("div", {}, `${ageText(side.age_at_photo, side.age_source)} · ${dateText(side.taken_at)}`),
    person ? qualityLine(side.quality) : null);
}

// Every warning the reviewer must weigh, in words.
export function pairWarnings(m) {
  const warnings = [];
  if (m.age_check && m.age_check.verdict !== "consistent") warnings.push(`${VERDICTS[m.age_check.verdict]}: ${m.age_check.reason}.`);
  for (const [side, label] of [[m.missing, "missing"], [m.found, "found"]]) {
    if (side.photo_warning) {
      warnings.push(`The ${label} person's photo is in doubt: ${side.photo_warning.reason}. Misfiled photo or wrong date?`);
    }
  }
  if (m.gender_conflict) warnings.push("Gender differs: a recorded gender does not match the other side's.");
  return warnings;
}

export function pairCard(m, afterDecision) {
  const warnings = pairWarnings(m);
  const card = el("article", { class: "card pair", id: `pair-${m.id}`, "data-pair": m.id },
    el("div", { class: "sides" }, sideView(m.missing, "Missing"), sideView(m.found, "Found")),
    el("p", {}, `Pair ${m.id} · ${m.state} · ` +
      `${m.years_between === null ? "years between unknown" : `${fixed(m.years_between, 1)} years between the photos`}` +
      ` · the missing person's candidate no. ${m.rank} · stands ${fixed(m.evidence, 3)} above their other candidates`),
    ageCheckLine(m.age_check),
    ...[m.missing, m.found].filter((s) => s.photo_warning).map((s) => el("div", { class: "warning photo-warning" },
      `Photo in doubt (${s === m.missing ? "missing" : "found"} side): ${s.photo_warning.reason}. Misfiled photo or wrong date?`)),
    m.gender_conflict ? el("div", { class: "warning" }, "Gender differs: a recorded gender does not match the other side's. Check before confirming.") : null,
    scoreBar(m.score),
    el("p", { class: "muted meaning" }, `Score ${m.score.toFixed(3)}: ${scoreMeaning(m.score)}. `,
      new URLSearchParams(location.search).get("pair") === String(m.id) ? null
        : el("a", { href: `/console/review?pair=${m.id}` }, "Why this pair?")));
  if (m.superseded_by) {
    card.append(el("p", { class: "superseded" }, `Out of the queue since pair ${m.superseded_by} was confirmed: `,
      el("a", { href: `/console/review?pair=${m.superseded_by}` }, `open pair ${m.superseded_by}`),
      ". Rejecting that pair brings this one back."));
  }
  if (m.decision) {
    card.append(el("p", { class: "decision" },
      `${m.decision.reason && m.state !== "inconclusive" ? "inconclusive before, " : m.state} by ` +
      `${m.decision.by || "—"} on ${when(m.decision.at)}` +
      (m.decision.reason ? ` (${reasonText(m.decision.reason).toLowerCase()})` : "") +
      (m.decision.note ? `: “${m.decision.note}”` : "")));
  }
  const mine = m.claim && m.claim.by === (state.me.name || "local admin");
  if (m.claim) {
    card.append(el("p", { class: mine ? "claim mine" : "claim warning" },
      mine ? `You are working on this pair until ${when(m.claim.until)}.`
        : `Being reviewed by ${m.claim.by} until ${when(m.claim.until)}: decisions wait until they decide or the claim lapses.`));
  }
  if (may("review") && m.state !== "superseded") {
    const form = decisionForm(m, warnings, afterDecision);
    if (m.claim && !mine) form.querySelectorAll("button, textarea").forEach((b) => { b.disabled = true; });
    else if (m.state === "pending" || m.state === "impossible") form.querySelector(".row").append(claimButton(m, mine, form, afterDecision));
    card.append(form);
  }
  return card;
}

// Claim a pair for 30 minutes, so another reviewer sees it is being worked on; or release it.
function claimButton(m, mine, form, after) {
  return el("button", { type: "button", class: "secondary", onclick: async () => {
    try {
      await api(`/v1/matches/${m.id}/claim`, { method: mine ? "DELETE" : "PUT" });
      await after();
    } catch (err) {
      formError(form, err);
    }
  } }, mine ? "Release" : "Claim for 30 minutes");
}

function decisionForm(m, warnings, afterDecision) {
  const note = el("textarea", { name: "note", rows: 2, maxlength: 2000 });
  const form = el("form", { class: "decide", onsubmit: (event) => event.preventDefault() });
  const names = `${whoText(m.missing.person)} and ${whoText(m.found.person)}`;
  const decide = async (decision, text, reason) => {
    try {
      await api(`/v1/matches/${m.id}/decision`, json("POST", { decision, note: text || null, reason: reason || null }));
    } catch (err) {
      formError(form, err);
      return;
    }
    pendingCount();
    await afterDecision();
    showNotice(`Pair ${m.id} ${decision}: ${names}.`);
  };
  const warned = warnings.length
    ? [el("p", {}, "Warnings on this pair:"), el("ul", { class: "warnings" }, warnings.map((w) => el("li", {}, w)))] : [];
  const confirm = () => ask({
    title: "Confirm these are one person?", yes: "Yes, confirm",
    body: [el("p", {}, `${names} will be linked and both records closed: ` +
      "they leave cross-matching, and their other waiting pairs leave the queue (listed under Superseded). " +
      "Rejecting this pair later undoes it."), ...warned],
    onyes: () => decide("confirmed", note.value),
  });
  const reject = () => {
    const why = el("textarea", { name: "reason", rows: 3, maxlength: 2000, required: state.me.reject_note_required }, note.value);
    ask({
      title: "Reject this pair?", yes: "Yes, reject", danger: true,
      body: [el("p", {}, `${names} will be recorded as two different people` +
        (m.state === "confirmed" ? "; the confirmation is undone: the link goes and both records reopen." : ".")),
      field(state.me.reject_note_required ? "Why (this unit asks for a note)" : "Why (optional)", why)],
      onyes: async (dialogForm) => {
        if (state.me.reject_note_required && !why.value.trim()) {
          formError(dialogForm, new Error("Say why the two are not one person: this unit asks for a note with every rejection."));
          return false;
        }
        await decide("rejected", why.value);
        return true;
      },
    });
  };
  const unsure = () => {
    const reason = select("reason", REASONS, REASONS[0][0]);
    const why = el("textarea", { name: "note", rows: 3, maxlength: 2000 }, note.value);
    ask({
      title: "Inconclusive: what would decide it?", yes: "Record as inconclusive",
      body: [el("p", {}, `${names}: the pair leaves the queue and waits under Inconclusive until a new photo of either person arrives` +
        (m.state === "confirmed" ? "; the confirmation is undone: the link goes and both records reopen." : ".")),
      field("What is needed", reason), field("Note (optional)", why)],
      onyes: async () => {
        await decide("inconclusive", why.value, reason.value);
        return true;
      },
    });
  };
  form.append(field("Note", note), el("div", { class: "row" },
    m.state !== "confirmed" ? el("button", { type: "button", onclick: confirm }, "Confirm: same person") : null,
    m.state !== "rejected" ? el("button", { type: "button", class: "secondary", onclick: reject }, "Reject…") : null,
    m.state !== "inconclusive" ? el("button", { type: "button", class: "secondary", onclick: unsure }, "Inconclusive…") : null));
  return form;
}
