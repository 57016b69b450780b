// The watch-only page (/briefing/{id}): no avatar, no place in the hall. It says hello in
// "watch" mode with the briefing id, then shows the slide, the presenter's face, captions and
// the question form, and plays the narration in step with everyone else (or at the viewer's own
// speed: BriefingPlayer.js). The question on the screen sits beside the presenter.
// window.emachiBriefing exposes the playback position for the browser tests.

import { Connection } from '../Connection.js';
import { MsgType } from '../protocol.js';
import { BriefingPanel, waitingText } from './BriefingPanel.js';
import { BriefingPlayer } from './BriefingPlayer.js';
import { PresenterFace } from './PresenterFace.js';
import { SlideCanvas } from './SlideCanvas.js';
import { WatchVoice } from '../voice/WatchVoice.js';

const briefingId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
const connection = new Connection({ name: '視聴者', opts: { mode: 'watch', briefing: briefingId } });
const player = new BriefingPlayer({ connection, briefingId });
// the question on the screen is shown beside the presenter, not drawn over the slide under them
const panel = new BriefingPanel({
  player, root: document.getElementById('panel'), questionRoot: document.getElementById('side-question'),
});
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
      slide.show(a.segment.slide, { index: a.index, count: player.segments.length, speaker: who });
      if (speakerEl.textContent !== who) speakerEl.textContent = who;
    } else {
      slide.show(null, { title: `${s.title}\n${waitingText(s, player.serverNow())}` });
    }
    face.draw(player.mouth(pos));
    panel.update(player.caption(pos), pos);
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
  screenQuestion: () => panel.questionEl.dataset.question ?? '',
  speed: (v) => player.setSpeed(v),
  behind: () => player.behind(),
  media: () => (player.media ? { rate: player.media.playbackRate, pitch: player.media.preservesPitch,
    paused: player.media.paused, time: player.media.currentTime, index: player.mediaIndex } : null),
  own: () => player.own,
  mouth: () => face.canvas.dataset.shape,
  audio: () => player.ctx?.state ?? 'none',
  sounding: () => player.sources.size,
  state: () => player.state,
};
