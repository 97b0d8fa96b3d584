// Placeholder page logic: upload or record a sound, POST it to api/search
// (relative, so the page works at / and under /ear/), list the frames found.
'use strict';

const form = document.getElementById('search');
const statusLine = document.getElementById('status');
const results = document.getElementById('results');
const recordButton = document.getElementById('record');
let recorded = null;

async function search(blob, name) {
  const body = new FormData();
  body.append('audio', blob, name);
  statusLine.textContent = 'Searching…';
  results.replaceChildren();
  const response = await fetch('api/search?k=8', { method: 'POST', body });
  const answer = await response.json();
  if (!response.ok) {
    statusLine.textContent = answer.error ? answer.error.message : response.statusText;
    return;
  }
  statusLine.textContent = `${answer.results.length} results in ${answer.timing_ms.total.toFixed(0)} ms`;
  for (const hit of answer.results) {
    const item = document.createElement('li');
    if (hit.frame_url) {
      const image = document.createElement('img');
      image.src = hit.frame_url;
      image.alt = hit.label;
      item.append(image);
    }
    const caption = document.createElement('span');
    caption.textContent = `${hit.label} (${hit.score.toFixed(3)})`;
    item.append(caption);
    results.append(item);
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const file = document.getElementById('audio').files[0];
  if (file) search(file, file.name);
  else if (recorded) search(recorded, 'recording.webm');
  else statusLine.textContent = 'Choose or record a sound first.';
});

recordButton.addEventListener('click', async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = () => {
    stream.getTracks().forEach((track) => track.stop());
    recorded = new Blob(chunks, { type: recorder.mimeType });
    search(recorded, 'recording.webm');
  };
  recorder.start();
  statusLine.textContent = 'Recording for 5 s…';
  setTimeout(() => recorder.stop(), 5000);
});
