// Ear's page: record (MediaRecorder), upload or pick an example sound, upload a
// picture or take a photo with the camera; POST it to `query` (the original
// service's route) and show what matches in two columns, Same Modality and
// Cross Modality. Every URL is relative so that the page works at / and under
// /ear/; no inline script or style, as the service's Content-Security-Policy
// forbids them (element.style set from here is allowed).
'use strict';

(() => {
  // The service's own limits (ear serve --max-upload 50M, --max-seconds 60).
  const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
  const MAX_SECONDS = 60;
  // Shorter than this is almost surely a slip of the finger; the service's own
  // floor (0.1 s) would answer 422 anyway.
  const MIN_SECONDS = 1;
  // The original answers at most 5 a column; an older Ear's api/search is asked for as many.
  const PER_COLUMN = 5;
  // Recording formats by preference: Chromium records WebM/Opus, Firefox
  // Ogg/Opus, Safari MP4/AAC; the service finds the format from the bytes.
  const RECORDING_TYPES = [
    'audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4;codecs=mp4a.40.2',
    'audio/mp4', 'audio/webm', 'audio/ogg',
  ];
  const IMAGE_EXTENSIONS = /\.(jpe?g|png)$/i;
  const KIND_NAMES = { audio: 'Audio', image: 'Image' };

  const $ = (id) => document.getElementById(id);
  const ui = {
    home: $('home'),
    record: $('record'), recordText: $('record-text'), recordCancel: $('record-cancel'),
    level: $('level'), levelFill: $('level-fill'), timer: $('timer'), file: $('file'),
    drop: $('drop'), imageFile: $('image-file'), imageDrop: $('image-drop'),
    cameraOpen: $('camera-open'), camera: $('camera'), cameraVideo: $('camera-video'),
    capture: $('capture'), cameraCancel: $('camera-cancel'),
    examples: $('examples'), examplesPanel: $('examples-panel'), message: $('message'),
    messageText: $('message-text'), retry: $('retry'), status: $('status'), spinner: $('spinner'),
    figure: $('query-figure'), queryImage: $('query-image'), wave: $('wave'),
    caption: $('query-caption'), queryAudio: $('query-audio'), summary: $('summary'),
    columns: $('columns'),
    same: $('same'), sameDirection: $('same-direction'), sameNote: $('same-note'),
    cross: $('cross'), crossDirection: $('cross-direction'), crossNote: $('cross-note'),
  };

  let recording = null;   // {recorder, stream, chunks, started, context, frame, ticker, type, cancelled}
  let camera = null;      // {stream}: the camera while its preview shows
  let lastQuery = null;   // {blob, name, what, kind}: what "Try again" sends again
  let searching = false;
  let queryUrl = null;    // object URL of the query, for its preview
  let peaks = null;       // the query's waveform, kept to redraw at another size

  // ---- messages ----

  function showError(text, canRetry) {
    ui.messageText.textContent = text;
    ui.retry.hidden = !canRetry;
    ui.message.hidden = false;
    ui.status.textContent = '';
  }

  function clearError() {
    ui.message.hidden = true;
    ui.messageText.textContent = '';
    ui.retry.hidden = true;
  }

  function megabytes(bytes) {
    return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
  }

  function seconds(s) {
    const whole = Math.floor(s);
    return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, '0')}`;
  }

  function capitalise(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // The service's error, in either shape: the original's {"error": "text"} or
  // Ear's own {"error": {"code", "message"}}.
  function errorOf(answer) {
    if (!answer || !answer.error) return { code: '', message: '' };
    if (typeof answer.error === 'string') return { code: '', message: answer.error };
    return { code: String(answer.error.code || ''), message: String(answer.error.message || '') };
  }

  // The service's JSON error in plain words; retry says whether trying the same
  // query again may help.
  function describeFailure(status, answer, kind) {
    const error = errorOf(answer);
    const detail = error.message ? ` (Ear said: ${error.message})` : '';
    const said = (pattern) => pattern.test(error.code) || pattern.test(error.message);
    if (status === 400 && said(/undecodable_audio|audio conversion failed/i))
      return { text: 'Ear could not read that as a sound. Try a WAV, MP3, Ogg, WebM, FLAC ' +
                     `or M4A file.${detail}`, retry: false };
    if (status === 400 && said(/unsupported/i))
      return { text: 'Ear searches with sounds (WAV, MP3, Ogg, WebM, FLAC, M4A) and pictures ' +
                     `(JPEG, PNG); it could not use that file.${detail}`, retry: false };
    // The original answered an unreadable picture with 500 and PIL's words
    // ("cannot identify image file"), and Ear answers as it did: not worth a retry.
    if ((status === 400 || status === 500) && said(/cannot identify image|undecodable_image/i) ||
        (status === 400 && kind === 'image' && said(/image|picture|jpeg|png|decod/i)))
      return { text: `Ear could not read that as a picture. Try a JPEG or PNG file.${detail}`,
               retry: false };
    if (status === 413)
      return { text: `That ${kind === 'image' ? 'picture' : 'sound'} is too large: Ear accepts ` +
                     'at most 50 MB.', retry: false };
    if (status === 422)
      return { text: 'That sound is too short for Ear to search. Use at least a second of ' +
                     'sound.', retry: false };
    if (status === 503 && said(/warming|index missing/i))
      return { text: 'Ear is still starting up (its index is not ready yet). Try again in a ' +
                     'moment.', retry: true };
    if (status === 503)
      return { text: 'Ear is busy with other searches right now. Try again in a moment.',
               retry: true };
    if (status >= 500)
      return { text: `Ear is not answering properly right now (error ${status}). ` +
                     'Try again in a moment.', retry: true };
    return { text: `The search was refused (error ${status})${detail}.`, retry: false };
  }

  // ---- searching ----

  function setSearching(on) {
    searching = on;
    ui.record.disabled = on && !recording;
    ui.file.disabled = on;
    ui.imageFile.disabled = on;
    ui.cameraOpen.disabled = on || Boolean(camera);
    for (const button of ui.examples.querySelectorAll('button')) button.disabled = on;
    ui.spinner.hidden = !on;
    ui.columns.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  // POSTs the query; answers {status, answer} or throws when nothing came back.
  async function post(url, field, blob, name) {
    const body = new FormData();
    body.append(field, blob, name);
    const response = await fetch(url, { method: 'POST', body });
    let answer = null;
    try {
      answer = await response.json();
    } catch (e) {
      answer = null; // a proxy's HTML page, a cut connection: the status says enough
    }
    return { status: response.status, ok: response.ok, answer };
  }

  // An older Ear has no `query`, only api/search (sounds against frames): its
  // answer in the original's shape, so that one view shows both.
  function fromSearch(answer) {
    if (!answer || !Array.isArray(answer.results)) return null;
    return {
      query_type: 'audio',
      same_modality: [],
      cross_modality: answer.results.map((hit) => ({
        type: 'image', url: hit.frame_url, label: hit.label || hit.id, score: hit.score,
        sound: hit.audio_url || null,
      })),
      onlyFrames: true,
    };
  }

  async function search(blob, name, what, kind) {
    if (searching) return;
    lastQuery = { blob, name, what, kind };
    clearError();
    stopPlaying();
    setSearching(true);
    ui.status.textContent = `Searching with ${what}…`;
    showQuery(blob, what, kind);
    const started = performance.now();
    let result;
    let answer = null;
    try {
      // The original's request: one file field, `file`, to the relative URL `query`.
      result = await post('query', 'file', blob, name);
      if (result.status === 404 && kind === 'audio') {
        result = await post(`api/search?k=${PER_COLUMN}`, 'audio', blob, name);
        answer = result.ok ? fromSearch(result.answer) : result.answer;
      } else {
        answer = result.answer;
      }
    } catch (e) {
      setSearching(false);
      clearResults('No results: the search failed.');
      showError('Ear could not be reached: the network or the service is down. Check your ' +
                'connection and try again.', true);
      return;
    }
    setSearching(false);
    const fine = result.ok && answer && Array.isArray(answer.same_modality) &&
      Array.isArray(answer.cross_modality);
    if (!fine) {
      let failure;
      if (result.status === 404 && kind === 'image')
        failure = { text: 'This Ear cannot search with pictures: it is an older version ' +
                          'without the query route. Record or upload a sound instead.', retry: false };
      else
        failure = describeFailure(result.ok ? 500 : result.status, answer, kind);
      showError(failure.text, failure.retry);
      // A query that will never search needs no preview; one to retry keeps it.
      if (!failure.retry) hideQuery();
      clearResults('No results: the search failed.');
      return;
    }
    showResults(answer, what, performance.now() - started);
  }

  function clearResults(summary) {
    ui.same.replaceChildren();
    ui.cross.replaceChildren();
    ui.columns.hidden = true;
    ui.summary.textContent = summary;
  }

  function direction(from, to) {
    return `${KIND_NAMES[from] || from} → ${KIND_NAMES[to] || to}`;
  }

  function count(items, kind) {
    const noun = kind === 'audio' ? 'sound' : 'frame';
    return `${items.length} ${noun}${items.length === 1 ? '' : 's'}`;
  }

  function showResults(answer, what, milliseconds) {
    const kind = answer.query_type === 'image' ? 'image' : 'audio';
    const other = kind === 'audio' ? 'image' : 'audio';
    ui.sameDirection.textContent = `(${direction(kind, kind)})`;
    ui.crossDirection.textContent = `(${direction(kind, other)})`;
    ui.same.replaceChildren(...answer.same_modality.map((hit, i) => resultItem(hit, i + 1)));
    ui.cross.replaceChildren(...answer.cross_modality.map((hit, i) => resultItem(hit, i + 1)));
    ui.sameNote.hidden = answer.same_modality.length > 0;
    ui.sameNote.textContent = answer.onlyFrames
      ? 'This Ear matches sounds with frames only.'
      : `No ${kind === 'audio' ? 'sounds' : 'frames'} match.`;
    ui.crossNote.hidden = answer.cross_modality.length > 0;
    ui.crossNote.textContent = `No ${other === 'audio' ? 'sounds' : 'frames'} match.`;
    ui.columns.hidden = false;
    ui.status.textContent = `Searched in ${Math.round(milliseconds)} ms.`;
    const all = [...answer.same_modality, ...answer.cross_modality];
    if (all.length === 0) {
      ui.summary.textContent = `Nothing matches ${what}.`;
      return;
    }
    const best = all.reduce((a, b) => (b.score > a.score ? b : a));
    const parts = [];
    if (answer.same_modality.length) parts.push(count(answer.same_modality, kind));
    if (answer.cross_modality.length) parts.push(count(answer.cross_modality, other));
    ui.summary.textContent = `${parts.join(' and ')} match ${what}. Best: ${best.label} ` +
      `(score ${score(best.score)}).`;
  }

  function score(value) {
    return typeof value === 'number' ? value.toFixed(3) : '?';
  }

  // The original's URLs are absolute, under its /ear/ prefix (/ear/data/frames/…):
  // made relative here so that they load at / as well as under /ear/.
  function resolve(url) {
    if (typeof url !== 'string' || url === '') return null;
    const data = url.match(/^\/(?:ear\/)?(data\/.*)$/);
    if (data) return data[1];
    if (/^[a-z][a-z0-9+.-]*:/i.test(url) || url.startsWith('//')) return null; // elsewhere: not loaded
    return url.replace(/^\/+/, '');
  }

  function resultItem(hit, rank) {
    const item = document.createElement('li');
    item.className = 'hit';
    item.dataset.type = hit.type === 'audio' ? 'audio' : 'image';
    const label = hit.label || '?';
    const url = resolve(hit.url);
    const media = document.createElement('div');
    media.className = 'frame';
    if (hit.type === 'audio') {
      media.classList.add('sound-frame');
      const note = document.createElement('span');
      note.className = 'note';
      note.setAttribute('aria-hidden', 'true');
      note.textContent = '♪';
      media.append(note);
    } else if (url) {
      const image = document.createElement('img');
      image.src = url;
      image.alt = `Frame: ${label}`;
      image.decoding = 'async';
      image.addEventListener('error', () => {
        image.remove();
        media.prepend(noFrame('Frame not available'));
      });
      media.append(image);
    } else {
      media.append(noFrame('No frame'));
    }
    const badge = document.createElement('span');
    badge.className = 'rank';
    badge.setAttribute('aria-hidden', 'true'); // the list's own numbering says it
    badge.textContent = `#${rank}`;
    media.append(badge);

    const name = document.createElement('p');
    name.className = 'label';
    name.textContent = label;

    const scoreBox = document.createElement('div');
    scoreBox.className = 'score';
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('div');
    fill.className = 'bar-fill';
    // Cosine similarity: 1 is the same direction; below 0 shows as empty.
    const value = typeof hit.score === 'number' ? hit.score : 0;
    fill.style.width = `${Math.round(Math.max(0, Math.min(1, value)) * 100)}%`;
    bar.append(fill);
    const number = document.createElement('span');
    number.className = 'score-text';
    number.textContent = `score ${score(hit.score)}`;
    scoreBox.append(bar, number);

    item.append(media, name, scoreBox);
    const sound = hit.type === 'audio' ? url : resolve(hit.sound);
    if (sound) item.append(player(sound, `The sound of ${label}`));
    return item;
  }

  function player(url, name) {
    const audio = document.createElement('audio');
    audio.controls = true;
    audio.preload = 'metadata';
    audio.src = url;
    audio.className = 'player';
    audio.setAttribute('aria-label', name);
    audio.addEventListener('error', () => {
      const missing = noFrame('Sound not available');
      missing.classList.add('no-sound');
      audio.replaceWith(missing);
    });
    return audio;
  }

  function noFrame(text) {
    const box = document.createElement('span');
    box.className = 'no-frame';
    box.textContent = text;
    return box;
  }

  // ---- playing sounds: one at a time ----

  function stopPlaying(except) {
    for (const audio of document.querySelectorAll('audio'))
      if (audio !== except && !audio.paused) audio.pause();
  }
  // 'play' does not bubble: caught on the way down instead.
  document.addEventListener('play', (event) => stopPlaying(event.target), true);

  // ---- the query's preview: the picture, or the sound's waveform and a player ----

  function hideQuery() {
    ui.figure.hidden = true;
    ui.queryAudio.removeAttribute('src');
  }

  function showQuery(blob, what, kind) {
    if (queryUrl) URL.revokeObjectURL(queryUrl);
    queryUrl = URL.createObjectURL(blob);
    ui.caption.textContent = capitalise(what);
    ui.figure.hidden = false;
    ui.figure.dataset.kind = kind;
    if (kind === 'image') {
      ui.queryImage.src = queryUrl;
      ui.queryImage.hidden = false;
      ui.wave.hidden = true;
      ui.queryAudio.hidden = true;
      ui.queryAudio.removeAttribute('src');
      return;
    }
    ui.queryImage.hidden = true;
    ui.queryImage.removeAttribute('src');
    ui.wave.hidden = false;
    ui.queryAudio.hidden = false;
    ui.queryAudio.src = queryUrl;
    peaks = null;
    drawWave();
    const current = queryUrl; // a later query may finish decoding first
    blob.arrayBuffer()
      .then((bytes) => {
        // An offline context decodes without asking to play anything.
        const Offline = window.OfflineAudioContext || window.webkitOfflineAudioContext;
        if (!Offline) throw new Error('no Web Audio');
        return new Offline(1, 1, 44100).decodeAudioData(bytes);
      })
      .then((buffer) => {
        if (queryUrl !== current) return;
        peaks = wavePeaks(buffer, 1024);
        ui.caption.textContent = `${capitalise(what)}, ${buffer.duration.toFixed(1)} s` +
          (buffer.duration > MAX_SECONDS ? ` (only the first ${MAX_SECONDS} s are searched)` : '');
        drawWave();
      })
      .catch(() => {
        if (queryUrl !== current) return;
        peaks = 'none'; // the browser cannot decode it; the service may still
        drawWave();
      });
  }

  // Min and max of the mixed channels in `columns` slices.
  function wavePeaks(buffer, columns) {
    const length = buffer.length;
    const mins = new Float32Array(columns);
    const maxs = new Float32Array(columns);
    const rms = new Float32Array(columns);
    const channels = [];
    for (let c = 0; c < buffer.numberOfChannels; c++) channels.push(buffer.getChannelData(c));
    for (let x = 0; x < columns; x++) {
      const from = Math.floor((x * length) / columns);
      const to = Math.max(from + 1, Math.floor(((x + 1) * length) / columns));
      let low = 0;
      let high = 0;
      let squares = 0;
      for (let i = from; i < to && i < length; i++) {
        let v = 0;
        for (const data of channels) v += data[i];
        v /= channels.length;
        if (v < low) low = v;
        if (v > high) high = v;
        squares += v * v;
      }
      mins[x] = low;
      maxs[x] = high;
      rms[x] = Math.sqrt(squares / Math.max(1, Math.min(to, length) - from));
    }
    return { mins, maxs, rms, seconds: buffer.duration };
  }

  function drawWave() {
    if (ui.figure.hidden || ui.wave.hidden) return;
    const canvas = ui.wave;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    if (canvas.width !== width) canvas.width = width;
    if (canvas.height !== height) canvas.height = height;
    const g = canvas.getContext('2d');
    const style = getComputedStyle(document.documentElement);
    const colour = (name) => style.getPropertyValue(name).trim() || '#888';
    g.clearRect(0, 0, width, height);
    g.fillStyle = colour('--wave-bg');
    g.fillRect(0, 0, width, height);
    const middle = height / 2;
    g.fillStyle = colour('--muted');
    g.fillRect(0, Math.floor(middle), width, Math.max(1, Math.round(ratio)));
    if (!peaks || peaks === 'none') {
      g.font = `${Math.round(14 * ratio)}px system-ui, sans-serif`;
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText(peaks ? 'No preview of this sound in this browser' : 'Reading the sound…',
                 width / 2, middle - 14 * ratio);
      return;
    }
    // Scale so that quiet recordings still show their shape.
    let loudest = 0.05;
    for (let i = 0; i < peaks.maxs.length; i++)
      loudest = Math.max(loudest, peaks.maxs[i], -peaks.mins[i]);
    const scale = (middle * 0.92) / loudest;
    // The peaks faint, the loudness (RMS) solid inside them.
    g.fillStyle = colour('--accent');
    const columns = peaks.maxs.length;
    for (const [alpha, low, high] of [[0.4, peaks.mins, peaks.maxs], [1, null, peaks.rms]]) {
      g.globalAlpha = alpha;
      for (let x = 0; x < width; x++) {
        const i = Math.min(columns - 1, Math.floor((x * columns) / width));
        const top = middle - high[i] * scale;
        const bottom = middle - (low ? low[i] : -high[i]) * scale;
        g.fillRect(x, top, 1, Math.max(ratio, bottom - top));
      }
    }
    g.globalAlpha = 1;
    ui.wave.setAttribute('aria-label',
      `Waveform of the sound searched for, ${peaks.seconds.toFixed(1)} seconds`);
  }

  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawWave, 100);
  });
  if (window.matchMedia)
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', drawWave);

  // ---- recording ----

  function pickRecordingType() {
    if (typeof MediaRecorder.isTypeSupported !== 'function') return '';
    return RECORDING_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || '';
  }

  function extensionOf(type) {
    if (type.includes('webm')) return 'webm';
    if (type.includes('ogg')) return 'ogg';
    if (type.includes('mp4') || type.includes('aac')) return 'm4a';
    return 'audio';
  }

  function microphoneFailure(error) {
    const name = error && error.name;
    if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError')
      return 'The microphone was refused. Allow it for this site in the browser’s settings, ' +
             'or upload a sound file instead.';
    if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError')
      return 'No microphone was found. Plug one in, or upload a sound file instead.';
    if (name === 'NotReadableError' || name === 'AbortError')
      return 'The microphone could not be started: another program may be using it. ' +
             'Close it and try again, or upload a sound file.';
    return 'The microphone could not be started. Upload a sound file instead.';
  }

  async function startRecording() {
    clearError();
    stopPlaying();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError('This page cannot use a microphone here: browsers allow it only on secure ' +
                'pages (https:// or localhost). Upload a sound file instead.', false);
      return;
    }
    if (typeof MediaRecorder === 'undefined') {
      showError('This browser cannot record sound. Upload a sound file instead.', false);
      return;
    }
    ui.record.disabled = true;
    ui.status.textContent = 'Asking for the microphone…';
    let stream;
    try {
      // The raw signal: echo cancellation and noise suppression would remove
      // the very sounds being searched for.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (error) {
      ui.record.disabled = false;
      showError(microphoneFailure(error), false);
      return;
    }
    let recorder;
    const type = pickRecordingType();
    try {
      recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    } catch (error) {
      stream.getTracks().forEach((track) => track.stop());
      ui.record.disabled = false;
      showError('This browser cannot record sound in a format Ear reads. Upload a sound ' +
                'file instead.', false);
      return;
    }
    const state = { recorder, stream, chunks: [], started: 0, context: null, frame: 0,
                    ticker: 0, type, cancelled: false };
    recording = state;
    recorder.addEventListener('dataavailable', (event) => {
      if (event.data && event.data.size) state.chunks.push(event.data);
    });
    recorder.addEventListener('stop', () => finishRecording(state));
    recorder.addEventListener('error', () => {
      showError('The recording failed. Try again, or upload a sound file.', false);
      stopRecording();
    });
    recorder.start(250);
    state.started = performance.now();
    ui.record.disabled = false;
    ui.record.classList.add('recording');
    ui.record.setAttribute('aria-pressed', 'true');
    ui.recordText.textContent = 'Stop & search';
    ui.recordCancel.hidden = false;
    ui.status.textContent = 'Recording… press Stop & search to search, or Cancel.';
    startLevelMeter(state);
    state.ticker = setInterval(() => tick(state), 200);
    tick(state);
  }

  function tick(state) {
    const elapsed = (performance.now() - state.started) / 1000;
    ui.timer.textContent = `${seconds(Math.min(elapsed, MAX_SECONDS))} / ${seconds(MAX_SECONDS)}`;
    ui.level.setAttribute('aria-valuenow', String(state.level || 0));
    if (elapsed >= MAX_SECONDS) stopRecording();
  }

  function startLevelMeter(state) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    try {
      state.context = new Context();
      const analyser = state.context.createAnalyser();
      analyser.fftSize = 1024;
      state.context.createMediaStreamSource(state.stream).connect(analyser);
      const samples = new Float32Array(analyser.fftSize);
      const draw = () => {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        for (const v of samples) sum += v * v;
        const rms = Math.sqrt(sum / samples.length);
        // -60 dBFS (silence) to 0 dBFS (full scale) across the meter.
        const db = 20 * Math.log10(rms + 1e-9);
        state.level = Math.round(Math.max(0, Math.min(1, (db + 60) / 60)) * 100);
        ui.levelFill.style.width = `${state.level}%`;
        state.frame = requestAnimationFrame(draw);
      };
      draw();
    } catch (e) {
      state.context = null; // no meter; the recording itself goes on
    }
  }


  function stopRecording(cancel) {
    const state = recording;
    if (!state) return;
    if (cancel) state.cancelled = true;
    if (state.recorder.state !== 'inactive') state.recorder.stop();
  }

  function finishRecording(state) {
    const elapsed = (performance.now() - state.started) / 1000;
    clearInterval(state.ticker);
    cancelAnimationFrame(state.frame);
    if (state.context) state.context.close().catch(() => {});
    state.stream.getTracks().forEach((track) => track.stop());
    recording = null;
    ui.record.classList.remove('recording');
    ui.record.removeAttribute('aria-pressed');
    ui.recordText.textContent = 'Record';
    ui.recordCancel.hidden = true;
    ui.levelFill.style.width = '0%';
    ui.level.setAttribute('aria-valuenow', '0');
    ui.timer.textContent = `0:00 / ${seconds(MAX_SECONDS)}`;
    ui.status.textContent = '';
    if (state.cancelled) {
      ui.status.textContent = 'Recording cancelled.';
      ui.record.focus();
      return;
    }
    const type = state.recorder.mimeType || state.type || 'audio/webm';
    const blob = new Blob(state.chunks, { type });
    if (elapsed < MIN_SECONDS || blob.size === 0) {
      showError(`That recording was too short (${elapsed.toFixed(1)} s). Record at least a ` +
                'second of sound, then press Stop & search.', false);
      return;
    }
    search(blob, `recording.${extensionOf(type)}`, 'your recording', 'audio');
  }

  ui.record.addEventListener('click', () => {
    if (recording) stopRecording(false);
    else startRecording();
  });
  ui.recordCancel.addEventListener('click', () => stopRecording(true));

  // ---- the camera: a live preview, Capture, Cancel ----

  function cameraFailure(error) {
    const name = error && error.name;
    if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError')
      return 'The camera was refused. Allow it for this site in the browser’s settings, ' +
             'or upload a picture instead.';
    if (name === 'NotFoundError' || name === 'OverconstrainedError' || name === 'DevicesNotFoundError')
      return 'No camera was found. Upload a picture instead.';
    if (name === 'NotReadableError' || name === 'AbortError')
      return 'The camera could not be started: another program may be using it. ' +
             'Close it and try again, or upload a picture.';
    return 'The camera could not be started. Upload a picture instead.';
  }

  function closeCamera() {
    if (!camera) return;
    camera.stream.getTracks().forEach((track) => track.stop());
    if (camera.stopped) camera.stopped();
    camera = null;
    ui.capture.disabled = true; // until the next opening shows a frame
    ui.cameraVideo.srcObject = null;
    ui.camera.hidden = true;
    ui.cameraOpen.disabled = searching;
  }

  async function openCamera() {
    clearError();
    if (camera) return;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError('This page cannot use a camera here: browsers allow it only on secure ' +
                'pages (https:// or localhost). Upload a picture instead.', false);
      return;
    }
    ui.cameraOpen.disabled = true;
    ui.status.textContent = 'Asking for the camera…';
    let stream;
    try {
      // The back camera on a phone, if there is one; any camera otherwise.
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: 'environment', width: { ideal: 1280 }, height: { ideal: 960 } },
        audio: false,
      });
    } catch (error) {
      ui.cameraOpen.disabled = searching;
      ui.status.textContent = '';
      showError(cameraFailure(error), false);
      return;
    }
    const state = { stream };
    camera = state;
    ui.cameraVideo.srcObject = stream;
    ui.camera.hidden = false;
    ui.capture.disabled = true;
    ui.status.textContent = 'The camera is on: press Capture to search with what it shows.';
    try {
      await ui.cameraVideo.play();
    } catch (e) {
      // autoplay (muted) may still start it; Capture waits for a frame below
    }
    if (camera === state && ui.cameraVideo.readyState < 2)
      await new Promise((done) => {
        ui.cameraVideo.addEventListener('loadeddata', done, { once: true });
        state.stopped = done; // Cancel before the first frame
      });
    if (camera !== state) return; // cancelled (and perhaps opened again) meanwhile
    ui.capture.disabled = false;
    ui.capture.focus();
  }

  function capture() {
    const video = ui.cameraVideo;
    if (!camera || !video.videoWidth) return;
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    closeCamera();
    canvas.toBlob((blob) => {
      if (!blob) {
        showError('The photo could not be taken. Try again, or upload a picture.', false);
        return;
      }
      // The name the original's page sent: its service chose the kind by the name.
      search(blob, 'webcam_capture.jpg', 'your photo', 'image');
    }, 'image/jpeg', 0.92);
  }

  ui.cameraOpen.addEventListener('click', openCamera);
  ui.capture.addEventListener('click', capture);
  ui.cameraCancel.addEventListener('click', () => {
    closeCamera();
    ui.status.textContent = 'Camera closed.';
    ui.cameraOpen.focus();
  });
  ui.camera.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') ui.cameraCancel.click();
  });

  // ---- files: the pickers and dropping ----

  function isImage(file) {
    return /^image\//.test(file.type) || IMAGE_EXTENSIONS.test(file.name);
  }

  function searchFile(file, expected) {
    if (!file) return;
    clearError();
    const kind = isImage(file) ? 'image' : 'audio';
    const noun = kind === 'image' ? 'picture' : 'sound';
    if (file.size > MAX_UPLOAD_BYTES) {
      showError(`“${file.name}” is ${megabytes(file.size)}: Ear accepts at most 50 MB. ` +
                `Choose a ${kind === 'image' ? 'smaller picture' : 'shorter sound'}.`, false);
      return;
    }
    if (file.size === 0) {
      showError(`“${file.name}” is empty. Choose a ${noun} file.`, false);
      return;
    }
    if (kind === 'image' && !/^image\/(jpeg|png)$/.test(file.type) && !IMAGE_EXTENSIONS.test(file.name)) {
      showError(`“${file.name}” is not a JPEG or PNG picture: Ear reads only those.`, false);
      return;
    }
    if (expected === 'image' && kind !== 'image') {
      showError(`“${file.name}” is not a picture. Choose a JPEG or PNG file, or upload ` +
                'it as a sound.', false);
      return;
    }
    search(file, file.name, `“${file.name}”`, kind);
  }

  for (const [input, expected] of [[ui.file, null], [ui.imageFile, 'image']]) {
    input.addEventListener('change', () => {
      const file = input.files[0];
      input.value = ''; // so that choosing the same file again searches again
      searchFile(file, expected);
    });
  }

  // A file dropped anywhere but a zone would make the browser leave the page.
  for (const type of ['dragover', 'drop'])
    document.addEventListener(type, (event) => event.preventDefault());
  for (const [zone, expected] of [[ui.drop, null], [ui.imageDrop, 'image']]) {
    let dragDepth = 0;
    zone.addEventListener('dragenter', () => {
      dragDepth++;
      zone.classList.add('over');
    });
    zone.addEventListener('dragleave', () => {
      if (--dragDepth <= 0) {
        dragDepth = 0;
        zone.classList.remove('over');
      }
    });
    zone.addEventListener('drop', (event) => {
      dragDepth = 0;
      zone.classList.remove('over');
      const files = event.dataTransfer && event.dataTransfer.files;
      if (searching) return;
      if (!files || files.length === 0) {
        showError(`Drop a ${expected === 'image' ? 'picture' : 'sound'} file here (not a link ` +
                  'or text).', false);
        return;
      }
      searchFile(files[0], expected);
    });
  }

  // ---- examples from the dataset ----

  async function loadExamples() {
    let answer;
    try {
      const response = await fetch('api/examples?n=6');
      if (!response.ok) throw new Error(String(response.status));
      answer = await response.json();
    } catch (e) {
      answer = null;
    }
    const examples = answer && Array.isArray(answer.examples) ? answer.examples : [];
    if (examples.length === 0) {
      ui.examplesPanel.hidden = true; // an older service, or a dataset without sounds
      return;
    }
    for (const example of examples) {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'example';
      const hidden = document.createElement('span');
      hidden.className = 'visually-hidden';
      hidden.textContent = 'Search with the sound of ';
      button.append(hidden, example.label || example.id);
      button.addEventListener('click', () => searchExample(example));
      item.append(button);
      ui.examples.append(item);
    }
  }

  async function searchExample(example) {
    clearError();
    const label = example.label || example.id;
    const url = resolve(example.audio_url);
    let blob;
    try {
      if (!url) throw new Error('no sound');
      const response = await fetch(url);
      if (!response.ok) throw new Error(String(response.status));
      blob = await response.blob();
    } catch (e) {
      showError(`The example “${label}” could not be loaded. Check your connection and try ` +
                'again.', false);
      return;
    }
    const name = decodeURIComponent(url.split('/').pop() || 'example.wav');
    search(blob, name, `the example “${label}”`, 'audio');
  }

  ui.retry.addEventListener('click', () => {
    if (lastQuery) search(lastQuery.blob, lastQuery.name, lastQuery.what, lastQuery.kind);
  });

  // ---- where "Main site" leads: ear serve --home-url, through api/config ----

  async function loadConfig() {
    try {
      const response = await fetch('api/config');
      if (!response.ok) return; // an older service: ../ stays
      const config = await response.json();
      const home = config && config.home_url;
      // A path or an http(s) address only: never javascript: or the like.
      if (typeof home === 'string' && (/^https?:\/\//i.test(home) || /^\/(?!\/)/.test(home) ||
                                       home === '/'))
        ui.home.href = home;
    } catch (e) {
      // no config: the default link stays
    }
  }

  loadConfig();
  loadExamples();
})();
