// The briefing's DOM: captions under the voice, the question on the screen, viewer counts, a
// question form (≤ 300 characters) and the button that turns the sound on (browsers only start
// audio after a tap or a key). Japanese first, English beside it. Works by touch and keyboard.

const MAX_QUESTION = 300;

const STATE_TEXT = {
  scheduled: '開始前 / Not started',
  live: '配信中 / Live',
  paused: '一時停止 / Paused',
  ended: '終了 / Ended',
};

export class BriefingPanel {
  /** @param {{player: import('./BriefingPlayer.js').BriefingPlayer, root: HTMLElement}} options */
  constructor({ player, root }) {
    this.player = player;
    this.root = root;
    const el = document.createElement('section');
    el.className = 'briefing-panel';
    el.setAttribute('aria-label', '説明会 / Briefing');
    el.innerHTML = `
      <div class="bp-status"><span class="bp-state" role="status"></span>
        <span class="bp-viewers"></span></div>
      <p class="bp-caption" aria-live="polite" lang="ja"></p>
      <p class="bp-question" hidden></p>
      <button type="button" class="bp-sound">🔊 音声を再生 / Turn sound on</button>
      <form class="bp-ask">
        <label>質問 / Question <input name="q" maxlength="${MAX_QUESTION}" autocomplete="off"
          placeholder="質問を入力 / Type a question"></label>
        <button type="submit">送信 / Send</button>
        <span class="bp-ask-status" role="status"></span>
      </form>`;
    root.appendChild(el);
    this.el = el;
    this.caption = el.querySelector('.bp-caption');
    this.stateEl = el.querySelector('.bp-state');
    this.viewersEl = el.querySelector('.bp-viewers');
    this.questionEl = el.querySelector('.bp-question');
    this.sound = el.querySelector('.bp-sound');
    this.askStatus = el.querySelector('.bp-ask-status');
    this.sound.addEventListener('click', async () => {
      if (await player.unlock()) this.sound.hidden = true;
    });
    el.querySelector('.bp-ask').addEventListener('submit', (ev) => {
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
    const q = s.question;
    this.questionEl.hidden = !q;
    this.questionEl.textContent = q ? `質問 / Question: ${q.text}` : '';
  }

  /** Called every frame with the caption for the current playback position. */
  update(caption) {
    if (this.caption.textContent !== caption) this.caption.textContent = caption;
  }

  showError(text) {
    this.askStatus.textContent = text;
  }

  dispose() {
    this.player.removeEventListener('state', this.onState);
    this.el.remove();
  }
}
