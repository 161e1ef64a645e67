"""fer-serve end to end: the server in a subprocess on a free port, driven over HTTP: every endpoint, problem
details for bad inputs, the token, cross-site refusals, the bounded queue (503 + Retry-After), a video job through
to its CSV and its deletion, several worker processes, the mounted page, and schemathesis against the OpenAPI."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import requests
from conftest import ROOT, run_cli
from PIL import Image

from fer.evaluation.scenes import write_clip
from fer_app.testing import free_port, running_server

TOKEN = "test-token-5d41"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: The main server's options: small limits and a tiny queue, so that the tests reach them.
OPTIONS = ("--token", TOKEN, "--concurrency", "1", "--queue", "1", "--video-queue", "1", "--max-bytes", "4000000",
           "--max-pixels", "20000000", "--max-video-s", "10", "--max-video-pixels", "200000")


@contextmanager
def running_service(*options: str, timeout: float = 180):
    """Yield ``(url, process, log)`` of ``python -m fer.serve`` with ``options`` on a free port, once /healthz
    answers; stopped with SIGTERM afterwards."""
    with running_server([sys.executable, "-m", "fer.serve", *options], "/healthz", timeout, ROOT, stop_s=30) as run:
        yield run


def log_text(log) -> str:
    log.flush()
    log.seek(0)
    return log.read()


@pytest.fixture(scope="module")
def server():
    with running_service(*OPTIONS) as (url, proc, log):
        yield url, proc, log


@pytest.fixture(scope="module")
def url(server) -> str:
    return server[0]


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def assert_problem(response: requests.Response, status: int, *words: str) -> dict:
    """The response is problem details (RFC 9457) with ``status`` and a detail naming every one of ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert {"type", "title", "status", "detail"} <= problem.keys() and problem["status"] == status
    assert all(w in problem["detail"] for w in words), problem["detail"]
    assert "Traceback" not in problem["detail"] and "/tmp/" not in problem["detail"]
    return problem


def assert_documented(url: str, answer, path: str, method: str = "get", status: str = "200") -> None:
    """``answer`` (a JSON document) matches the schema the server's own OpenAPI gives for it."""
    import jsonschema

    api = requests.get(f"{url}/openapi.json", headers=AUTH).json()
    schema = api["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": api["components"]}).validate(answer)


def test_health_and_model_card(url):
    assert requests.get(f"{url}/healthz").json() == {"status": "ok"}  # no token needed
    model = requests.get(f"{url}/v1/model", headers=AUTH).json()
    assert model["name"] == "fer2013_effnet_lite0.onnx" and len(model["classes"]) == 7
    assert model["card"]["arch"] == "tf_efficientnet_lite0" and "serving_score" in model["suite"]
    assert "YuNet" in model["detector"] and "accuracy" in model["description"]
    assert_documented(url, model, "/v1/model")


def test_the_token_is_required_on_everything_but_healthz(url, astronaut):
    photo = encoded(Image.fromarray(astronaut), "JPEG")
    for method, path in (("GET", "/v1/model"), ("GET", "/openapi.json"), ("GET", "/docs"), ("POST", "/v1/faces"),
                         ("GET", "/v1/videos/" + "0" * 32), ("DELETE", "/v1/videos/" + "0" * 32)):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = requests.request(method, url + path, headers=headers, data=photo if method == "POST" else None)
            assert_problem(response, 401, "Authorization: Bearer TOKEN")
            assert response.headers["www-authenticate"].startswith("Bearer" if path.startswith("/v1") else "Basic")
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()  # how a browser sends it on /docs and the page
    assert requests.get(f"{url}/docs", headers={"Authorization": f"Basic {basic}"}).status_code == 200
    assert requests.post(f"{url}/v1/faces", headers=AUTH, data=photo).status_code == 200


def test_a_photo_gives_the_faces_fer_load_gives(url, astronaut, tmp_path):
    import fer

    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    expected = [face.as_dict() for face in fer.load().analyze(path)]
    raw = requests.post(f"{url}/v1/faces", headers=AUTH, data=path.read_bytes())
    form = requests.post(f"{url}/v1/faces", headers=AUTH, files={"file": ("astronaut.png", path.read_bytes())})
    for response in (raw, form):
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        answer = response.json()
        assert (answer["width"], answer["height"]) == (512, 512) and len(answer["faces"]) == 1
        face, want = answer["faces"][0], expected[0]
        assert face["box"] == want["box"] and face["label"] == want["label"] == "happy"
        assert face["probabilities"] == pytest.approx(want["probabilities"], abs=1e-4)
        assert_documented(url, answer, "/v1/faces", "post")
    from skimage import data

    assert requests.post(f"{url}/v1/faces", headers=AUTH, data=encoded(Image.fromarray(data.coffee()), "PNG")
                         ).json()["faces"] == []


def odd_photos(astronaut: np.ndarray) -> dict[str, bytes]:
    photo = Image.fromarray(astronaut)
    return {"16-bit PNG": encoded(Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257), "PNG"),
            "CMYK JPEG": encoded(photo.convert("CMYK"), "JPEG"), "palette PNG": encoded(photo.convert("P"), "PNG"),
            "RGBA PNG": encoded(photo.convert("RGBA"), "PNG"), "WebP": encoded(photo, "WEBP")}


def test_odd_modes_are_converted_and_analysed(url, astronaut):
    for kind, data in odd_photos(astronaut).items():
        response = requests.post(f"{url}/v1/faces", headers=AUTH, data=data)
        assert response.status_code == 200, (kind, response.text)
        assert [f["label"] for f in response.json()["faces"]] == ["happy"], kind


BAD_PHOTOS = {  # name → (bytes, status, words of the detail)
    "corrupt.png": (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, 422, ("corrupt.png", "corrupt")),
    "notes.jpg": (b"just some text, renamed\n" * 10, 422, ("notes.jpg", "not an image")),
    "dot.png": (encoded(Image.new("RGB", (1, 1)), "PNG"), 422, ("dot.png", "1×1 is too small")),
    "cut.jpg": (encoded(Image.new("RGB", (640, 480), (90, 120, 200)), "JPEG")[:300], 422, ("cut.jpg", "truncated")),
    "wide.png": (encoded(Image.new("1", (12000, 12000)), "PNG"), 422, ("12000×12000", "--max-pixels")),
    "bomb.png": (encoded(Image.new("1", (20000, 20000)), "PNG"), 422, ("bomb.png", "too large to decode safely")),
    "empty.png": (b"", 400, ("carries no image",)),
}


@pytest.mark.parametrize("name", BAD_PHOTOS)
def test_bad_photos_get_problem_details_naming_the_problem(url, name):
    data, status, words = BAD_PHOTOS[name]
    files = {"file": (name, data)}
    assert_problem(requests.post(f"{url}/v1/faces", headers=AUTH, files=files), status, *words)


def test_oversized_and_misshapen_requests(url, server):
    too_big = os.urandom(4_100_000)
    problem = assert_problem(requests.post(f"{url}/v1/faces", headers=AUTH, data=too_big), 413, "4,000,000 bytes")
    assert problem["type"] == "urn:fer-serve:problem:too-large"
    chunked = (too_big[i:i + 65536] for i in range(0, len(too_big), 65536))  # no Content-Length: counted as it comes
    assert_problem(requests.post(f"{url}/v1/faces", headers=AUTH, data=chunked), 413, "--max-bytes")
    assert_problem(requests.post(f"{url}/v1/faces", headers=AUTH, files={"photo": ("a.png", b"x")}), 400,
                   "no file in a field named 'file'", "photo")
    assert_problem(requests.get(f"{url}/v1/nowhere", headers=AUTH), 404, "/v1/nowhere")
    response = requests.put(f"{url}/v1/videos/{'a' * 32}", headers=AUTH)
    assert_problem(response, 405, "PUT")
    assert set(response.headers["allow"].split(", ")) == {"GET", "DELETE"}
    assert_problem(requests.get(f"{url}/v1/videos/not-an-id", headers=AUTH), 422, "job_id")
    assert_problem(requests.get(f"{url}/v1/videos/{'a' * 32}/result?format=xml", headers=AUTH), 422, "format")
    assert server[1].poll() is None


def test_cross_site_writes_are_refused_whatever_the_host(url, astronaut):
    photo = encoded(Image.fromarray(astronaut), "JPEG")
    for host in (None, "abcd.gradio.live", "192.168.1.20:8000"):
        headers = {**AUTH, "Origin": "https://evil.example", **({"Host": host} if host else {})}
        for method, path in (("POST", "/v1/faces"), ("POST", "/v1/videos"), ("DELETE", f"/v1/videos/{'a' * 32}")):
            response = requests.request(method, url + path, headers=headers, data=photo)
            assert_problem(response, 403, "https://evil.example", "--allow-origin")
    own = url.removeprefix("http://")
    assert requests.post(f"{url}/v1/faces", headers={**AUTH, "Origin": f"http://{own}"}, data=photo).status_code == 200
    assert requests.get(f"{url}/v1/model", headers={**AUTH, "Origin": "https://evil.example"}).status_code == 200


def test_a_full_queue_answers_503_with_retry_after_and_recovers(url, astronaut):
    big = encoded(Image.fromarray(astronaut).resize((4000, 4000)), "JPEG", quality=80)  # ~0.3 s each
    start, answers = threading.Barrier(8), []

    def client():
        start.wait()
        answers.append(requests.post(f"{url}/v1/faces", headers=AUTH, data=big, timeout=120))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) == {200, 503} and statuses.count(200) >= 2, statuses  # --concurrency 1 --queue 1
    for response in answers:
        if response.status_code == 503:
            problem = assert_problem(response, 503, "--queue")
            assert problem["type"] == "urn:fer-serve:problem:queue-full" and int(response.headers["retry-after"]) >= 1
    assert requests.post(f"{url}/v1/faces", headers=AUTH, data=big).status_code == 200


def wait_for_job(url: str, job_id: str, timeout: float = 120) -> list[dict]:
    """The job's status documents, polled until it has finished."""
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        seen.append(requests.get(f"{url}/v1/videos/{job_id}", headers=AUTH).json())
        if seen[-1]["status"] in ("done", "failed"):
            return seen
        time.sleep(0.1)
    raise TimeoutError(f"job {job_id} still {seen[-1]['status']} after {timeout} s")


def test_a_video_job_to_its_csv_then_deleted(url, tmp_path):
    clip = write_clip(tmp_path / "scene.mp4", 320, 240, 30, 10)
    response = requests.post(f"{url}/v1/videos", headers=AUTH, files={"file": ("scene.mp4", clip.read_bytes())})
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/videos/{job['id']}" and job["status"] in ("queued", "running")
    assert_documented(url, job, "/v1/videos", "post", "202")
    statuses = wait_for_job(url, job["id"])
    done = statuses[-1]
    for status in statuses:
        assert_documented(url, status, "/v1/videos/{job_id}")
    assert done["status"] == "done" and done["progress"] == 1.0 and done["frames_read"] == 30
    assert done["video"]["complete"] and len(done["video"]["face_ids"]) == 3 and done["name"] == "scene.mp4"
    progress = [s["progress"] for s in statuses if s["progress"] is not None]
    assert progress == sorted(progress)
    csv_answer = requests.get(url + done["results"]["csv"], headers=AUTH)
    assert csv_answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_answer.text)))
    assert {int(r["frame"]) for r in rows} == set(range(12)) | set(range(18, 30))  # the clip's cut has no face
    assert rows[0]["label"] == "happy" and float(rows[0]["happy"]) > 0.5 and rows[0]["right_eye_x"]
    document = requests.get(url + done["results"]["json"], headers=AUTH).json()
    assert len(document["rows"]) == len(rows) and document["columns"] == list(rows[0].keys())
    assert document["rows"][0]["face_id"] == int(rows[0]["face_id"])
    assert_documented(url, document, "/v1/videos/{job_id}/result")
    assert requests.delete(f"{url}/v1/videos/{job['id']}", headers=AUTH).status_code == 204
    assert_problem(requests.get(f"{url}/v1/videos/{job['id']}", headers=AUTH), 404, job["id"])
    assert_problem(requests.get(url + done["results"]["csv"], headers=AUTH), 404, job["id"])
    assert_problem(requests.delete(f"{url}/v1/videos/{job['id']}", headers=AUTH), 404, job["id"])


def test_videos_over_the_limits_or_unreadable_are_refused_before_any_work(url, tmp_path):
    long = write_clip(tmp_path / "long.mp4", 320, 240, 120, 10)  # 12 s; the server takes 10
    large = write_clip(tmp_path / "large.avi", 640, 480, 3, 10)  # 307,200 pixels; the server takes 200,000
    for path, words in ((long, ("long.mp4 is 12.0 s long", "--max-video-s")),
                        (large, ("large.avi is 640×480", "--max-video-pixels"))):
        response = requests.post(f"{url}/v1/videos", headers=AUTH, files={"file": (path.name, path.read_bytes())})
        assert assert_problem(response, 422, *words)["type"] == "urn:fer-serve:problem:video-over-limits"
    for name, data in (("notes.mp4", b"not a video\n" * 100), ("cut.mp4", long.read_bytes()[:2000])):
        response = requests.post(f"{url}/v1/videos", headers=AUTH, files={"file": (name, data)})
        assert assert_problem(response, 422, name)["type"] == "urn:fer-serve:problem:video-unreadable"
    assert_problem(requests.post(f"{url}/v1/videos", headers=AUTH), 400, "carries no video")


def test_huge_frames_are_refused_from_their_headers_without_the_memory(url, server, tmp_path):
    """A 9000×9000 16-bit PNG (0.16 MB) and a 1.6 MB MJPEG video whose frame is 8000×8000 are refused from what
    their headers say, before anything is decoded: the server's memory hardly moves (decoding either would take
    0.5 to 0.7 GB)."""
    import cv2
    import psutil

    png = encoded(Image.new("I;16", (9000, 9000)), "PNG")
    avi = tmp_path / "huge.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10, (8000, 8000))
    writer.write(np.zeros((8000, 8000, 3), np.uint8))
    writer.release()
    process, peak, done = psutil.Process(server[1].pid), [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    before = process.memory_info().rss
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        photo = requests.post(f"{url}/v1/faces", headers=AUTH, files={"file": ("deep.png", png)})
        video = requests.post(f"{url}/v1/videos", headers=AUTH, files={"file": ("huge.avi", avi.read_bytes())})
    finally:
        done.set()
        watcher.join()
    assert_problem(photo, 422, "deep.png is 9000×9000", "--max-pixels")
    assert_problem(video, 422, "huge.avi is 8000×8000", "--max-video-pixels")
    assert (peak[0] - before) / 2**20 < 100


def test_a_running_job_is_deleted_and_the_video_queue_is_bounded(url, tmp_path):
    clip = write_clip(tmp_path / "slow.mp4", 320, 240, 99, 10)  # 9.9 s of video
    first = requests.post(f"{url}/v1/videos", headers=AUTH, data=clip.read_bytes()).json()
    busy = requests.post(f"{url}/v1/videos", headers=AUTH, data=clip.read_bytes())  # --video-queue 1
    assert assert_problem(busy, 503, "--video-queue")["type"] == "urn:fer-serve:problem:queue-full"
    assert int(busy.headers["retry-after"]) >= 1
    deadline = time.time() + 60
    while requests.get(f"{url}/v1/videos/{first['id']}", headers=AUTH).json()["status"] != "running":
        assert time.time() < deadline
        time.sleep(0.05)
    assert requests.delete(f"{url}/v1/videos/{first['id']}", headers=AUTH).status_code == 204
    assert_problem(requests.get(f"{url}/v1/videos/{first['id']}", headers=AUTH), 404, first["id"])
    deadline = time.time() + 10  # the run notices within half a second and frees its place
    while (again := requests.post(f"{url}/v1/videos", headers=AUTH, data=clip.read_bytes())).status_code == 503:
        assert time.time() < deadline, "the deleted job kept its place in the queue"
        time.sleep(0.2)
    assert again.status_code == 202
    assert wait_for_job(url, again.json()["id"])[-1]["status"] == "done"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path):
    """Schemathesis (a client no one here wrote) against the server's own OpenAPI: every check but
    positive_data_acceptance, which would need a schema to say "a decodable image" (random bytes are schema-valid
    and rightly get 422). With the token, it also tries requests without it (ignored_auth). The server's queues
    are the defaults but for videos: schemathesis counts a deliberate 503 as a server error, and the images it
    posts as videos are accepted (a still image is a one-frame video) faster than they finish."""
    with running_service("--token", TOKEN, "--video-queue", "64") as (url, proc, log):
        result = subprocess.run([sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
                                 "--header", f"Authorization: Bearer {TOKEN}", "--checks", "all",
                                 "--exclude-checks", "positive_data_acceptance", "--max-examples", "25",
                                 "--workers", "1", "--seed", "33", "--generation-database", "none", "--no-color"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        assert proc.poll() is None and "Traceback" not in log_text(log)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert re.search(r"\d+ generated, \d+ passed", result.stdout), result.stdout[-2000:]


def test_several_workers_share_the_video_jobs(tmp_path, astronaut):
    clip = write_clip(tmp_path / "scene.mp4", 320, 240, 30, 10)
    with running_service("--workers", "2", "--token", TOKEN) as (url, _, _):
        photo = encoded(Image.fromarray(astronaut), "PNG")
        assert all(requests.post(f"{url}/v1/faces", headers=AUTH, data=photo).json()["faces"] for _ in range(4))
        job = requests.post(f"{url}/v1/videos", headers=AUTH, data=clip.read_bytes()).json()
        statuses = wait_for_job(url, job["id"])  # polled on new connections: either process answers
        assert statuses[-1]["status"] == "done"
        rows = list(csv.DictReader(io.StringIO(requests.get(url + statuses[-1]["results"]["csv"], headers=AUTH).text)))
        assert len(rows) == 12 + 12 * 2


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_a_running_job_and_removes_the_temporary_files(tmp_path, workers):
    clip = write_clip(tmp_path / "long.mp4", 320, 240, 299, 10)  # 29.9 s: several seconds of work
    with running_service("--workers", workers, "--token", TOKEN) as (url, proc, log):
        temp = Path(re.search(r"temporary files: (\S+)", log_text(log)).group(1))
        job = requests.post(f"{url}/v1/videos", headers=AUTH, data=clip.read_bytes()).json()
        while requests.get(f"{url}/v1/videos/{job['id']}", headers=AUTH).json()["frames_read"] < 10:
            time.sleep(0.05)
        assert (temp / "jobs" / job["id"]).is_dir()
        start = time.monotonic()
        proc.terminate()  # SIGTERM, as a service manager stops it: the running job stops too
        proc.wait(timeout=30)
        assert time.monotonic() - start < 5 and "Traceback" not in log_text(log)
    assert not temp.exists()


def test_the_page_is_mounted_on_the_same_server_behind_the_token(astronaut, tmp_path):
    from gradio_client import Client, handle_file

    basic = {"Authorization": "Basic " + base64.b64encode(f"viewer:{TOKEN}".encode()).decode()}
    with running_service("--ui", "--token", TOKEN) as (url, _, _):
        assert requests.get(f"{url}/", headers=basic, allow_redirects=False).headers["location"] == "/ui/"
        assert_problem(requests.get(f"{url}/ui/"), 401, "the token as the password")
        page = requests.get(f"{url}/ui/", headers=basic)
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert requests.get(f"{url}/ui/fer-live/yunet.onnx", headers=basic).status_code == 200  # the live view's files
        evil = {**basic, "Origin": "https://evil.example", "Host": "abcd.gradio.live"}
        assert_problem(requests.post(f"{url}/ui/gradio_api/queue/join", headers=evil, json={}), 403, "evil.example")
        photo = encoded(Image.fromarray(astronaut), "JPEG")
        assert requests.post(f"{url}/v1/faces", headers=AUTH, data=photo).json()["faces"]
        (tmp_path / "a.jpg").write_bytes(photo)  # the page's own Upload tab, through Gradio's queue
        _, status, faces, *_ = Client(f"{url}/ui/", headers=basic, verbose=False).predict(
            handle_file(str(tmp_path / "a.jpg")), api_name="/analyze")
        assert status == "Found 1 face." and faces[0]["label"] == "happy"


@pytest.mark.parametrize("options, message", [
    (["--ui", "--workers", "2"], "--ui needs --workers 1"),
    (["--token", " "], "--token: the token is empty"),
    (["--queue", "-1"], "--queue -1: must be 0 or more"),
    (["--max-bytes", "0"], "0: must be above 0"),
    (["--model", "missing.onnx"], "missing.onnx: not found"),
])
def test_bad_options_stop_with_a_message(options, message):
    result = run_cli("-m", "fer.serve", "--port", str(free_port()), *options, check=False, timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
