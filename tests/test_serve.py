"""The online scoring service: parity with ``pipeline score``, restarts, bad input, state, replay,
and its typed API (``/openapi.json`` from the encoder's schema, held to it by schemathesis)."""
import concurrent.futures
import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run, simulated_compare

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

from pipelines.scoring.online import OnlineScorer, _plain  # noqa: E402
from pipelines.scoring.serve import create_app  # noqa: E402
from pipelines.scoring.state_store import RedisStore, SQLiteStore  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return simulated_compare(tmp_path_factory.mktemp("serve"), 40, 14, 4)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory):
    """Models whose encoder reads a window of stored events per request (``causal = false``)."""
    d = tmp_path_factory.mktemp("serve_windowed")
    (d / "windowed.toml").write_text("causal = false\n")
    return simulated_compare(d, 60, 21, 3, options=("--config", d / "windowed.toml"))


def records(d, n=None):
    frame = pd.read_parquet(d / "events.parquet").sort_values("ts", kind="stable")
    frame = frame.head(n) if n else frame
    return json.loads(json.dumps([{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]))


def batch_scores(d, model, tmp_path):
    m = d / "report" / "models"
    out = tmp_path / f"{model}.parquet"
    assert run("pipeline", "score", "--encoder", m / "encoder", "--classifier", m / model, d / "events.parquet",
               "--out", out).exit_code == 0
    s = pd.read_parquet(out)
    s["ts"] = pd.to_datetime(s["ts"], utc=True)
    return s.sort_values(["account", "ts"], kind="stable").reset_index(drop=True)


def online_frame(results):
    o = pd.DataFrame(results).rename(columns={"id": "account"})
    o["ts"] = pd.to_datetime(o["time"], utc=True, format="ISO8601")
    return o.sort_values(["account", "ts"], kind="stable").reset_index(drop=True)


def client(d, state, model="hybrid", **kw):
    m = d / "report" / "models"
    return TestClient(create_app(OnlineScorer(m / "encoder", m / model, state, **kw)))


@pytest.mark.parametrize("model", ["hybrid", "latent"])
def test_replay_event_by_event_equals_the_batch_job(models, tmp_path, model):
    """The first 250 events in time order (a prefix: no later event changes their scores), one per
    request, every third as a one-event batch, against ``pipeline score`` on the whole table."""
    replay_equals_batch(models, tmp_path, model)


def test_a_windowed_encoder_replays_to_the_batch_scores_too(windowed, tmp_path):
    """The whole table (about 2000 events, in batches of 37 straight to the scorer): with codes
    computed in float32 the two paths differed by about 1e-7 here, and scores by up to 0.01."""
    m = windowed / "report" / "models"
    assert json.loads((m / "encoder" / "manifest.json").read_text())["model_config"]["causal"] is False
    scorer = OnlineScorer(m / "encoder", m / "hybrid", tmp_path / "state.sqlite")
    recs = records(windowed)
    online = online_frame([r for i in range(0, len(recs), 37) for r in scorer.score(recs[i:i + 37])])
    batch = online[["account", "ts"]].merge(batch_scores(windowed, "hybrid", tmp_path), on=["account", "ts"], how="left")
    assert len(online) == len(recs) > 1500 and batch["score"].notna().all()
    np.testing.assert_allclose(online["score"], batch["score"], atol=1e-5)


def replay_equals_batch(models, tmp_path, model):
    c = client(models, tmp_path / "state.sqlite", model)
    results = []
    recs = records(models, 250)
    for i, rec in enumerate(recs):
        r = c.post("/score", json=rec) if i % 3 else c.post("/score", json=[rec])  # single and batch forms
        assert r.status_code == 200, r.text
        results += [r.json()] if i % 3 else r.json()["results"]
    online = online_frame(results)
    batch = online[["account", "ts"]].merge(batch_scores(models, model, tmp_path), on=["account", "ts"], how="left")
    assert len(online) == len(recs) and batch["score"].notna().all()
    np.testing.assert_allclose(online["score"], batch["score"], atol=1e-5)
    assert (online["decision"].to_numpy() == batch["decision"].to_numpy()).all()
    assert online.groupby("account").size().max() >= 5  # entities with a history, not only first events


def test_worker_processes_score_as_one_process_does_with_entity_order_and_retries_kept(models, tmp_path):
    """Two scoring processes sharing the store and the entity locks: concurrent single-event
    requests (each entity's events sent in order by one client thread, eight threads at once) give
    the batch job's scores; a retry taken by either worker is answered from the store; bad input
    is the same one-line 400."""
    from pipelines.scoring.workers import ScoringPool
    m = models / "report" / "models"
    state = tmp_path / "state.sqlite"
    pool = ScoringPool(m / "encoder", m / "hybrid", state, workers=2)
    try:
        c = TestClient(create_app(OnlineScorer(m / "encoder", m / "hybrid", state), pool=pool))
        recs = records(models, 400)
        by_entity: dict = {}
        for r in recs:
            by_entity.setdefault(r["account"], []).append(r)

        def send(events):
            out = []
            for r in events:
                answer = c.post("/score", json=r)
                assert answer.status_code == 200, answer.text
                out.append(answer.json())
            return out
        with concurrent.futures.ThreadPoolExecutor(8) as threads:
            results = [r for rs in threads.map(send, by_entity.values()) for r in rs]
        assert len(pool.pids()) == 2 and os.getpid() not in pool.pids()  # scored elsewhere
        online = online_frame(results)
        batch = online[["account", "ts"]].merge(batch_scores(models, "hybrid", tmp_path), on=["account", "ts"],
                                                 how="left")
        assert len(online) == len(recs) and batch["score"].notna().all()
        np.testing.assert_allclose(online["score"], batch["score"], atol=1e-5)
        before = state_digest(SQLiteStore(state))
        again = [c.post("/score", json=recs[-1]).json() for _ in range(4)]  # retries, whichever worker takes them
        first = [r for r in results if (r["id"], r["time"]) == (recs[-1]["account"], recs[-1]["ts"])]
        assert len(first) == 1 and all(a["duplicate"] and a["score"] == first[0]["score"] for a in again)
        bad = c.post("/score", json=recs[0] | {"amount": "lots"})
        assert bad.status_code == 400 and "column 'amount' must be a number" in bad.json()["error"]
        assert state_digest(SQLiteStore(state)) == before
    finally:
        pool.close()


def test_a_dead_worker_is_a_503_and_the_others_go_on(models, tmp_path):
    import signal
    from pipelines.scoring.workers import ScoringPool
    m = models / "report" / "models"
    pool = ScoringPool(m / "encoder", m / "hybrid", tmp_path / "state.sqlite", workers=2)
    try:
        c = TestClient(create_app(OnlineScorer(m / "encoder", m / "hybrid", tmp_path / "state.sqlite"), pool=pool))
        recs = records(models, 12)
        os.kill(pool.pids()[0], signal.SIGKILL)
        pool.processes[0].join(10)
        statuses = [c.post("/score", json=r).status_code for r in recs[:4]]
        assert statuses.count(503) == 1 and statuses.count(200) == 3  # the dead one's request only
        os.kill(pool.pids()[1], signal.SIGKILL)
        pool.processes[1].join(10)
        answers = [c.post("/score", json=r) for r in recs[4:6]]  # none left: refused, never a hang
        assert [a.status_code for a in answers] == [503, 503] and "worker" in answers[1].json()["error"]
    finally:
        pool.close()


def test_a_restart_mid_replay_continues_with_the_same_scores(models, tmp_path):
    recs = records(models)
    half = len(recs) // 2
    first = client(models, tmp_path / "state.sqlite").post("/score", json={"events": recs[:half]}).json()["results"]
    second = client(models, tmp_path / "state.sqlite").post("/score", json={"events": recs[half:]}).json()["results"]
    whole = client(models, tmp_path / "other.sqlite").post("/score", json=recs).json()["results"]
    assert [r["score"] for r in first + second] == [r["score"] for r in whole]


def test_bad_requests_are_one_line_4xx_and_change_no_state(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite", max_batch=50)
    recs = records(models, 30)
    assert c.post("/score", json=recs[:20]).status_code == 200
    scorer_store = SQLiteStore(tmp_path / "state.sqlite")
    before = state_digest(scorer_store)
    missing = {k: v for k, v in recs[20].items() if k != "amount"}
    cases = [
        (c.post("/score", content=b"{not json"), 400, "malformed JSON"),
        (c.post("/score", json=missing), 400, "lacks column 'amount'"),
        (c.post("/score", json=recs[20] | {"amount": "lots"}), 400, "column 'amount' must be a number"),
        (c.post("/score", json=recs[20] | {"ts": "yesterday-ish"}), 400, "cannot parse 'yesterday-ish'"),
        (c.post("/score", json=recs[:1] * 51), 413, "more than the limit of 50"),
        (c.post("/score", json=[recs[20], recs[0] | {"amount": 1.5}]), 409, "earlier than the entity's latest"),  # old now
        (c.post("/score", json=[]), 400, "non-empty list"),
    ]
    for r, status, text in cases:
        assert r.status_code == status and text in r.json()["error"], (status, r.text)
        assert "\n" not in r.json()["error"]
    assert state_digest(scorer_store) == before  # no rejected request wrote anything
    assert c.post("/score", json=recs[20]).status_code == 200  # and the service still serves


def test_a_retried_event_gets_its_stored_answer_and_changes_no_state(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite")
    recs = records(models, 12)
    first = c.post("/score", json=recs[:10]).json()["results"]
    store = SQLiteStore(tmp_path / "state.sqlite")
    before = state_digest(store)
    again = c.post("/score", json=recs[5]).json()  # a client retry
    assert again == first[5] | {"duplicate": True} and state_digest(store) == before
    batch = c.post("/score", json=[recs[3], recs[10], recs[10]]).json()["results"]
    assert batch[0] == first[3] | {"duplicate": True} and batch[2] == batch[1] | {"duplicate": True}
    assert "duplicate" not in batch[1]
    events = c.get(f"/entities/{recs[10]['account']}").json()["events"]
    mine = sum(r["account"] == recs[10]["account"] for r in recs[:11])
    assert events == mine  # scored once, though sent twice
    fresh = client(models, tmp_path / "other.sqlite")  # the same answers as a run without retries
    assert [r["score"] for r in fresh.post("/score", json=recs[:11]).json()["results"]] == \
        [r["score"] for r in first] + [batch[1]["score"]]


def test_an_event_id_column_names_the_retry(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite", event_id="ts")
    rec = records(models, 1)[0]
    answer = c.post("/score", json=rec).json()
    assert c.post("/score", json=rec | {"amount": 99.0}).json() == answer | {"duplicate": True}  # same id: a retry
    r = c.post("/score", json={k: v for k, v in rec.items() if k != "ts"} | {"ts": None})
    assert r.status_code == 400


def test_requests_that_cannot_be_events_are_refused_and_poison_nothing(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite")
    recs = [r for r in records(models, 60) if r["account"] == records(models, 1)[0]["account"]]
    assert c.post("/score", json=recs[0]).status_code == 200
    store = SQLiteStore(tmp_path / "state.sqlite")
    before = state_digest(store)
    millis = int(pd.Timestamp(recs[1]["ts"]).timestamp() * 1000)
    deep = b"[" * 100000 + b"]" * 100000
    cases = [
        (c.post("/score", json=recs[1] | {"ts": millis}), "holds numbers, but held timestamps in training"),
        (c.post("/score", content=json.dumps(recs[1]).replace('"amount": ', '"amount": 1' + "0" * 400 + ", \"x\": ")
                .encode()), "too large for a float"),
        (c.post("/score", content=json.dumps(recs[1]).replace('"amount": ', '"amount": ' + "9" * 5000 + ", \"x\": ")
                .encode()), "malformed JSON"),
        (c.post("/score", content=deep), "malformed JSON"),
        (c.post("/score", json=recs[1] | {"merchant": "m" * (10 << 20)}), "characters, more than 256"),
        (c.post("/score", json=recs[1] | {"amount": 1e300}), "beyond the range the model computes in"),
    ]
    for r, text in cases:
        assert r.status_code == 400 and text in r.json()["error"], r.text[:300]
    assert state_digest(store) == before
    assert c.post("/score", json=recs[1]).status_code == 200  # the account is not locked out


def test_new_entity_health_and_entity_state(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite")
    rec = records(models, 1)[0] | {"account": "brand-new"}
    assert c.get("/entities/brand-new").status_code == 404
    r = c.post("/score", json=rec)
    assert r.status_code == 200 and 0 <= r.json()["score"] <= 1 and r.json()["encoder_id"] and r.json()["classifier_id"]
    e = c.get("/entities/brand-new").json()
    assert e["events"] == 1 and e["age_s"] >= 0
    h = c.get("/health").json()
    assert h["status"] == "ok" and h["entities"] == 1


def test_allow_late_accepts_an_earlier_event(models, tmp_path):
    recs = records(models, 40)
    same = [r for r in recs if r["account"] == recs[0]["account"]]
    assert len(same) >= 2
    c = client(models, tmp_path / "state.sqlite", allow_late=True)
    assert c.post("/score", json=same[1]).status_code == 200
    assert c.post("/score", json=same[0]).status_code == 200


def test_idle_entities_expire(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite", ttl=0.5)
    rec = records(models, 1)[0]
    c.post("/score", json=rec)
    assert c.get(f"/entities/{rec['account']}").status_code == 200
    time.sleep(0.8)
    assert c.get(f"/entities/{rec['account']}").status_code == 404


@pytest.fixture
def redis_url(tmp_path):
    """A real redis-server (Debian's package, which scripts/setup.sh installs) on a free port,
    appending every write to its log before answering, as a production store would."""
    import shutil
    import subprocess

    import redis
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed: scripts/setup.sh installs it (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        for _ in range(100):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_real_redis_store_keeps_state_like_sqlite(models, tmp_path, redis_url):
    recs = records(models, 25)
    red = client(models, redis_url).post("/score", json=recs).json()["results"]
    sql = client(models, tmp_path / "state.sqlite").post("/score", json=recs).json()["results"]
    assert [r["score"] for r in red] == [r["score"] for r in sql]
    assert RedisStore(redis_url).count() == len({r["account"] for r in recs})
    assert client(models, redis_url).post("/score", json=recs[3]).json()["duplicate"]  # answers persist too


def test_the_fake_redis_beside_the_real_one_behaves_alike(models, tmp_path, monkeypatch):
    fakeredis = pytest.importorskip("fakeredis")
    import redis
    server = fakeredis.FakeServer()
    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(lambda url: fakeredis.FakeRedis(server=server)))
    recs = records(models, 25)
    red = client(models, "redis://localhost:6379/0").post("/score", json=recs).json()["results"]
    sql = client(models, tmp_path / "state.sqlite").post("/score", json=recs).json()["results"]
    assert [r["score"] for r in red] == [r["score"] for r in sql]


def test_a_service_killed_mid_stream_loses_no_committed_event_in_redis(models, tmp_path, redis_url):
    import subprocess
    import sys

    import httpx
    m = models / "report" / "models"
    recs = records(models, 40)

    def start(*options):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "pipelines", "pipeline", "serve", "--encoder", str(m / "encoder"),
                                 "--classifier", str(m / "hybrid"), "--state", redis_url, "--port", str(port), *options],
                                stderr=subprocess.DEVNULL)
        for _ in range(600):
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                return proc, f"http://127.0.0.1:{port}"
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the service did not start")

    proc, url = start()
    answers = [httpx.post(f"{url}/score", json=r, timeout=30).json() for r in recs[:20]]
    proc.kill()  # kill -9, between two requests
    proc.wait(10)
    proc, url = start("--workers", "2")  # the rest on two scoring processes
    workers = children(proc.pid)
    try:
        answers += [httpx.post(f"{url}/score", json=r, timeout=30).json() for r in recs[20:]]
    finally:
        proc.kill()
        proc.wait(10)
    whole = client(models, tmp_path / "state.sqlite").post("/score", json=recs).json()["results"]
    assert [a["score"] for a in answers] == [r["score"] for r in whole]
    assert len(workers) >= 2  # the scoring processes (and multiprocessing's resource tracker)
    for _ in range(50):  # a worker never outlives its service, even one killed with -9
        if not any(Path(f"/proc/{pid}").exists() for pid in workers):
            break
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def state_digest(store) -> str:
    """sha256 over every stored state."""
    return hashlib.sha256("".join(f"{k}={v}" for k, v in store.items()).encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replay_command_against_a_running_service(models, tmp_path):
    import uvicorn
    m = models / "report" / "models"
    port = free_port()
    app = create_app(OnlineScorer(m / "encoder", m / "hybrid", tmp_path / "state.sqlite"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        r = run("pipeline", "replay", models / "events.parquet", "--url", f"http://127.0.0.1:{port}", "--time", "ts",
                "--batch", "10", "--limit", "60", "--out", tmp_path / "answers.parquet")
        assert r.exit_code == 0, r.output
        assert "60 events in 6 requests" in r.output and "p99" in r.output and "rejected 0" in r.output
        assert len(pd.read_parquet(tmp_path / "answers.parquet")) == 60
        r = run("pipeline", "replay", models / "events.parquet", "--url", f"http://127.0.0.1:{port}", "--time", "ts",
                "--limit", "5", "--out", tmp_path / "again.parquet")  # the same events again: retries
        assert r.exit_code == 0 and "rejected 0" in r.output, r.output
        first, again = (pd.read_parquet(tmp_path / f) for f in ("answers.parquet", "again.parquet"))
        assert again["score"].tolist() == first["score"].head(5).tolist()  # the stored answers, nothing rescored
        changed = pd.read_parquet(models / "events.parquet").assign(amount=lambda f: f.amount + 1.0)
        changed.to_parquet(tmp_path / "changed.parquet")
        r = run("pipeline", "replay", tmp_path / "changed.parquet", "--url", f"http://127.0.0.1:{port}", "--time", "ts",
                "--limit", "5")  # other events at those old times: late, rejected
        assert r.exit_code == 1 and r.output.splitlines()[-1].startswith("error: 5 of 5 requests were rejected")
    finally:
        server.should_exit = True
        thread.join(10)


def test_serve_refuses_zero_threads(models, tmp_path):
    m = models / "report" / "models"
    r = run("pipeline", "serve", "--encoder", m / "encoder", "--classifier", m / "hybrid", "--threads", "0")
    assert r.exit_code == 2 and "Invalid value for '--threads'" in r.output


def test_serve_refuses_bad_models_in_one_line(models, tmp_path):
    r = run("pipeline", "serve", "--encoder", tmp_path / "nope", "--classifier", models / "report" / "models" / "hybrid",
            "--state", tmp_path / "s.sqlite")
    assert r.exit_code == 1 and r.output.strip() == f"error: encoder directory '{tmp_path / 'nope'}' does not exist"


def test_serve_refuses_a_classifier_of_another_encoder_as_batch_scoring_does(models, tmp_path):
    """One pairing check for every scoring job: the untrained control's classifier read the twin's codes."""
    m = models / "report" / "models"
    twin_id = json.loads((m / "untrained_encoder" / "manifest.json").read_text())["encoder_id"]
    r = run("pipeline", "serve", "--encoder", m / "encoder", "--classifier", m / "untrained",
            "--state", tmp_path / "s.sqlite")
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1
    assert f"'{m / 'untrained'}' was trained on encoder {twin_id[:12]}" in r.output
    assert not (tmp_path / "s.sqlite").exists()
    r = run("pipeline", "score", "--encoder", m / "encoder", "--classifier", m / "untrained", models / "events.parquet",
            "--out", tmp_path / "s.parquet")
    assert r.exit_code == 1 and f"was trained on encoder {twin_id[:12]}" in r.output


def test_metrics_count_requests_events_duplicates_and_late_events(models, tmp_path):
    c = client(models, tmp_path / "state.sqlite")
    recs = records(models, 30)
    same = [r for r in recs if r["account"] == recs[0]["account"]]
    c.post("/score", json=recs[:10])
    c.post("/score", json=recs[2])  # a retry
    c.post("/score", json=same[0] | {"amount": 2.5, "ts": "2000-01-01T00:00:00Z"})  # late: 409
    c.post("/score", content=b"{nope")  # 400
    text = c.get("/metrics").text

    def value(name):
        line = next(x for x in text.splitlines() if x.startswith(name + " ") or x.startswith(name + "{"))
        return float(line.rsplit(" ", 1)[1])
    assert value('seqae_requests_total{status="200"}') == 2 and value('seqae_requests_total{status="409"}') == 1
    assert value('seqae_requests_total{status="400"}') == 1
    assert value("seqae_events_scored_total") == 10 and value("seqae_duplicate_events_total") == 1
    assert value("seqae_late_events_refused_total") == 1
    assert value("seqae_entities") == len({r["account"] for r in recs[:10]})
    assert value("seqae_request_seconds_count") == 4 and value("seqae_scores_count") == 10


def test_a_bearer_token_guards_every_request_but_health(models, tmp_path):
    m = models / "report" / "models"
    c = TestClient(create_app(OnlineScorer(m / "encoder", m / "hybrid", tmp_path / "s.sqlite"), token="s3cret"))
    rec = records(models, 1)[0]
    r = c.post("/score", json=rec)
    assert r.status_code == 401 and "bearer token" in r.json()["error"]
    assert c.post("/score", json=rec, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/metrics").status_code == 401 and c.get("/health").status_code == 200
    assert c.post("/score", json=rec, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    r = run("pipeline", "serve", "--encoder", m / "encoder", "--classifier", m / "hybrid", "--state",
            tmp_path / "t.sqlite", "--host", "0.0.0.0")
    assert r.exit_code == 2 and "give --token-file" in r.output
    (tmp_path / "empty").write_text("\n")
    r = run("pipeline", "serve", "--encoder", m / "encoder", "--classifier", m / "hybrid", "--state",
            tmp_path / "t.sqlite", "--host", "0.0.0.0", "--token-file", tmp_path / "empty")
    assert r.exit_code == 1 and "token file" in r.output and "is empty" in r.output


def test_scoring_runs_off_the_event_loop_and_different_entities_at_once(models, tmp_path):
    m = models / "report" / "models"
    scorer = OnlineScorer(m / "encoder", m / "hybrid", tmp_path / "s.sqlite")
    inside = threading.Barrier(2, timeout=20)  # two requests inside the scoring at the same time, or none
    real = scorer._score_locked

    def held(*args):
        inside.wait()
        return real(*args)
    scorer._score_locked = held
    c = TestClient(create_app(scorer))
    recs = records(models, 30)
    a, b = recs[0], next(r for r in recs if r["account"] != recs[0]["account"])
    out = []
    first = threading.Thread(target=lambda: out.append(c.post("/score", json=a)))
    first.start()
    health = c.get("/health")  # answered while the first request waits inside the scoring
    assert health.status_code == 200 and first.is_alive()
    assert c.post("/score", json=b).status_code == 200  # another entity's request joins it there
    first.join(20)
    assert out[0].status_code == 200


# ------------------------------------------------------------------ the typed API
@pytest.fixture(scope="module")
def api_app(models, tmp_path_factory):
    """The service with a batch limit of 20, on a state of its own."""
    return create_app(OnlineScorer(models / "report" / "models" / "encoder", models / "report" / "models" / "hybrid",
                                   tmp_path_factory.mktemp("api") / "state.sqlite", max_batch=20))


def test_openapi_documents_every_event_column_and_each_answer(api_app):
    doc = TestClient(api_app).get("/openapi.json").json()
    event = doc["components"]["schemas"]["Event"]
    props = event["properties"]
    assert {"account", "ts", "amount", "merchant", "category", "channel", "country", "device"} <= set(props)
    assert set(event["required"]) == set(props)  # every feature must be sent (null where missing)
    assert props["ts"]["type"] == "string" and props["account"]["anyOf"] == [{"type": "string"}, {"type": "integer"}]
    assert {"type": "null"} in props["amount"]["anyOf"] and {"type": "number", "minimum": -3.4028234663852886e38,
                                                              "maximum": 3.4028234663852886e38} in props["amount"]["anyOf"]
    assert any(s.get("maxLength") == 256 for s in props["merchant"]["anyOf"])
    score = doc["paths"]["/score"]["post"]
    assert {"400", "409", "413", "500"} <= set(score["responses"]) and "requestBody" in score
    assert doc["components"]["schemas"]["Result"]["properties"]["score"]["type"] == "number"


def test_the_service_keeps_to_its_schema(api_app):
    # a valid-looking event may still be refused (a time string that is no timestamp, an event
    # earlier than its entity's latest): refusals must be documented 4xx answers, never a 5xx
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/score", "/health", "/entities/{entity_id}", "/metrics"}
    statuses = {}
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_to_it(case):
            response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
            statuses.setdefault(operation.path, set()).add(response.status_code)
        keeps_to_it()
    assert {200, 400} <= statuses["/score"]  # events scored and checked against the schema, and refusals


def _open_state(path, barrier, errors):
    barrier.wait()
    try:
        SQLiteStore(path).close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(str(exc))


def test_processes_that_open_a_new_state_file_at_once_all_get_it(tmp_path):
    """Scoring workers start together on a fresh state file; switching it to WAL may answer
    "database is locked" at once in all but one of them: each must wait for it, not fail."""
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    for round_ in range(4):
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_open_state, args=(tmp_path / f"s{round_}.sqlite", barrier, errors))
                 for _ in range(8)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert all(p.exitcode == 0 for p in procs)
    assert errors.empty(), errors.get()
