// The page in headless chromium (run by browser.sh, which starts the service and
// passes its addresses and files in EAR_* variables). Each check prints a line
// when it fails; the exit status is 0 only when every check passed.
'use strict';

const fs = require('fs');
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
const UPLOAD = env('EAR_UPLOAD');
const TIMEOUT = 30000; // a sanitized `ear serve` on a busy 2-core machine is slow

let passed = 0;
let failed = 0;
function check(what, ok, detail) {
  if (ok) passed++;
  else {
    failed++;
    console.error(`check failed: ${what}${detail === undefined ? '' : ` (got ${detail})`}`);
  }
}

// Runs one part of the test; an exception (a timeout) fails it and the rest go on.
async function part(name, body) {
  try {
    await body();
  } catch (error) {
    failed++;
    console.error(`check failed: ${name}: ${error.message.split('\n')[0]}`);
  }
}

// A page in a fresh context that records what should never happen: script
// errors, Content-Security-Policy refusals and requests to other hosts.
async function open(browser, url, options = {}) {
  const { init, ...contextOptions } = options;
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 },
                                             ...contextOptions });
  context.setDefaultTimeout(TIMEOUT);
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const problems = [];
  const searches = [];
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
    if (/\/(query|api\/search)/.test(new URL(target).pathname)) searches.push(target);
  });
  const response = await page.goto(url);
  check(`${url}: 200`, response && response.status() === 200, response && response.status());
  return { context, page, problems, searches };
}

// The labels of browser.sh's dataset (labels.tsv), and the ids of the items it leaves unlabelled.
const LABELS = new Set(['A cow.', 'A dog.', 'cat', 'A bird at dawn.', 'Rain on a roof.',
                        'A church bell.', 'An engine idling.', 'Waves on a beach.']);

// Waits for the summary of a finished search naming `what`, then checks both
// columns: frames (Audio → Image) that load, and, when the service answered
// `query` (the original's route), sounds (Audio → Audio) that play. An `ear
// serve` without `query` answers through api/search: frames only, said so.
async function resultsFor(page, what, label) {
  await page.waitForFunction(
    (text) => document.getElementById('summary').textContent.includes(text) &&
      document.getElementById('columns').getAttribute('aria-busy') === 'false',
    what);
  await page.waitForFunction(() => [...document.querySelectorAll('#columns img')]
    .every((image) => image.complete), null);
  await page.waitForFunction(() => [...document.querySelectorAll('#columns audio')]
    .every((audio) => audio.readyState >= 1 && audio.duration > 0));
  const read = (id) => page.evaluate((list) => [...document.querySelectorAll(`#${list} li`)].map((li) => ({
    type: li.dataset.type,
    label: li.querySelector('.label').textContent,
    rank: li.querySelector('.rank').textContent,
    width: li.querySelector('img') ? li.querySelector('img').naturalWidth : -1,
    bar: li.querySelector('.bar-fill').style.width,
    score: li.querySelector('.score-text').textContent,
    sound: li.querySelector('audio') ? li.querySelector('audio').duration : null,
  })), id);
  const cross = await read('cross');
  const same = await read('same');
  const viaQuery = await page.evaluate(() => document.getElementById('same-note').hidden);
  check(`${label}: "Cross Modality (Audio → Image)"`,
        await page.locator('#cross-heading').textContent() === 'Cross Modality (Audio → Image)');
  check(`${label}: "Same Modality (Audio → Audio)"`,
        await page.locator('#same-heading').textContent() === 'Same Modality (Audio → Audio)');
  check(`${label}: 1 to 5 frames`, cross.length >= 1 && cross.length <= 5, cross.length);
  check(`${label}: every frame loaded (naturalWidth > 0)`,
        cross.every((hit) => hit.type === 'image' && hit.width > 0),
        JSON.stringify(cross.map((hit) => hit.width)));
  for (const [name, hits] of [['frames', cross], ['sounds', same]]) {
    check(`${label}, ${name}: ranks from #1 in order`,
          hits.every((hit, i) => hit.rank === `#${i + 1}`), hits.map((hit) => hit.rank).join());
    check(`${label}, ${name}: labels from labels.tsv`, hits.every((hit) => LABELS.has(hit.label)),
          hits.map((hit) => hit.label).join('|'));
    check(`${label}, ${name}: a score bar and a score on each`,
          hits.every((hit) => /^\d+%$/.test(hit.bar) && /^score -?\d\.\d{3}$/.test(hit.score)),
          JSON.stringify(hits.map((hit) => [hit.bar, hit.score])));
    check(`${label}, ${name}: every sound playable (duration read)`,
          hits.every((hit) => hit.sound === null || hit.sound > 0.5),
          JSON.stringify(hits.map((hit) => hit.sound)));
  }
  if (viaQuery) {
    check(`${label}: 1 to 5 sounds`, same.length >= 1 && same.length <= 5, same.length);
    check(`${label}: each a sound with a player`,
          same.every((hit) => hit.type === 'audio' && hit.sound > 0.5), JSON.stringify(same));
  } else {
    check(`${label}: (no query route) said that this Ear matches frames only`,
          same.length === 0 && (await page.locator('#same-note').textContent()).includes('frames only'));
    check(`${label}: (no query route) the frames\' sounds playable`,
          cross.some((hit) => hit.sound > 0.5), JSON.stringify(cross.map((hit) => hit.sound)));
  }
  await page.waitForFunction(() => /seconds$/.test(document.getElementById('wave').getAttribute('aria-label')));
  const inked = await page.evaluate(() => {
    // The waveform is drawn: some pixels away from the centre line are inked.
    const canvas = document.getElementById('wave');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const background = data.slice(0, 4).join();
    let inkedPixels = 0;
    for (let i = 0; i < data.length; i += 4)
      if (data.slice(i, i + 4).join() !== background) inkedPixels++;
    return inkedPixels / (canvas.width * canvas.height);
  });
  check(`${label}: the query's waveform drawn on the canvas`, inked > 0.05, inked);
  return { cross, same, viaQuery };
}

async function messageText(page) {
  await page.locator('#message').waitFor({ state: 'visible' });
  return page.locator('#message-text').textContent();
}

// Numbers, not checks: what the browser measured for each search (request
// sent to answer read) and each page load, printed at the end.
const measured = { search: [], load: [] };
async function collect(page) {
  const numbers = await page.evaluate(() => ({
    search: performance.getEntriesByType('resource')
      .filter((entry) => /\/(query|api\/search)/.test(entry.name)).map((entry) => entry.duration),
    load: performance.getEntriesByType('navigation').map((entry) => entry.loadEventEnd),
  }));
  measured.search.push(...numbers.search);
  measured.load.push(...numbers.load);
}
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)].toFixed(1) : '-';
}

function noProblems(label, problems) {
  check(`${label}: no script error, CSP refusal or outside request`, problems.length === 0,
        problems.join('; '));
}

async function record(page, milliseconds) {
  await page.getByRole('button', { name: 'Record' }).click();
  const stop = page.getByRole('button', { name: 'Stop' });
  await stop.waitFor();
  await page.waitForTimeout(milliseconds);
  return stop;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: env('EAR_CHROMIUM'),
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
           `--use-file-for-fake-audio-capture=${env('EAR_MICROPHONE')}`,
           '--autoplay-policy=no-user-gesture-required'],
  });
  try {
    await part('desktop', async () => {
      const { context, page, problems } = await open(browser, BASE);
      check('the title', await page.title() === 'EAR (Embedding Audio-visual Retrieval)', await page.title());
      const example = page.getByRole('button', { name: 'Search with the sound of A cow.' });
      await example.waitFor();
      check('six examples, each a labelled button',
            await page.locator('#examples button').count() === 6,
            await page.locator('#examples button').count());

      // Record with the fake microphone: the meter moves, the timer counts.
      const stop = await record(page, 2600);
      const level = Number(await page.locator('#level').getAttribute('aria-valuenow'));
      check('the level meter shows the microphone', level > 20, level);
      const timer = await page.locator('#timer').textContent();
      check('the timer counts against the 60 s limit', /^0:0[2-3] \/ 1:00$/.test(timer), timer);
      await stop.click();
      await resultsFor(page, 'match your recording', 'recording');
      const caption = await page.locator('#query-caption').textContent();
      check('the query caption gives the duration', /^Your recording, [2-3]\.\d s$/.test(caption), caption);
      await page.screenshot({ path: path.join(ARTIFACTS, 'results-desktop.png'), fullPage: true });

      // A result's own sound plays; starting another pauses it (one at a time).
      const playing = await page.evaluate(async () => {
        const players = [...document.querySelectorAll('#columns audio')];
        players.forEach((audio) => { audio.muted = true; });
        await players[0].play();
        await new Promise((done) => setTimeout(done, 600));
        const first = players[0].currentTime;
        let paused = true;
        if (players[1]) {
          await players[1].play();
          await new Promise((done) => setTimeout(done, 100));
          paused = players[0].paused;
          players[1].pause();
        }
        players[0].pause();
        return { first, paused };
      });
      check('the players fetched dataset sounds', await page.evaluate(() => performance
        .getEntriesByType('resource').some((entry) => /\/data\/audio\//.test(entry.name))));
      check('a result\'s sound plays', playing.first > 0.2, playing.first);
      check('... and another one playing pauses it', playing.paused);

      // The file picker.
      await page.setInputFiles('#file', UPLOAD);
      await resultsFor(page, 'match “upload.ogg”', 'upload');

      // Dropping a file on the zone.
      const bytes = fs.readFileSync(UPLOAD).toString('base64');
      await page.evaluate((base64) => {
        const raw = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([raw], 'dropped.ogg', { type: 'audio/ogg' }));
        const zone = document.getElementById('drop');
        zone.dispatchEvent(new DragEvent('dragenter', { dataTransfer: transfer, bubbles: true }));
        zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true,
                                                   cancelable: true }));
      }, bytes);
      await resultsFor(page, 'match “dropped.ogg”', 'drop');

      // An example, from the keyboard: Tab to it, Enter.
      await page.locator('body').focus();
      let reached = false;
      for (let i = 0; i < 15 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement.classList.contains('example'));
      }
      check('Tab reaches the examples', reached);
      const focused = await page.evaluate(() => document.activeElement.textContent);
      await page.keyboard.press('Enter');
      await resultsFor(page, 'match the example', `example "${focused}" by keyboard`);
      const names = await page.evaluate(() => {
        const unnamed = [];
        for (const control of document.querySelectorAll('button, input, canvas, [role=meter]')) {
          const labelled = control.getAttribute('aria-label') || control.textContent.trim() ||
            (control.id && document.querySelector(`label[for="${control.id}"]`));
          if (!labelled) unnamed.push(control.outerHTML.slice(0, 60));
        }
        return unnamed;
      });
      check('every control has a name', names.length === 0, names.join(' '));
      check('the results are announced (aria-live)',
            await page.locator('#summary').getAttribute('aria-live') === 'polite');
      noProblems('desktop', problems);
      await collect(page);
      await context.close();
    });

    await part('errors', async () => {
      const { context, page, problems, searches } = await open(browser, BASE);
      await page.setInputFiles('#file', env('EAR_NOT_AUDIO'));
      let text = await messageText(page);
      check('not a sound: the service\'s 400 in plain words',
            /^Ear (could not read that as a sound\.|searches with sounds)/.test(text), text);
      check('... and no stale results', await page.locator('#columns li').count() === 0);
      await page.screenshot({ path: path.join(ARTIFACTS, 'error-undecodable.png') });

      const before = searches.length;
      await page.setInputFiles('#file', env('EAR_HUGE'));
      await page.waitForFunction(() => document.getElementById('message-text').textContent.includes('50 MB'));
      text = await page.locator('#message-text').textContent();
      check('over 50 MB: refused before sending', text === '“huge.wav” is 53 MB: Ear accepts at ' +
            'most 50 MB. Choose a shorter sound.', text);
      check('... nothing was sent', searches.length === before, searches.length - before);

      const stop = await record(page, 100);
      await stop.click();
      text = await messageText(page);
      check('a recording under a second: too short', text.startsWith('That recording was too short'), text);
      check('... nothing was sent', searches.length === before, searches.length - before);

      // Busy: the service's 503, then the same sound again once it is free.
      const busy = (route) => route.fulfill({
        status: 503, contentType: 'application/json', headers: { 'Retry-After': '1' },
        body: '{"error":{"code":"busy","message":"every worker is busy"}}' });
      await page.route('**/query', busy);
      await page.route('**/api/search*', busy);
      await page.setInputFiles('#file', UPLOAD);
      await page.waitForFunction(() => document.getElementById('message-text').textContent.includes('busy'));
      text = await page.locator('#message-text').textContent();
      check('503: busy, try again', text === 'Ear is busy with other searches right now. Try again in a moment.', text);
      const retry = page.getByRole('button', { name: 'Try again' });
      check('... with a Try again button', await retry.isVisible());
      await page.unroute('**/query');
      await page.unroute('**/api/search*');
      await retry.click();
      await resultsFor(page, 'match “upload.ogg”', 'retry after 503');
      check('... the message is gone', await page.locator('#message').isHidden());

      // The network down.
      await page.route('**/query', (route) => route.abort('internetdisconnected'));
      await page.route('**/api/search*', (route) => route.abort('internetdisconnected'));
      await page.setInputFiles('#file', UPLOAD);
      text = await messageText(page);
      check('network down: said so', text.startsWith('Ear could not be reached'), text);
      check('... with a Try again button', await retry.isVisible());
      await page.unroute('**/query');
      await page.unroute('**/api/search*');
      noProblems('errors', problems);
      await context.close();
    });

    await part('microphone', async () => {
      for (const [name, expected] of [['NotAllowedError', 'The microphone was refused.'],
                                      ['NotFoundError', 'No microphone was found.']]) {
        // The browser's own answer when the user says no, or when there is no device.
        const init = `navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException('denied', '${name}'));`;
        const { context, page, problems } = await open(browser, BASE, { init });
        await page.getByRole('button', { name: 'Record' }).click();
        const text = await messageText(page);
        check(`${name}: in plain words`, text.startsWith(expected), text);
        check(`${name}: the Record button is usable again`,
              await page.getByRole('button', { name: 'Record' }).isEnabled());
        noProblems(`microphone ${name}`, problems);
        await context.close();
      }
    });

    await part('under /ear/', async () => {
      const { context, page, problems } = await open(browser, PREFIXED);
      const requests = [];
      page.on('request', (request) => {
        if (!request.url().startsWith('blob:')) requests.push(new URL(request.url()).pathname);
      });
      await page.getByRole('button', { name: 'Search with the sound of A dog.' }).waitFor();
      const stop = await record(page, 2000);
      await stop.click();
      await resultsFor(page, 'match your recording', 'under /ear/');
      const outside = requests.filter((p) => !p.startsWith('/ear/'));
      check('under /ear/: every request stays under /ear/', outside.length === 0, outside.join(' '));
      check('under /ear/: the search went to /ear/query', requests.includes('/ear/query'));
      check('under /ear/: frames from /ear/data/frames/',
            requests.some((p) => p.startsWith('/ear/data/frames/')));
      noProblems('under /ear/', problems);
      await collect(page);
      await context.close();
    });

    await part('phone width', async () => {
      const { context, page, problems } = await open(browser, BASE, {
        viewport: { width: 375, height: 812 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
      await page.setInputFiles('#file', UPLOAD);
      await resultsFor(page, 'match “upload.ogg”', 'phone');
      const layout = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        columns: new Set([...document.querySelectorAll('#cross li')].map((li) => li.offsetLeft)).size,
        cards: document.querySelectorAll('#cross li').length,
      }));
      check('375 px: nothing wider than the screen', layout.scroll <= 375, layout.scroll);
      check('375 px: the frames two a row', layout.columns === Math.min(2, layout.cards),
            `${layout.columns} for ${layout.cards}`);
      await page.screenshot({ path: path.join(ARTIFACTS, 'results-phone.png'), fullPage: true });
      noProblems('phone', problems);
      await collect(page);
      await context.close();
    });

    await part('dark', async () => {
      const { context, page, problems } = await open(browser, BASE, { colorScheme: 'dark' });
      const light = await browser.newContext();
      const lightPage = await light.newPage();
      await lightPage.goto(BASE);
      const background = (p) => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
      const dark = await background(page);
      const bright = await background(lightPage);
      await light.close();
      const luminance = (rgb) => rgb.match(/\d+/g).slice(0, 3).reduce((a, b) => a + Number(b), 0) / 765;
      check('dark scheme: a dark background', luminance(dark) < 0.2, dark);
      check('light scheme: a light background', luminance(bright) > 0.8, bright);
      await page.getByRole('button', { name: 'Search with the sound of A bird at dawn.' }).click();
      await resultsFor(page, 'match the example “A bird at dawn.”', 'dark');
      await page.screenshot({ path: path.join(ARTIFACTS, 'results-dark.png'), fullPage: true });
      noProblems('dark', problems);
      await collect(page);
      await context.close();
    });
  } finally {
    await browser.close();
  }
  console.log(`page.test.js: searches from the page: median ${median(measured.search)} ms ` +
              `(${measured.search.length}); page loaded (load event): median ` +
              `${median(measured.load)} ms (${measured.load.length})`);
  console.log(`page.test.js: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
