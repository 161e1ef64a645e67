// The static site's page (fer-web build): the live view (<fer-camera>), photo analysis in the page, the
// service worker that keeps every file for offline use (sw.js), and the install button. Settings for measuring
// come from the address: ?threads=N (WebAssembly threads; needs the service worker's cross-origin isolation),
// ?display=computed|latest.

const params = new URLSearchParams(location.search);
const camera = document.querySelector('fer-camera');
for (const name of ['threads', 'display']) if (params.has(name)) camera.setAttribute(name, params.get(name));

/** Keep every file of the site for offline use (and send the headers that allow WebAssembly threads). */
async function registerServiceWorker() {
  const note = document.querySelector('.site-offline');
  if (!('serviceWorker' in navigator)) { note.textContent = 'This browser cannot keep the site for offline use.'; return; }
  try {
    await navigator.serviceWorker.register('./sw.js');
    await navigator.serviceWorker.ready;
    note.textContent = 'Works offline: every file is kept on this device.';
    document.documentElement.dataset.offlineReady = 'true';
  } catch (e) {
    note.textContent = `Not kept for offline use (${e?.message || e}).`;
  }
}

/** The browser's own install prompt, behind a button (Chromium; other browsers: "Add to Home Screen"). */
function offerInstall() {
  const button = document.querySelector('.site-install');
  let prompt = null;
  addEventListener('beforeinstallprompt', (e) => { e.preventDefault(); prompt = e; button.hidden = false; });
  button.addEventListener('click', async () => { button.hidden = true; await prompt?.prompt(); prompt = null; });
}

registerServiceWorker();
offerInstall();
await import('./live/element.js');  // after the attributes above: <fer-camera> starts now
const view = await camera.ready;
document.querySelector('.site-model').textContent = view.modelName;
const { startPhotoPanel } = await import('./live/photo.js');
window.ferPhoto = startPhotoPanel(document.querySelector('#photo'), view);
