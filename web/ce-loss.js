// The cross-entropy loss visualiser (GET /ce-loss): a slider for the correct
// class's probability p, the loss -ln p as a number and as a point on its curve
// (SVG drawn from here: the Content-Security-Policy forbids inline script).
'use strict';

(() => {
  const SVG = 'http://www.w3.org/2000/svg';
  // The plot's box inside the 640 x 360 viewBox, and the loss shown (0 to Y_MAX
  // nats: -ln 0.001 = 6.9 is the slider's far end).
  const LEFT = 56;
  const RIGHT = 620;
  const TOP = 16;
  const BOTTOM = 310;
  const Y_MAX = 7;
  const P_MIN = 0.001;

  const $ = (id) => document.getElementById(id);
  const slider = $('p');
  const x = (p) => LEFT + p * (RIGHT - LEFT);
  const y = (loss) => BOTTOM - (Math.min(loss, Y_MAX) / Y_MAX) * (BOTTOM - TOP);
  const loss = (p) => -Math.log(p);

  function element(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function drawAxes() {
    const axes = $('axes');
    axes.append(element('line', { class: 'ce-axis', x1: LEFT, y1: BOTTOM, x2: RIGHT, y2: BOTTOM }));
    axes.append(element('line', { class: 'ce-axis', x1: LEFT, y1: TOP, x2: LEFT, y2: BOTTOM }));
    for (let i = 0; i <= 10; i += 2) {
      const p = i / 10;
      axes.append(element('line', { class: 'ce-tick', x1: x(p), y1: BOTTOM, x2: x(p), y2: BOTTOM + 6 }));
      axes.append(element('text', { class: 'ce-text', x: x(p), y: BOTTOM + 22, 'text-anchor': 'middle' },
                          p.toFixed(1)));
    }
    for (let l = 0; l <= Y_MAX; l++) {
      axes.append(element('line', { class: 'ce-grid', x1: LEFT, y1: y(l), x2: RIGHT, y2: y(l) }));
      axes.append(element('text', { class: 'ce-text', x: LEFT - 10, y: y(l) + 5, 'text-anchor': 'end' },
                          String(l)));
    }
    axes.append(element('text', { class: 'ce-text', x: (LEFT + RIGHT) / 2, y: BOTTOM + 44,
                                  'text-anchor': 'middle' }, 'p, the probability of the correct class'));
    axes.append(element('text', { class: 'ce-text', x: 14, y: (TOP + BOTTOM) / 2, 'text-anchor': 'middle',
                                  transform: `rotate(-90 14 ${(TOP + BOTTOM) / 2})` }, '−ln p'));
  }

  function drawCurve() {
    const points = [];
    for (let i = 0; i <= 400; i++) {
      // Denser near 0, where the curve climbs.
      const p = P_MIN + (1 - P_MIN) * (i / 400) ** 2;
      points.push(`${x(p).toFixed(2)},${y(loss(p)).toFixed(2)}`);
    }
    $('curve').setAttribute('d', `M${points.join(' L')}`);
  }

  function words(p) {
    if (p >= 0.9) return 'confident and right: almost free.';
    if (p >= 0.5) return 'more right than wrong: a small loss.';
    if (p >= 0.1) return 'unsure: the loss grows.';
    return 'confidently wrong: the loss climbs without bound as p goes to 0.';
  }

  function update() {
    const p = Math.max(P_MIN, Math.min(1, Number(slider.value)));
    const l = loss(p);
    $('p-value').textContent = p.toFixed(3);
    // -ln 1 is -0 in floating point; shown as 0.
    $('loss-value').textContent = (l === 0 ? 0 : l).toFixed(3);
    $('gradient-value').textContent = (p - 1).toFixed(3).replace('-', '−');
    $('loss-words').textContent = words(p);
    slider.setAttribute('aria-valuetext', `p ${p.toFixed(3)}, loss ${Math.abs(l).toFixed(3)}`);
    const cx = x(p);
    const cy = y(l);
    const marker = $('marker');
    marker.setAttribute('cx', cx.toFixed(2));
    marker.setAttribute('cy', cy.toFixed(2));
    for (const [id, x1, y1, x2, y2] of [['guide-x', cx, BOTTOM, cx, cy], ['guide-y', LEFT, cy, cx, cy]]) {
      const line = $(id);
      line.setAttribute('x1', x1.toFixed(2));
      line.setAttribute('y1', y1.toFixed(2));
      line.setAttribute('x2', x2.toFixed(2));
      line.setAttribute('y2', y2.toFixed(2));
    }
  }

  drawAxes();
  drawCurve();
  slider.addEventListener('input', update);
  update();
})();
