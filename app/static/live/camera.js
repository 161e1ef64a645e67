// The viewer's camera: open it (front or back, any orientation), follow its frames, close it.

/** Why the camera cannot be used here, or '' when it can. @returns {string} */
export function cameraUnavailable() {
  if (typeof window !== 'undefined' && !window.isSecureContext) {
    return 'The camera needs a secure page: open the app on http://localhost, through --share (HTTPS) or behind HTTPS.';
  }
  if (!navigator.mediaDevices?.getUserMedia) return 'This browser gives pages no access to a camera.';
  return '';
}

/** Start the camera into `video`: `facing` is 'user' (front) or 'environment' (back); the browser picks
 * the orientation (portrait on an upright phone). @param {HTMLVideoElement} video @param {string} facing
 * @returns {Promise<MediaStream>} */
export async function openCamera(video, facing) {
  closeCamera(video);
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    // at most 640 a side: enough for faces, cheap to process; the camera's own shape (portrait on a phone)
    video: { facingMode: { ideal: facing }, width: { max: 640 }, height: { max: 640 }, frameRate: { ideal: 30 } },
  });
  video.srcObject = stream;
  video.muted = true;
  video.playsInline = true;
  await video.play();
  return stream;
}

/** Stop the camera feeding `video`, if any. @param {HTMLVideoElement} video */
export function closeCamera(video) {
  const stream = video.srcObject;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  video.srcObject = null;
}

/** A short message for a getUserMedia failure. @param {Error} error @returns {string} */
export function cameraError(error) {
  const reasons = {
    NotAllowedError: 'Camera access was refused; allow it in the browser and press Start again.',
    NotFoundError: 'No camera was found.',
    NotReadableError: 'The camera is in use by another program.',
    OverconstrainedError: 'This camera cannot give the requested picture.',
  };
  return reasons[error?.name] || `The camera could not start (${error?.message || error}).`;
}

/** Call `callback(captureTime)` once for each new camera frame shown in `video` (requestVideoFrameCallback,
 * else polling with requestAnimationFrame). `captureTime` is the frame's capture time on the page's clock
 * (performance.now()), when the browser tells it, else the time it was handed over for display.
 * @param {HTMLVideoElement} video @param {(captureTime: number) => void} callback @returns {() => void} stop */
export function onFrames(video, callback) {
  let stopped = false;
  if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
    let handle = 0;
    const next = (now, meta) => {
      if (stopped) return;
      callback(meta.captureTime ?? meta.presentationTime ?? now);
      handle = video.requestVideoFrameCallback(next);
    };
    handle = video.requestVideoFrameCallback(next);
    return () => { stopped = true; video.cancelVideoFrameCallback(handle); };
  }
  let last = -1;
  const poll = (now) => {
    if (stopped) return;
    if (video.currentTime !== last) { last = video.currentTime; callback(now); }
    requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
  return () => { stopped = true; };
}
