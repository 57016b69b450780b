// The consultation booth, for both people in it: who one is with, the booth's screen (what the
// staff member put up), the link they handed (a button and its QR code) and the reminder that
// voice and chat here reach only the two of them. The staff member's tools are on the desk
// (DeskPanel.boothTools).

import { bi } from '../kiosk/bilingual.js';
import { renderLink, renderScreen } from './Screen.js';
import { S, both } from './strings.js';

export class BoothPanel {
  constructor(app) {
    this.app = app;
    this.key = '';
    this.root = document.createElement('section');
    this.root.className = 'panel counter-booth';
    this.root.setAttribute('role', 'region');
    this.root.setAttribute('aria-labelledby', 'counter-booth-title');
    this.root.tabIndex = -1;
    const h = bi('h2', S.booth);
    h.id = 'counter-booth-title';
    this.withEl = document.createElement('p');
    this.withEl.className = 'counter-with';
    this.privateEl = bi('p', S.privateHint, 'counter-private');
    this.screenTitle = bi('h3', S.screen);
    this.screen = document.createElement('div');
    this.screen.className = 'counter-screen';
    this.link = document.createElement('div');
    this.link.className = 'counter-link-box';
    this.link.hidden = true;
    this.live = document.createElement('p');
    this.live.className = 'visually-hidden';
    this.live.setAttribute('aria-live', 'polite');
    // the link first (what one may act on), then the screen
    this.root.append(h, this.withEl, this.privateEl, this.link, this.screenTitle, this.screen, this.live);
    this.root.hidden = true;
    (document.querySelector('#panels') ?? document.body).prepend(this.root);
    this.booth = null;
  }

  /** The state's `booth` (null: not in one). */
  update(booth) {
    const entered = booth && !this.booth;
    this.booth = booth;
    this.root.hidden = !booth;
    if (!booth) {
      this.key = '';
      return;
    }
    this.root.dataset.zone = booth.zone ?? '';
    this.withEl.replaceChildren(bi('span', S.with, 'counter-k'), ' ', Object.assign(document.createElement('strong'), { textContent: booth.with ?? '' }));
    const screenKey = JSON.stringify(booth.screen ?? null);
    const linkKey = JSON.stringify(booth.link ?? null);
    const said = [];
    if (screenKey !== this.screenKey) {
      this.screenKey = screenKey;
      const title = renderScreen(this.app, this.screen, booth.screen ?? null);
      if (title && !entered) said.push(`${both(S.screen, ' · ')}: ${both(title, ' · ')}`);
    }
    if (linkKey !== this.linkKey) {
      this.linkKey = linkKey;
      const label = renderLink(this.link, booth.link ?? null);
      if (label) said.push(`${both(S.link, ' · ')}: ${both(label, ' · ')}`);
    }
    if (entered) {
      said.unshift(`${both(S.booth, ' · ')}: ${booth.with ?? ''}`);
      this.root.focus({ preventScroll: true });
    }
    if (said.length) this.live.textContent = said.join('。');
  }

  dispose() {
    this.root.remove();
  }
}
