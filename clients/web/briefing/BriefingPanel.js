// The briefing's DOM: captions under the voice, the slide's text as real text (what the canvas
// draws, for screen readers and small screens), the question on the screen, viewer counts, the
// announced start time, the viewer's own narration speed with "back to live", a transcript of
// what was said with a jump to each sentence, replay of an ended briefing, a question form
// (≤ 300 characters) and the button that turns the sound on (browsers only start audio after a
// tap or a key). Japanese first, English beside it. Works by touch and keyboard.

import { SPEEDS } from './BriefingPlayer.js';

const MAX_QUESTION = 300;
const TZ = 'Asia/Tokyo'; // the city's time zone: a start time is said as the city says it

const STATE_TEXT = {
  scheduled: '開始前 / Not started',
  live: '配信中 / Live',
  paused: '一時停止 / Paused',
  ended: '終了 / Ended',
};

const clock = (s) => {
  const t = Math.max(0, Math.floor(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
};

/** "2024年1月2日 14:00（日本時間）/ 2 Jan 2024, 14:00 JST" for server ms. */
export function startText(ms) {
  const d = new Date(ms);
  const ja = new Intl.DateTimeFormat('ja-JP', { timeZone: TZ, dateStyle: 'long', timeStyle: 'short' }).format(d);
  const en = new Intl.DateTimeFormat('en-GB', { timeZone: TZ, dateStyle: 'medium', timeStyle: 'short' }).format(d);
  return `${ja}（日本時間）/ ${en} JST`;
}

/** What a viewer waiting for the start reads (the watch page's slide and the panel). */
export function waitingText(s, nowMs) {
  if (s.scheduled_at) {
    const min = Math.round((s.scheduled_at - nowMs) / 60000);
    const left = min > 0 ? `（あと${min}分 / in ${min} min）` : '';
    return `開始予定 / Starts: ${startText(s.scheduled_at)}${left}`;
  }
  return `${s.date} 開始までお待ちください（開始時刻は担当者がお知らせします） / Starting soon on ${s.date}`;
}

export class BriefingPanel {
  /**
   * @param {{player: import('./BriefingPlayer.js').BriefingPlayer, root: HTMLElement,
   *   questionRoot?: HTMLElement|null}} options
   *   questionRoot: where the question on the screen is shown (beside the presenter on the
   *   watch page, not over the slide under them).
   */
  constructor({ player, root, questionRoot = null }) {
    this.player = player;
    this.root = root;
    const el = document.createElement('section');
    el.className = 'briefing-panel';
    el.setAttribute('aria-label', '説明会 / Briefing');
    const speeds = SPEEDS.map((v) => `<option value="${v}"${v === player.speed ? ' selected' : ''}>${v}倍 / ${v}×</option>`).join('');
    el.innerHTML = `
      <div class="bp-status"><span class="bp-state" role="status"></span>
        <span class="bp-viewers"></span></div>
      <p class="bp-start" hidden></p>
      <p class="bp-caption" aria-live="polite" lang="ja"></p>
      <section class="bp-slide" aria-label="スライドの内容 / Slide text" lang="ja">
        <h2 class="bp-slide-title"></h2><ul class="bp-slide-bullets"></ul>
        <p class="bp-slide-meta"></p></section>
      <p class="bp-question" hidden></p>
      <div class="bp-listen">
        <button type="button" class="bp-sound">🔊 音声を再生 / Turn sound on</button>
        <label class="bp-speed-label">話す速さ / Speed
          <select class="bp-speed">${speeds}</select></label>
        <button type="button" class="bp-own" hidden></button>
        <button type="button" class="bp-replay" hidden>▶ 最初から再生 / Replay from the start</button>
      </div>
      <p class="bp-behind" hidden><span class="bp-behind-text" role="status"></span>
        <button type="button" class="bp-live">ライブに戻る / Back to live</button></p>
      <details class="bp-transcript">
        <summary>字幕の履歴 / Transcript</summary>
        <p class="bp-transcript-hint">文を選ぶと、そこから聞けます / Choose a sentence to listen from there</p>
        <ol class="bp-lines" lang="ja"></ol>
      </details>
      <form class="bp-ask">
        <label>質問 / Question <input name="q" maxlength="${MAX_QUESTION}" autocomplete="off"
          placeholder="質問を入力 / Type a question"></label>
        <button type="submit">送信 / Send</button>
        <span class="bp-ask-status" role="status"></span>
      </form>`;
    root.appendChild(el);
    this.el = el;
    const $ = (sel) => el.querySelector(sel);
    this.caption = $('.bp-caption');
    this.stateEl = $('.bp-state');
    this.viewersEl = $('.bp-viewers');
    this.startEl = $('.bp-start');
    this.questionEl = $('.bp-question');
    if (questionRoot) questionRoot.appendChild(this.questionEl);
    this.slideEl = $('.bp-slide');
    this.sound = $('.bp-sound');
    this.speedEl = $('.bp-speed');
    this.ownEl = $('.bp-own');
    this.replayEl = $('.bp-replay');
    this.behindEl = $('.bp-behind');
    this.behindText = $('.bp-behind-text');
    this.lines = $('.bp-lines');
    this.askStatus = $('.bp-ask-status');
    this.slideKey = null;
    this.lineCount = -1;
    this.currentLine = -1;
    this.flat = [];
    this.sound.addEventListener('click', async () => {
      if (await player.unlock()) this.sound.hidden = true;
    });
    this.speedEl.addEventListener('change', () => {
      player.unlock().catch(() => {});
      player.setSpeed(Number(this.speedEl.value));
    });
    this.ownEl.addEventListener('click', () => player.toggleOwn());
    this.replayEl.addEventListener('click', async () => {
      await player.unlock().catch(() => {});
      player.replay(0);
    });
    $('.bp-live').addEventListener('click', () => {
      player.backToLive();
      this.speedEl.value = String(player.speed);
    });
    this.lines.addEventListener('click', async (ev) => {
      const b = ev.target.closest('button[data-pos]');
      if (!b) return;
      await player.unlock().catch(() => {});
      player.seekTo(Number(b.dataset.pos));
    });
    $('.bp-ask').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = ev.target.elements.q;
      const text = input.value.trim();
      if (!text) return;
      if (player.ask(text)) {
        input.value = '';
        this.askStatus.textContent = '送信しました / Sent';
      } else {
        this.askStatus.textContent = '送信できません / Not connected';
      }
    });
    this.onState = (ev) => this.showState(ev.detail);
    player.addEventListener('state', this.onState);
  }

  showState(s) {
    this.stateEl.textContent = STATE_TEXT[s.state] ?? s.state;
    this.stateEl.dataset.state = s.state;
    const v = s.viewers ?? { hall: 0, online: 0 };
    this.viewersEl.textContent = `ホール ${v.hall}名 · オンライン ${v.online}名 / hall ${v.hall}, online ${v.online}`;
    this.startEl.hidden = s.state !== 'scheduled';
    if (s.state === 'scheduled') this.startEl.textContent = waitingText(s, this.player.serverNow());
    const q = s.question;
    this.questionEl.hidden = !q;
    this.questionEl.textContent = q ? `質問 / Question: ${q.text}` : '';
    this.questionEl.dataset.question = q ? q.text : '';
    this.flat = [];
    for (const seg of this.player.segments) {
      for (const [a, b, text] of seg.captions) this.flat.push({ start: seg.start + a, end: seg.start + b, text });
    }
    this.lineCount = -1;
  }

  /** The slide's text as DOM (the canvas is a picture): the title, its lines or the image's
   * alternative text, which slide of how many and who speaks. */
  showSlide(a, count) {
    const key = a ? a.index : -1;
    if (key === this.slideKey) return;
    this.slideKey = key;
    const title = this.slideEl.querySelector('.bp-slide-title');
    const list = this.slideEl.querySelector('.bp-slide-bullets');
    const meta = this.slideEl.querySelector('.bp-slide-meta');
    list.textContent = '';
    if (!a) {
      title.textContent = '';
      meta.textContent = '';
      this.slideEl.hidden = true;
      return;
    }
    this.slideEl.hidden = false;
    const slide = a.segment.slide;
    title.textContent = slide.title;
    const items = slide.image ? [`画像 / Image: ${slide.alt ?? ''}`] : slide.bullets;
    for (const text of items) {
      const li = document.createElement('li');
      li.textContent = text;
      list.append(li);
    }
    meta.textContent = `スライド ${a.index + 1} / ${count} · ${a.segment.role}（${a.segment.name}）`;
  }

  /** The transcript: every sentence said so far (all of them in a replay), the current one marked. */
  showTranscript(pos) {
    const p = this.player;
    const edge = p.state?.state === 'scheduled' ? 0 : p.liveEdge();
    let n = 0;
    while (n < this.flat.length && this.flat[n].start <= edge + 1e-6) n += 1;
    if (n !== this.lineCount) {
      this.lineCount = n;
      this.currentLine = -1;
      const frag = document.createDocumentFragment();
      this.flat.slice(0, n).forEach((c) => {
        const li = document.createElement('li');
        const b = document.createElement('button');
        b.type = 'button';
        b.dataset.pos = String(c.start);
        b.textContent = clock(c.start);
        b.setAttribute('aria-label', `${clock(c.start)} から聞く / listen from ${clock(c.start)}`);
        const t = document.createElement('span');
        t.textContent = c.text;
        li.append(b, t);
        frag.append(li);
      });
      this.lines.replaceChildren(frag);
    }
    let cur = -1;
    for (let i = 0; i < n; i++) if (this.flat[i].start <= pos + 1e-6) cur = i;
    if (cur !== this.currentLine) {
      this.lines.children[this.currentLine]?.removeAttribute('aria-current');
      this.lines.children[cur]?.setAttribute('aria-current', 'true');
      this.currentLine = cur;
    }
  }

  /** Called every frame with the caption for the current playback position. */
  update(caption, pos = this.player.position()) {
    if (this.caption.textContent !== caption) this.caption.textContent = caption;
    const p = this.player;
    const s = p.state;
    if (!s) return;
    this.showSlide(s.state === 'scheduled' ? null : p.at(pos), p.segments.length);
    this.showTranscript(pos);
    const behind = p.behind();
    const showBehind = !!p.own && s.state !== 'ended';
    if (this.behindEl.hidden === showBehind) this.behindEl.hidden = !showBehind;
    if (showBehind) {
      const t = `ライブより ${Math.round(behind)} 秒遅れ（${p.speed}倍） / ${Math.round(behind)} s behind live (${p.speed}×)`;
      if (this.behindText.textContent !== t) this.behindText.textContent = t;
    }
    const ownText = !p.own ? '' : p.own.playing ? '⏸ 一時停止 / Pause' : '▶ 再生 / Play';
    this.ownEl.hidden = !p.own;
    if (this.ownEl.textContent !== ownText) this.ownEl.textContent = ownText;
    this.replayEl.hidden = s.state !== 'ended' || !p.segments.length;
    if (s.state === 'scheduled' && !this.startEl.hidden) {
      const t = waitingText(s, p.serverNow());
      if (this.startEl.textContent !== t) this.startEl.textContent = t;
    }
  }

  showError(text) {
    this.askStatus.textContent = text;
  }

  dispose() {
    this.player.removeEventListener('state', this.onState);
    this.questionEl.remove();
    this.el.remove();
  }
}
