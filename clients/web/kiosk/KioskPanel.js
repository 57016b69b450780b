// A kiosk's panel: the plain-language explanation, who / what to bring / where / fee, then each
// channel as a button in the city's order. The link comes back from the server (KIOSK_LINK); on a
// PC the LINE channel shows its QR code to carry on with a phone. Helper kiosks add their form.

import { L, bi, list, row, safeUrl } from './bilingual.js';
import { GarbageHelper } from './GarbageHelper.js';
import { MovingHelper } from './MovingHelper.js';

export class KioskPanel {
  /**
   * @param {object} app the client's feature API (App.js)
   * @param {string} kioskId
   * @param {object} panel the KIOSK_PANEL map
   * @param {() => void} onClose
   */
  constructor(app, kioskId, panel, onClose) {
    this.app = app;
    this.kioskId = kioskId;
    this.data = panel;
    this.pending = null; // {channel, win}
    this.card = app.panel({ title: `${panel.title.ja} / ${panel.title.en}`, onClose: () => this.closed(onClose) });
    this.card.el.classList.add('kiosk-panel');
    this.card.el.dataset.kiosk = kioskId;
    const body = this.card.body;

    body.append(bi('p', panel.summary, 'kiosk-summary'));
    const dl = document.createElement('dl');
    dl.className = 'kiosk-facts';
    row(dl, L.who, panel.who);
    if (panel.bring?.length) {
      dl.append(bi('dt', L.bring));
      const dd = document.createElement('dd');
      dd.append(list(panel.bring));
      dl.append(dd);
    }
    row(dl, L.counter, panel.counter);
    if (panel.counter) row(dl, L.hours, panel.hours);
    if (panel.counter) row(dl, L.place, panel.place);
    if (panel.fee) {
      const pay = panel.pay_online === true ? L.payOnline : panel.pay_online === false ? L.payCounter : null;
      row(dl, L.fee, pay ? { ja: `${panel.fee.ja}（${pay.ja}）`, en: `${panel.fee.en} (${pay.en})` } : panel.fee);
    }
    if (dl.childElementCount) body.append(dl);

    if (panel.helper === 'moving') this.helper = new MovingHelper(app, panel.form);
    else if (panel.helper === 'garbage') this.helper = new GarbageHelper(app, panel.form);
    if (this.helper) body.append(this.helper.el);

    const chans = document.createElement('div');
    chans.className = 'kiosk-channels';
    chans.append(bi('h3', L.channels));
    this.buttons = new Map();
    for (const ch of panel.channels) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = `kiosk-channel kiosk-channel-${ch.id}`;
      b.dataset.channel = ch.id;
      b.append(bi('strong', ch.label));
      const tags = [];
      if (ch.identity) tags.push(L.identity);
      if (ch.payment) tags.push(L.payment);
      b.append(bi('small', ch.how));
      if (tags.length) b.append(bi('small', { ja: tags.map((x) => x.ja).join('・'), en: tags.map((x) => x.en).join(', ') }, 'kiosk-tags'));
      b.addEventListener('click', () => this.choose(ch.id));
      chans.append(b);
      this.buttons.set(ch.id, b);
    }
    body.append(chans);
    this.qrBox = document.createElement('div');
    this.qrBox.className = 'kiosk-qr-box';
    this.qrBox.hidden = true;
    body.append(this.qrBox);
    if (panel.sample_note) body.append(bi('p', panel.sample_note, 'kiosk-sample'));
    this.status = document.createElement('p');
    this.status.className = 'kiosk-status';
    this.status.setAttribute('aria-live', 'polite');
    body.append(this.status);
  }

  /** Ask the server for the channel's link. A tab is opened now, inside the click, so that the
   * browser does not block it as a pop-up; it is pointed at the link when KIOSK_LINK arrives. */
  choose(channel) {
    const device = this.app.device;
    const qrOnly = channel === 'line' && device === 'pc';
    let win = null;
    if (!qrOnly) win = window.open('about:blank', '_blank');
    this.pending = { channel, win };
    if (!this.app.send(this.app.protocol.kioskChoose(this.kioskId, channel, device))) {
      win?.close();
      this.pending = null;
      this.say(L.error);
    }
  }

  /** KIOSK_LINK for this kiosk. */
  link(msg) {
    const url = safeUrl(msg.url);
    const pending = this.pending?.channel === msg.channel ? this.pending : null;
    this.pending = null;
    if (!url) {
      pending?.win?.close();
      this.say(L.error);
      return;
    }
    this.lastLink = { channel: msg.channel, url };
    if (msg.qr_svg) this.showQr(msg.channel, url, msg.qr_svg);
    if (pending?.win) {
      pending.win.opener = null;
      pending.win.location.replace(url);
      this.say(L.opened);
    } else if (!msg.qr_svg) {
      window.open(url, '_blank', 'noopener');
    }
  }

  showQr(channel, url, svg) {
    // As an <img>, the SVG is a picture: nothing in it can run.
    const img = document.createElement('img');
    img.className = 'kiosk-qr';
    img.alt = `QR: ${url}`;
    img.width = 180;
    img.height = 180;
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
    img.dataset.channel = channel;
    const a = document.createElement('a');
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    a.append(bi('span', L.openAnyway));
    this.qrBox.replaceChildren(img, bi('p', L.qr), a);
    this.qrBox.hidden = false;
    this.qrBox.scrollIntoView({ block: 'nearest' });
  }

  /** ERROR while this panel waits for a link. */
  error(msg) {
    if (this.pending) {
      this.pending.win?.close();
      this.pending = null;
    }
    this.say({ ja: `${L.error.ja}: ${msg.reason}`, en: `${L.error.en}: ${msg.reason}` });
  }

  say(text) {
    this.status.replaceChildren(bi('span', text));
  }

  closed(onClose) {
    this.pending?.win?.close();
    this.pending = null;
    this.helper?.dispose();
    onClose?.();
  }

  get open() {
    return this.card.open;
  }

  dispose() {
    this.card.dispose();
  }
}
