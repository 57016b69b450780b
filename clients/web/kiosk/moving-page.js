// The phone's page of a moving checklist carried by QR (/moving?direction=…&done=…): the server
// checks the answers and ticks in the link and returns the checklist; ticks made here stay on this
// phone (localStorage), merged with the link's when the answers are the same.

import { bi } from './bilingual.js';
import { keep, loadKept, renderChecklist, sameAnswers, T } from './MovingHelper.js';

const root = document.querySelector('#checklist');
const state = { done: null, answer: null };

async function load() {
  const r = await fetch(`/api/helpers/moving/share${location.search}`, { credentials: 'same-origin' });
  const data = await r.json();
  if (!r.ok) throw new Error(data.reason ?? r.statusText);
  const a = data.checklist;
  const kept = loadKept();
  const steps = new Set(a.steps.map((s) => s.id));
  const done = new Set(data.done);
  if (sameAnswers(kept?.answers, a.answers)) for (const d of kept.done) if (steps.has(d)) done.add(d);
  keep(a.answers, done);
  state.done = done;
  state.answer = a;
  root.replaceChildren(...renderChecklist(a, done, () => keep(a.answers, done)), bi('p', T.kept, 'kiosk-meta'));
}

load().catch((e) => {
  root.replaceChildren(bi('p', { ja: `チェックリストを開けませんでした: ${e.message}`, en: `Could not open the checklist: ${e.message}` }, 'kiosk-unknown'));
});
window.emachiMoving = { done: () => (state.done ? [...state.done] : null), answer: () => state.answer };
