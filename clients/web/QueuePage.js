// The page a visitor sees while the hall is full: its place in the waiting line and an estimate
// (the server's NOTICE queue), that entry is automatic, and an offer to watch what is on the stage
// without an avatar meanwhile (the briefing's watch page, in a new tab, so the place is kept).
// The hall's controls (chat, joystick, "around you") stay hidden until the WELCOME.

export class QueuePage {
  /**
   * @param {Document} doc
   * @param {object} i18n
   */
  constructor(doc, i18n) {
    this.doc = doc;
    this.i18n = i18n;
    this.data = null;
    this.el = doc.createElement('section');
    this.el.id = 'queue';
    this.el.className = 'card';
    this.el.hidden = true;
    this.el.tabIndex = -1;
    this.el.setAttribute('aria-labelledby', 'queue-title');
    this.title = doc.createElement('h1');
    this.title.id = 'queue-title';
    this.position = doc.createElement('p');
    this.position.className = 'queue-position';
    this.position.setAttribute('role', 'status');
    this.eta = doc.createElement('p');
    this.eta.className = 'queue-eta';
    this.auto = doc.createElement('p');
    this.watchHint = doc.createElement('p');
    this.watchHint.className = 'muted';
    this.watch = doc.createElement('div');
    this.watch.className = 'queue-watch';
    this.el.append(this.title, this.position, this.eta, this.auto, this.watchHint, this.watch);
    doc.body.append(this.el);
    this.onLang = () => this.render();
    i18n.addEventListener('change', this.onLang);
  }

  get shown() {
    return !this.el.hidden;
  }

  /** Show (or update) the page: data = {position, ahead, eta_s} from the server, or {retryS} */
  show(data) {
    const first = this.el.hidden;
    this.data = data;
    this.el.hidden = false;
    this.doc.body.classList.add('waiting');
    this.render();
    if (first) {
      this.el.focus({ preventScroll: true });
      this.loadBriefings();
    }
  }

  hide() {
    this.el.hidden = true;
    this.doc.body.classList.remove('waiting');
  }

  render() {
    const t = (k, v) => this.i18n.t(k, v);
    const d = this.data ?? {};
    this.title.textContent = t('queue.title');
    if (d.position) {
      this.position.textContent = t('queue.position', { position: d.position, ahead: d.ahead ?? d.position - 1 });
      const min = d.eta_s == null ? null : Math.round(d.eta_s / 60);
      this.eta.textContent = min == null ? t('queue.eta.unknown') : min < 1 ? t('queue.eta.soon') : t('queue.eta', { min });
      this.auto.textContent = t('queue.auto');
    } else {
      this.position.textContent = t('queue.retry', { s: Math.round((d.retryMs ?? 15000) / 1000) });
      this.eta.textContent = '';
      this.auto.textContent = '';
    }
    this.renderWatch();
  }

  async loadBriefings() {
    try {
      const r = await fetch('/api/briefings');
      this.briefings = r.ok ? (await r.json()).briefings ?? [] : [];
    } catch {
      this.briefings = [];
    }
    this.renderWatch();
  }

  renderWatch() {
    const t = (k, v) => this.i18n.t(k, v);
    const list = (this.briefings ?? []).slice().sort((a, b) => (b.state === 'live') - (a.state === 'live'));
    this.watchHint.textContent = list.length ? t('queue.watch.hint') : this.briefings ? t('queue.watch.none') : '';
    this.watch.replaceChildren(...list.slice(0, 3).map((b) => {
      const a = this.doc.createElement('a');
      a.className = 'button';
      a.href = b.page;
      a.target = '_blank';
      a.rel = 'noopener';
      a.textContent = `${t('queue.watch')}: ${this.i18n.text(b.title)}`;
      return a;
    }));
  }

  dispose() {
    this.i18n.removeEventListener('change', this.onLang);
    this.el.remove();
    this.doc.body.classList.remove('waiting');
  }
}
