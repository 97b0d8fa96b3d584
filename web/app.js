// Ear's page: record (MediaRecorder), upload or pick an example sound, POST it to
// api/search and show the frames found. Every URL is relative so that the page
// works at / and under /ear/; no inline script or style, as the service's
// Content-Security-Policy forbids them (element.style set from here is allowed).
'use strict';

(() => {
  // The service's own limits (ear serve --max-upload 50M, --max-seconds 60).
  const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
  const MAX_SECONDS = 60;
  // Shorter than this is almost surely a slip of the finger; the service's own
  // floor (0.1 s) would answer 422 anyway.
  const MIN_SECONDS = 1;
  const RESULTS = 8;
  // Recording formats by preference: Chromium records WebM/Opus, Firefox
  // Ogg/Opus, Safari MP4/AAC; the service finds the format from the bytes.
  const RECORDING_TYPES = [
    'audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/mp4;codecs=mp4a.40.2',
    'audio/mp4', 'audio/webm', 'audio/ogg',
  ];

  const $ = (id) => document.getElementById(id);
  const ui = {
    record: $('record'), recordText: $('record-text'), level: $('level'),
    levelFill: $('level-fill'), timer: $('timer'), file: $('file'), drop: $('drop'),
    examples: $('examples'), examplesPanel: $('examples-panel'), message: $('message'),
    messageText: $('message-text'), retry: $('retry'), status: $('status'),
    figure: $('query-figure'), wave: $('wave'), caption: $('query-caption'),
    playQuery: $('play-query'), summary: $('summary'), results: $('results'),
  };

  let recording = null;   // {recorder, stream, chunks, started, context, frame, ticker, type}
  let lastQuery = null;   // {blob, name, what}: what "Try again" sends again
  let searching = false;
  let player = null;      // {audio, button, idle}: the one sound playing
  let queryUrl = null;    // object URL of the query, for "Play it"
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

  // The service's JSON error in plain words; retry says whether trying the same
  // sound again may help.
  function describeFailure(status, answer) {
    const error = answer && answer.error ? answer.error : {};
    const detail = error.message ? ` (Ear said: ${error.message})` : '';
    if (status === 400 && error.code === 'undecodable_audio')
      return { text: 'Ear could not read that as a sound. Try a WAV, MP3, Ogg, WebM, FLAC ' +
                     `or M4A file.${detail}`, retry: false };
    if (status === 413)
      return { text: 'That sound is too large: Ear accepts at most 50 MB.', retry: false };
    if (status === 422)
      return { text: 'That sound is too short for Ear to search. Use at least a second of ' +
                     'sound.', retry: false };
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
    for (const button of ui.examples.querySelectorAll('button')) button.disabled = on;
    ui.results.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  async function search(blob, name, what) {
    if (searching) return;
    lastQuery = { blob, name, what };
    clearError();
    stopPlaying();
    setSearching(true);
    ui.status.textContent = `Searching with ${what}…`;
    showQuery(blob, what);
    const body = new FormData();
    body.append('audio', blob, name);
    let response;
    let answer = null;
    try {
      response = await fetch(`api/search?k=${RESULTS}`, { method: 'POST', body });
    } catch (e) {
      setSearching(false);
      ui.results.replaceChildren();
      ui.summary.textContent = 'No results: the search failed.';
      showError('Ear could not be reached: the network or the service is down. Check your ' +
                'connection and try again.', true);
      return;
    }
    try {
      answer = await response.json();
    } catch (e) {
      answer = null; // a proxy's HTML page, a cut connection: the status says enough
    }
    setSearching(false);
    if (!response.ok || !answer || !Array.isArray(answer.results)) {
      const failure = describeFailure(response.ok ? 500 : response.status, answer);
      showError(failure.text, failure.retry);
      // A sound that will never search needs no waveform; one to retry keeps it.
      if (!failure.retry) ui.figure.hidden = true;
      ui.results.replaceChildren();
      ui.summary.textContent = 'No results: the search failed.';
      return;
    }
    showResults(answer, what);
  }

  function showResults(answer, what) {
    ui.results.replaceChildren();
    const hits = answer.results;
    const query = answer.query || {};
    if (typeof query.duration_s === 'number')
      ui.caption.textContent = `${capitalise(what)}, ${query.duration_s.toFixed(1)} s` +
        (query.truncated ? ` (only the first ${MAX_SECONDS} s were searched)` : '');
    for (const hit of hits) ui.results.append(resultItem(hit));
    const timing = answer.timing_ms && typeof answer.timing_ms.total === 'number'
      ? ` in ${Math.round(answer.timing_ms.total)} ms` : '';
    ui.status.textContent = `Searched${timing}.`;
    if (hits.length === 0)
      ui.summary.textContent = `No frames match ${what}.`;
    else
      ui.summary.textContent = `${hits.length} frame${hits.length === 1 ? '' : 's'} match ` +
        `${what}. Best: ${hits[0].label} (score ${hits[0].score.toFixed(2)}).`;
  }

  function capitalise(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function resultItem(hit) {
    const item = document.createElement('li');
    item.className = 'hit';
    const frame = document.createElement('div');
    frame.className = 'frame';
    if (hit.frame_url) {
      const image = document.createElement('img');
      image.src = hit.frame_url;
      image.alt = `Frame: ${hit.label}`;
      image.decoding = 'async';
      image.addEventListener('error', () => frame.replaceChildren(noFrame('Frame not available')));
      frame.append(image);
    } else {
      frame.append(noFrame('No frame'));
    }
    const rank = document.createElement('span');
    rank.className = 'rank';
    rank.setAttribute('aria-hidden', 'true'); // the list's own numbering says it
    rank.textContent = `#${hit.rank}`;
    frame.append(rank);

    const label = document.createElement('p');
    label.className = 'label';
    label.textContent = hit.label || hit.id;

    const score = document.createElement('div');
    score.className = 'score';
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('div');
    fill.className = 'bar-fill';
    // Cosine similarity: 1 is the same direction; below 0 shows as empty.
    fill.style.width = `${Math.round(Math.max(0, Math.min(1, hit.score)) * 100)}%`;
    bar.append(fill);
    const number = document.createElement('span');
    number.className = 'score-text';
    number.textContent = `score ${hit.score.toFixed(2)}`;
    score.append(bar, number);

    item.append(frame, label, score);
    if (hit.audio_url) {
      const play = document.createElement('button');
      play.type = 'button';
      play.className = 'small play';
      play.textContent = 'Play sound';
      play.setAttribute('aria-label', `Play the sound of ${hit.label || hit.id}`);
      play.addEventListener('click', () => togglePlay(hit.audio_url, play, 'Play sound'));
      item.append(play);
    }
    return item;
  }

  function noFrame(text) {
    const box = document.createElement('span');
    box.className = 'no-frame';
    box.textContent = text;
    return box;
  }

  // ---- playing sounds: one at a time ----

  function stopPlaying() {
    if (!player) return;
    player.audio.pause();
    player.button.textContent = player.idle;
    player.button.removeAttribute('aria-pressed');
    player = null;
  }

  function togglePlay(url, button, idle) {
    const same = player && player.button === button;
    stopPlaying();
    if (same) return;
    const audio = new Audio(url);
    player = { audio, button, idle };
    button.textContent = 'Stop';
    button.setAttribute('aria-pressed', 'true');
    audio.addEventListener('ended', () => { if (player && player.audio === audio) stopPlaying(); });
    audio.play().catch(() => {
      if (player && player.audio === audio) stopPlaying();
      ui.status.textContent = 'That sound cannot be played in this browser.';
    });
  }

  ui.playQuery.addEventListener('click', () => {
    if (queryUrl) togglePlay(queryUrl, ui.playQuery, 'Play it');
  });

  // ---- the query's waveform ----

  function showQuery(blob, what) {
    if (queryUrl) URL.revokeObjectURL(queryUrl);
    queryUrl = URL.createObjectURL(blob);
    ui.caption.textContent = capitalise(what);
    ui.figure.hidden = false;
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
    if (ui.figure.hidden) return;
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
                    ticker: 0, type };
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
    ui.recordText.textContent = 'Stop';
    ui.status.textContent = 'Recording… press Stop to search.';
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

  function stopRecording() {
    const state = recording;
    if (!state) return;
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
    ui.levelFill.style.width = '0%';
    ui.level.setAttribute('aria-valuenow', '0');
    ui.status.textContent = '';
    const type = state.recorder.mimeType || state.type || 'audio/webm';
    const blob = new Blob(state.chunks, { type });
    if (elapsed < MIN_SECONDS || blob.size === 0) {
      showError(`That recording was too short (${elapsed.toFixed(1)} s). Record at least a ` +
                'second of sound, then press Stop.', false);
      return;
    }
    search(blob, `recording.${extensionOf(type)}`, 'your recording');
  }

  ui.record.addEventListener('click', () => {
    if (recording) stopRecording();
    else startRecording();
  });

  // ---- files: the picker and dropping ----

  function searchFile(file) {
    if (!file) return;
    clearError();
    if (file.size > MAX_UPLOAD_BYTES) {
      showError(`“${file.name}” is ${megabytes(file.size)}: Ear accepts at most 50 MB. ` +
                'Choose a shorter sound.', false);
      return;
    }
    if (file.size === 0) {
      showError(`“${file.name}” is empty. Choose a sound file.`, false);
      return;
    }
    search(file, file.name, `“${file.name}”`);
  }

  ui.file.addEventListener('change', () => {
    const file = ui.file.files[0];
    ui.file.value = ''; // so that choosing the same file again searches again
    searchFile(file);
  });

  // A file dropped anywhere but the zone would make the browser leave the page.
  for (const type of ['dragover', 'drop'])
    document.addEventListener(type, (event) => event.preventDefault());
  let dragDepth = 0;
  ui.drop.addEventListener('dragenter', () => {
    dragDepth++;
    ui.drop.classList.add('over');
  });
  ui.drop.addEventListener('dragleave', () => {
    if (--dragDepth <= 0) {
      dragDepth = 0;
      ui.drop.classList.remove('over');
    }
  });
  ui.drop.addEventListener('drop', (event) => {
    dragDepth = 0;
    ui.drop.classList.remove('over');
    const files = event.dataTransfer && event.dataTransfer.files;
    if (searching) return;
    if (!files || files.length === 0) {
      showError('Drop a sound file here (not a link or text).', false);
      return;
    }
    searchFile(files[0]);
  });

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
    let blob;
    try {
      const response = await fetch(example.audio_url);
      if (!response.ok) throw new Error(String(response.status));
      blob = await response.blob();
    } catch (e) {
      showError(`The example “${label}” could not be loaded. Check your connection and try ` +
                'again.', false);
      return;
    }
    const name = decodeURIComponent(example.audio_url.split('/').pop() || 'example');
    search(blob, name, `the example “${label}”`);
  }

  ui.retry.addEventListener('click', () => {
    if (lastQuery) search(lastQuery.blob, lastQuery.name, lastQuery.what);
  });

  loadExamples();
})();
