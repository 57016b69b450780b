// The watch-only page (/briefing/{id}): no avatar, no place in the hall. It says hello in
// "watch" mode with the briefing id, then shows the slide, the presenter's face, captions and
// the question form, and plays the narration in step with everyone else.
// window.emachiBriefing exposes the playback position for the browser tests.

import { Connection } from '../Connection.js';
import { MsgType } from '../protocol.js';
import { BriefingPanel } from './BriefingPanel.js';
import { BriefingPlayer } from './BriefingPlayer.js';
import { PresenterFace } from './PresenterFace.js';
import { SlideCanvas } from './SlideCanvas.js';
import { WatchVoice } from '../voice/WatchVoice.js';

const briefingId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
const connection = new Connection({ name: '視聴者', opts: { mode: 'watch', briefing: briefingId } });
const player = new BriefingPlayer({ connection, briefingId });
const panel = new BriefingPanel({ player, root: document.getElementById('panel') });
const slide = new SlideCanvas(document.getElementById('slide'));
const face = new PresenterFace(document.getElementById('face'));
const speakerEl = document.getElementById('speaker');
const connEl = document.getElementById('conn');

slide.show(null);
connection.addEventListener('state', (ev) => {
  const s = ev.detail.state;
  connEl.textContent = s === 'connected' ? '' : s === 'reconnecting' ? '再接続中… / Reconnecting…' : s;
});
connection.addEventListener('message', (ev) => {
  const m = ev.detail;
  if (m.type === MsgType.ERROR) panel.showError(`${m.reason}`);
});
player.addEventListener('state', (ev) => {
  const t = ev.detail.title;
  document.getElementById('title').textContent = t;
  document.title = `${t} — emachi`;
});

let frames = 0;

function frame() {
  frames += 1;
  const s = player.state;
  if (s) {
    const pos = player.position();
    const a = player.at(pos);
    if (a && s.state !== 'scheduled') {
      const who = `${a.segment.role}（${a.segment.name}）`;
      slide.show(a.segment.slide, { index: a.index, count: player.segments.length, question: s.question, speaker: who });
      speakerEl.textContent = who;
    } else {
      slide.show(null, { title: s.title });
    }
    face.draw(player.mouth(pos));
    panel.update(player.caption(pos));
  }
  requestAnimationFrame(frame);
}
requestAnimationFrame(frame);

// try to start the sound without a tap (allowed after an earlier interaction, or by policy)
player.unlock().then((ok) => { if (ok) panel.sound.hidden = true; }).catch(() => {});
new WatchVoice(connection); // the stage's live voices (docs/voice.md)
connection.open();

// the same first hook as the hall page (browser tests wait for a drawn frame)
window.emachi = { state: () => ({ state: connection.state, frames }) };
window.emachiBriefing = {
  player,
  connection,
  position: () => player.position(),
  positionAt: (epochMs) => player.positionAt(epochMs),
  epochNow: () => performance.timeOrigin + performance.now(),
  caption: () => panel.caption.textContent,
  slideIndex: () => Number(slide.canvas.dataset.slideIndex ?? -1),
  slideTitle: () => slide.canvas.dataset.slideTitle ?? '',
  screenQuestion: () => slide.canvas.dataset.question ?? '',
  mouth: () => face.canvas.dataset.shape,
  audio: () => player.ctx?.state ?? 'none',
  sounding: () => player.sources.size,
  state: () => player.state,
};
