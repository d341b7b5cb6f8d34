// What the pages draw: score bars against the threshold, photos with their faces boxed,
// face crops, and age-check lines.
import { imageUrl } from "./api.js";
import { el } from "./dom.js";
import { state } from "./session.js";

export const VERDICTS = { consistent: "Age fits", unlikely: "Age unlikely", impossible: "Age impossible" };

// The age check of a face against a declared birth: a line saying what it found.
export function ageCheckLine(check) {
  if (!check) return null;
  return el("div", { class: `age-check ${check.verdict}` }, `${VERDICTS[check.verdict]}: ${check.reason}.`);
}

export function verdict(score) {
  if (score >= state.me.match_threshold) return ["match", "Match"];
  if (score >= state.me.candidate_threshold) return ["possible", "Possible"];
  return ["no", "No match"];
}

// What a score means here, in words, against the two thresholds.
export function scoreMeaning(score) {
  const { match_threshold: match, candidate_threshold: candidate } = state.me;
  if (score >= match) return `at or above the match threshold (${match}): as alike as one stranger pair in 10,000 gets`;
  if (score >= candidate) return `between the candidate floor (${candidate}) and the match threshold (${match}): worth a person's look, as cross-age pairs of one person often score`;
  return `below the candidate floor (${candidate}): strangers often score this`;
}

export function scoreBar(score) {
  const [kind, label] = verdict(score);
  const pct = (v) => `${Math.max(0, Math.min(100, v * 100))}%`;
  return el("div", { class: "score" },
    el("div", { class: "bar", role: "img",
      "aria-label": `score ${score.toFixed(3)}, match threshold ${state.me.match_threshold}` },
      el("span", { class: `fill ${kind}`, style: { width: pct(score) } }),
      el("span", { class: "threshold", style: { left: pct(state.me.match_threshold) },
        title: `match threshold ${state.me.match_threshold}` })),
    el("span", { class: `verdict ${kind}` }, `${label} · ${score.toFixed(3)}`));
}

// A photo with its faces boxed; width and height are the photo's own pixels.
export function boxedPhoto(src, width, height, boxes, alt) {
  const frame = el("div", { class: "photo" }, el("img", { src, alt }));
  boxes.forEach((box, i) => {
    frame.append(el("span", {
      class: "box",
      style: {
        left: `${(100 * box.x) / width}%`, top: `${(100 * box.y) / height}%`,
        width: `${(100 * box.w) / width}%`, height: `${(100 * box.h) / height}%`,
      },
    }, el("span", { class: "tag" }, `${i + 1}`)));
  });
  return frame;
}

export function crop(url, alt) {
  const img = el("img", { class: "crop", alt, width: 96, height: 96 });
  if (url) imageUrl(url).then((src) => { img.src = src; }).catch(() => { img.alt = `${alt} (unavailable)`; });
  return img;
}

// A face's image quality: its score and, in words, the component that limits it.
export function qualityLine(quality) {
  if (!quality) return el("div", { class: "quality muted" }, "Quality not measured (stored before it was).");
  const low = quality.score < state.me.quality_warn_below;
  return el("div", { class: `quality ${low ? "low" : "fine"}` },
    `Quality ${quality.score}/100: ${quality.reason}` + (low ? " — this face will search badly." : ""));
}
