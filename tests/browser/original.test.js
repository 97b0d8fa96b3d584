// The original's flows on the page in headless chromium (run by original.sh,
// which starts the service and passes its addresses and files in EAR_*
// variables): a photo from the fake camera, an image upload and the fake
// microphone, each answered by POST query in two columns whose frames load and
// whose sounds play; Cancel on the camera and the recorder; /ce-loss; at / and
// under /ear/; phone width and dark colours. Each check prints a line when it
// fails; the exit status is 0 only when every check passed.
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('EAR_URL');
const PREFIXED = env('EAR_PREFIX_URL');
const ARTIFACTS = env('EAR_ARTIFACTS');
const TIMEOUT = 30000; // a sanitized `ear serve` on a busy 2-core machine is slow
const LABELS = new Set(['violin', 'drum', 'bird']);

let passed = 0;
let failed = 0;
function check(what, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.error(`check failed: ${what}${detail === undefined ? '' : ` (got ${detail})`}`);
  }
}

async function part(name, body) {
  try {
    await body();
  } catch (error) {
    failed++;
    console.error(`check failed: ${name}: ${error.message.split('\n')[0]}`);
  }
}

// A page in a fresh context that records what should never happen (script
// errors, CSP refusals, requests to other hosts) and every request's path.
async function open(browser, url, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 }, ...options });
  context.setDefaultTimeout(TIMEOUT);
  // What the page puts in each form it posts (chromium does not show a File's
  // bytes to the test): the field and the file name, kept in the page.
  await context.addInitScript(() => {
    const original = window.fetch;
    window.sentForms = [];
    window.fetch = (url, options) => {
      if (options && options.body instanceof FormData)
        window.sentForms.push([...options.body.entries()].map(([field, value]) => ({
          field, name: value && value.name })));
      return original(url, options);
    };
  });
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  const queries = [];
  const origin = new URL(url).origin;
  page.on('pageerror', (error) => problems.push(`script error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text()))
      problems.push(`CSP: ${message.text()}`);
  });
  page.on('request', (request) => {
    const target = request.url();
    if (!target.startsWith('blob:') && !target.startsWith('data:') && !target.startsWith(origin))
      problems.push(`request to another origin: ${target}`);
    if (target.startsWith(origin)) requests.push(new URL(target).pathname);
    if (request.method() === 'POST') queries.push({ path: new URL(target).pathname });
  });
  const response = await page.goto(url);
  check(`${url}: 200`, response && response.status() === 200, response && response.status());
  return { context, page, problems, requests, queries };
}

// The field and file name of the last form the page posted.
async function lastForm(page) {
  const forms = await page.evaluate(() => window.sentForms);
  const last = forms[forms.length - 1] || [];
  return last.length === 1 ? last[0] : { field: null, name: null };
}

function noProblems(label, problems) {
  check(`${label}: no script error, CSP refusal or outside request`, problems.length === 0,
        problems.join('; '));
}

// Waits for the search named `what` to finish, then checks both columns: the
// directions, at most 5 cards each, frames loaded, sounds playable, scores.
async function columnsFor(page, what, kind, label) {
  await page.waitForFunction(
    (text) => document.getElementById('summary').textContent.includes(text) &&
      document.getElementById('columns').getAttribute('aria-busy') === 'false',
    what);
  check(`${label}: the spinner is gone`, await page.locator('#spinner').isHidden());
  await page.waitForFunction(() => [...document.querySelectorAll('#columns img')]
    .every((image) => image.complete));
  // Sounds: each player has read its sound's header (duration known).
  await page.waitForFunction(() => [...document.querySelectorAll('#columns audio')]
    .every((audio) => audio.readyState >= 1 && audio.duration > 0));
  const columns = await page.evaluate(() => Object.fromEntries(['same', 'cross'].map((id) => [id, {
    direction: document.getElementById(`${id}-direction`).textContent,
    heading: document.getElementById(`${id}-heading`).textContent,
    cards: [...document.querySelectorAll(`#${id} li`)].map((li) => ({
      type: li.dataset.type,
      label: li.querySelector('.label').textContent,
      score: li.querySelector('.score-text').textContent,
      width: li.querySelector('img') ? li.querySelector('img').naturalWidth : -1,
      src: li.querySelector('img') ? li.querySelector('img').getAttribute('src')
        : li.querySelector('audio') ? li.querySelector('audio').getAttribute('src') : null,
      duration: li.querySelector('audio') ? li.querySelector('audio').duration : -1,
    })),
  }])));
  const other = kind === 'audio' ? 'image' : 'audio';
  const name = { audio: 'Audio', image: 'Image' };
  check(`${label}: "Same Modality (${name[kind]} → ${name[kind]})"`,
        columns.same.heading === `Same Modality (${name[kind]} → ${name[kind]})`, columns.same.heading);
  check(`${label}: "Cross Modality (${name[kind]} → ${name[other]})"`,
        columns.cross.heading === `Cross Modality (${name[kind]} → ${name[other]})`, columns.cross.heading);
  for (const [id, type] of [['same', kind], ['cross', other]]) {
    const cards = columns[id].cards;
    const where = `${label}, ${id} column`;
    check(`${where}: 1 to 5 results`, cards.length >= 1 && cards.length <= 5, cards.length);
    check(`${where}: every result a ${type}`, cards.every((card) => card.type === type),
          cards.map((card) => card.type).join());
    if (type === 'image')
      check(`${where}: every frame loaded (naturalWidth > 0)`, cards.every((card) => card.width > 0),
            JSON.stringify(cards.map((card) => card.width)));
    else
      check(`${where}: every sound playable (its duration read)`,
            cards.every((card) => card.duration > 1.5 && card.duration < 2.5),
            JSON.stringify(cards.map((card) => card.duration)));
    check(`${where}: relative data/ URLs`, cards.every((card) => /^data\/(frames|audio)\/[a-z]+\//.test(card.src)),
          cards.map((card) => card.src).join(' '));
    check(`${where}: labels are the first folders`, cards.every((card) => LABELS.has(card.label)),
          cards.map((card) => card.label).join());
    const scores = cards.map((card) => Number((card.score.match(/^score (-?\d\.\d{3})$/) || [])[1]));
    check(`${where}: scores with 3 decimals, best first`,
          scores.every((s, i) => !Number.isNaN(s) && (i === 0 || s <= scores[i - 1])),
          cards.map((card) => card.score).join());
  }
  return columns;
}

// Plays the first sound of a column: the browser fetches and plays it.
async function plays(page, selector, label) {
  const moved = await page.evaluate(async (css) => {
    const audio = document.querySelector(css);
    if (!audio) return -1;
    audio.muted = true;
    await audio.play();
    await new Promise((done) => setTimeout(done, 700));
    audio.pause();
    return audio.currentTime;
  }, selector);
  check(`${label}: it plays (currentTime ${moved})`, moved > 0.2, moved);
}

async function photo(page, screenshot) {
  await page.getByRole('button', { name: 'Take a photo' }).click();
  const capture = page.getByRole('button', { name: 'Capture' });
  await capture.waitFor();
  await page.waitForFunction(() => !document.getElementById('capture').disabled);
  const size = await page.evaluate(() => [document.getElementById('camera-video').videoWidth,
                                          document.getElementById('camera-video').videoHeight]);
  check('the camera preview shows the fake camera (320x240)', size.join('x') === '320x240', size.join('x'));
  check('Capture has the focus', await page.evaluate(() => document.activeElement.id === 'capture'));
  if (screenshot) await page.screenshot({ path: path.join(ARTIFACTS, screenshot) });
  await capture.click();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('EAR_CHROMIUM'),
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
           `--use-file-for-fake-video-capture=${env('EAR_CAMERA')}`,
           `--use-file-for-fake-audio-capture=${env('EAR_MICROPHONE')}`,
           '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    await part('at /', async () => {
      const { context, page, problems, requests, queries } = await open(browser, BASE);
      check('the title', await page.title() === 'EAR (Embedding Audio-visual Retrieval)',
            await page.title());
      await page.waitForFunction(() => document.getElementById('home').getAttribute('href') !== '../');
      const home = await page.evaluate(() => document.getElementById('home').href);
      check('the link back to the main site: api/config\'s home_url', home === new URL('/', BASE).href, home);

      // The camera: a live preview, Capture, sent as webcam_capture.jpg to query.
      await photo(page, 'original-camera.png');
      await columnsFor(page, 'match your photo', 'image', 'photo');
      const sent = { ...(queries[queries.length - 1] || {}), ...(await lastForm(page)) };
      check('the photo went to query', sent.path === '/query', sent.path);
      check('... as the field "file" named webcam_capture.jpg',
            sent.field === 'file' && sent.name === 'webcam_capture.jpg', `${sent.field} ${sent.name}`);
      check('the camera is off after Capture', await page.locator('#camera').isHidden());
      const preview = await page.evaluate(() => document.getElementById('query-image').naturalWidth);
      check('the photo is previewed', preview === 320, preview);
      check('frames from /data/frames/ (the original\'s /ear/data/ URLs made relative)',
            requests.some((p) => p.startsWith('/data/frames/')), requests.join(' '));
      await plays(page, '#cross audio', 'photo, the first sound');
      await page.screenshot({ path: path.join(ARTIFACTS, 'original-photo.png'), fullPage: true });

      // Cancel: the camera stops, nothing is sent.
      const before = queries.length;
      await page.getByRole('button', { name: 'Take a photo' }).click();
      await page.getByRole('button', { name: 'Cancel' }).last().waitFor();
      await page.waitForFunction(() => document.getElementById('camera-video').srcObject !== null);
      await page.locator('#camera-cancel').click();
      check('Cancel closes the camera', await page.locator('#camera').isHidden());
      check('... and stops it', await page.evaluate(() =>
        document.getElementById('camera-video').srcObject === null));
      check('... and sends nothing', queries.length === before, queries.length - before);
      await page.getByRole('button', { name: 'Take a photo' }).click();
      await page.waitForFunction(() => !document.getElementById('capture').disabled);
      await page.keyboard.press('Escape');
      check('Escape closes the camera too', await page.locator('#camera').isHidden());
      const focused = await page.evaluate(() => (document.activeElement.id || document.activeElement.tagName) +
        (document.getElementById('camera-open').disabled ? ' (camera-open disabled)' : ''));
      check('... and gives the focus back to Take a photo', focused === 'camera-open', focused);

      // An image file.
      await page.setInputFiles('#image-file', env('EAR_IMAGE'));
      await columnsFor(page, 'match “upload.png”', 'image', 'image upload');
      const uploaded = { ...queries[queries.length - 1], ...(await lastForm(page)) };
      check('the upload went to query as upload.png',
            uploaded.path === '/query' && uploaded.name === 'upload.png', JSON.stringify(uploaded));

      // A file that is no picture: the service's 400, in plain words.
      await page.setInputFiles('#image-file', env('EAR_NOT_IMAGE'));
      await page.locator('#message').waitFor({ state: 'visible' });
      const text = await page.locator('#message-text').textContent();
      check('not a picture: the service\'s refusal in plain words',
            /^Ear (could not read that as a picture|searches with sounds)/.test(text), text);
      check('... and no stale results', await page.locator('#columns').isHidden());

      // The fake microphone: Stop & search.
      await page.getByRole('button', { name: 'Record' }).click();
      const stop = page.getByRole('button', { name: 'Stop & search' });
      await stop.waitFor();
      await page.waitForTimeout(2200);
      const level = Number(await page.locator('#level').getAttribute('aria-valuenow'));
      check('the level meter shows the microphone', level > 20, level);
      await stop.click();
      const columns = await columnsFor(page, 'match your recording', 'audio', 'recording');
      check('the message from before is gone', await page.locator('#message').isHidden());
      const recorded = { ...queries[queries.length - 1], ...(await lastForm(page)) };
      check('the recording went to query as recording.webm',
            recorded.path === '/query' && recorded.name === 'recording.webm', JSON.stringify(recorded));
      await page.waitForFunction(() => /seconds$/.test(document.getElementById('wave').getAttribute('aria-label')));
      check('the recording is previewed with a player',
            await page.evaluate(() => !document.getElementById('query-audio').hidden &&
                                      document.getElementById('query-audio').src.startsWith('blob:')));
      await plays(page, '#same audio', 'recording, the first sound');
      check('sounds from /data/audio/', requests.some((p) => p.startsWith('/data/audio/')));
      check('the recording found sounds and frames',
            columns.same.cards.length > 0 && columns.cross.cards.length > 0);
      await page.screenshot({ path: path.join(ARTIFACTS, 'original-recording.png'), fullPage: true });

      // Recording, then Cancel: nothing sent.
      const count = queries.length;
      await page.getByRole('button', { name: 'Record' }).click();
      await page.locator('#record-cancel').waitFor({ state: 'visible' });
      await page.waitForTimeout(1200);
      await page.locator('#record-cancel').click();
      await page.waitForFunction(() => document.getElementById('status').textContent === 'Recording cancelled.');
      check('a cancelled recording sends nothing', queries.length === count, queries.length - count);

      // The link to the second page.
      await page.getByRole('link', { name: 'Cross-entropy loss, visualised' }).click();
      await page.waitForURL('**/ce-loss');
      check('the page links to ce-loss', new URL(page.url()).pathname === '/ce-loss', page.url());
      noProblems('at /', problems);
      await context.close();
    });

    for (const [where, base] of [['/', BASE], ['/ear/', PREFIXED]]) {
      await part(`ce-loss at ${where}`, async () => {
        const { context, page, problems } = await open(browser, `${base}ce-loss`);
        const read = () => page.evaluate(() => ({
          p: document.getElementById('p-value').textContent,
          loss: document.getElementById('loss-value').textContent,
          cx: Number(document.getElementById('marker').getAttribute('cx')),
          cy: Number(document.getElementById('marker').getAttribute('cy')),
          curve: document.getElementById('curve').getAttribute('d').length,
          styled: getComputedStyle(document.querySelector('.ce-curve')).fill,
        }));
        const first = await read();
        check(`ce-loss ${where}: p 0.500, loss 0.693`, first.p === '0.500' && first.loss === '0.693',
              JSON.stringify(first));
        check(`ce-loss ${where}: the curve is drawn`, first.curve > 1000, first.curve);
        check(`ce-loss ${where}: style.css applies`, first.styled === 'none', first.styled);
        await page.locator('#p').fill('0.1');
        const low = await read();
        check(`ce-loss ${where}: p 0.1 gives 2.303`, low.p === '0.100' && low.loss === '2.303',
              JSON.stringify(low));
        check(`ce-loss ${where}: the marker moves left and up`, low.cx < first.cx && low.cy < first.cy,
              JSON.stringify([first.cx, first.cy, low.cx, low.cy]));
        await page.locator('#p').fill('1');
        const top = await read();
        check(`ce-loss ${where}: p 1 costs 0.000`, top.loss === '0.000', top.loss);
        await page.locator('#p').focus();
        await page.keyboard.press('ArrowLeft');
        const keyed = await read();
        check(`ce-loss ${where}: the arrow keys move p`, keyed.p === '0.999' && keyed.loss === '0.001',
              JSON.stringify(keyed));
        if (where === '/') await page.screenshot({ path: path.join(ARTIFACTS, 'original-ce-loss.png'), fullPage: true });
        noProblems(`ce-loss ${where}`, problems);
        await context.close();
      });
    }

    await part('under /ear/', async () => {
      const { context, page, problems, requests, queries } = await open(browser, PREFIXED);
      await photo(page);
      await columnsFor(page, 'match your photo', 'image', 'under /ear/');
      await plays(page, '#cross audio', 'under /ear/, the first sound');
      const outside = requests.filter((p) => !p.startsWith('/ear/'));
      check('under /ear/: every request stays under /ear/', outside.length === 0, outside.join(' '));
      check('under /ear/: the photo went to /ear/query',
            queries.length === 1 && queries[0].path === '/ear/query', JSON.stringify(queries));
      check('under /ear/: frames from /ear/data/frames/', requests.some((p) => p.startsWith('/ear/data/frames/')));
      check('under /ear/: sounds from /ear/data/audio/', requests.some((p) => p.startsWith('/ear/data/audio/')));
      noProblems('under /ear/', problems);
      await context.close();
    });

    for (const scheme of ['light', 'dark']) {
      await part(`phone width, ${scheme}`, async () => {
        const { context, page, problems } = await open(browser, BASE, {
          viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true,
          colorScheme: scheme });
        await page.setInputFiles('#image-file', env('EAR_IMAGE'));
        await columnsFor(page, 'match “upload.png”', 'image', `phone, ${scheme}`);
        const layout = await page.evaluate(() => ({
          scroll: document.documentElement.scrollWidth,
          stacked: document.getElementById('cross').getBoundingClientRect().top >
            document.getElementById('same').getBoundingClientRect().bottom,
          background: getComputedStyle(document.body).backgroundColor,
        }));
        check(`phone, ${scheme}: nothing wider than the screen`, layout.scroll <= 375, layout.scroll);
        check(`phone, ${scheme}: the columns one above the other`, layout.stacked);
        const luminance = layout.background.match(/\d+/g).slice(0, 3).reduce((a, b) => a + Number(b), 0) / 765;
        check(`phone, ${scheme}: a ${scheme} background`, scheme === 'dark' ? luminance < 0.2 : luminance > 0.8,
              layout.background);
        await page.screenshot({ path: path.join(ARTIFACTS, `original-phone-${scheme}.png`), fullPage: true });
        noProblems(`phone, ${scheme}`, problems);
        await context.close();
      });
    }

    await part('desktop, dark', async () => {
      const { context, page, problems } = await open(browser, BASE, { colorScheme: 'dark' });
      await photo(page);
      await columnsFor(page, 'match your photo', 'image', 'dark');
      await page.screenshot({ path: path.join(ARTIFACTS, 'original-photo-dark.png'), fullPage: true });
      noProblems('desktop, dark', problems);
      await context.close();
    });
  } finally {
    await browser.close();
  }
  console.log(`original.test.js: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
