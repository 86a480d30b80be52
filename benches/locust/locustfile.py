"""Locust driving latlab's streaming voice-agent workload against latlab's emulator.

One Locust user = one real-time call, looping over the calls of a latlab dataset
(datasets/smoke by default). Per call, as latlab's pipeline does (core/src/pipeline/):

* opens the Deepgram-style live WebSocket (`/v1/listen?...&tag=<call>` with the
  `x-latlab-session: <call>#<iteration>` header, query string as core/src/backends/deepgram.rs);
* sends the WAV in 20 ms frames of 16-bit PCM, each frame sent when it is due
  (the call's start + the end time of its audio), sleeping until then (gevent.sleep, or a
  pacer thread: LOCUST_PACER), and records
  the scheduling lag = actual send time - due time (time.perf_counter) of every frame;
* reads Results concurrently (a greenlet); a turn ends on an is_final result with
  speech_final (or from_finalize), or on UtteranceEnd after finals, as latlab's `Endpointing::Stt`;
* answers each turn in order on a responder greenlet: a streaming OpenAI chat completion
  (SSE, read to `[DONE]`, with the conversation history as latlab sends it); each sentence of
  the reply, as soon as the stream completes it (latlab's `balanced` profile: first_sentence),
  goes to a speaker greenlet that streams it through ElevenLabs TTS (body read to the end),
  one sentence after another, so a reply's speech streams on beside the next turn's LLM
  request, as latlab's responder does;
* after the last frame keeps the stream alive (KeepAlive every 3 s) until every turn is
  answered or has timed out, then sends CloseStream.

Each request fires Locust's `events.request` (through FastHttpSession for LLM/TTS, by hand for
the WebSocket and the per-turn latency), so Locust's own table is meaningful. On test_stop the
frame lags (exact percentiles of the sorted samples), counts and CPU seconds are written as JSON
to $LOCUST_LAG_OUT.

Configuration (environment):
  LATLAB_STT_URL   ws://127.0.0.1:PORT/v1/listen                 (required)
  LATLAB_LLM_URL   http://127.0.0.1:PORT/v1/chat/completions     (required)
  LATLAB_TTS_URL   http://127.0.0.1:PORT/v1/text-to-speech       (required; voice and /stream appended)
  LATLAB_DATASET   dataset folder with manifest.jsonl            (default: datasets/smoke)
  LATLAB_ENDPOINTING_MS (500), LATLAB_UTTERANCE_END_MS (1000), LATLAB_INTERIM_RESULTS (true),
  LATLAB_TTS_START (first_sentence; or full_reply): the knobs of latlab's `balanced` profile
  LOCUST_PACER     gevent (default: gevent.sleep until due) or thread (a real pacer thread, as
                   latlab's, waking greenlets through the hub; see ThreadPacer)
  LATLAB_EMU_PID   the emulator's pid, to report its CPU seconds over the test
  LOCUST_LAG_OUT   where to write the JSON summary
"""

import locust  # noqa: F401  (imports gevent and monkey-patches first)

import heapq
import itertools
import json
import math
import os
import resource
import sys
import time
import wave
from array import array
from pathlib import Path
from urllib.parse import quote_plus

import gevent
import gevent.queue
import websocket  # websocket-client; cooperative once gevent has patched socket
from locust import constant, events, task
from locust.exception import StopUser
from locust.contrib.fasthttp import FastHttpUser

HERE = Path(__file__).resolve().parent
DATASET = Path(os.environ.get("LATLAB_DATASET", HERE.parent.parent / "datasets" / "smoke"))
STT_URL = os.environ.get("LATLAB_STT_URL", "")
LLM_URL = os.environ.get("LATLAB_LLM_URL", "")
TTS_URL = os.environ.get("LATLAB_TTS_URL", "").rstrip("/")
ENDPOINTING_MS = int(os.environ.get("LATLAB_ENDPOINTING_MS", "500"))
UTTERANCE_END_MS = int(os.environ.get("LATLAB_UTTERANCE_END_MS", "1000"))
INTERIM_RESULTS = os.environ.get("LATLAB_INTERIM_RESULTS", "true")
TTS_START = os.environ.get("LATLAB_TTS_START", "first_sentence")
if TTS_START not in ("first_sentence", "full_reply"):
    raise SystemExit(f"LATLAB_TTS_START must be first_sentence or full_reply, not {TTS_START!r}")
FRAME_MS = 20

# scenarios/smoke.toml: backends and [limits].
STT_MODEL = "nova-3"
LLM_MODEL = "gpt-4o-mini"
MAX_TOKENS = 150
VOICE_ID = "JBFqnCBsd6RMkjVDRZzb"
TTS_MODEL = "eleven_flash_v2_5"
OUTPUT_FORMAT = "wav_16000"
SYSTEM_PROMPT = (
    "You are a friendly voice assistant on a phone call. "
    "Answer in one to three short spoken sentences."
)
CONNECT_TIMEOUT_S = 5.0
RESPONSE_TIMEOUT_S = 10.0
TRANSCRIPT_TIMEOUT_S = 5.0
KEEPALIVE_S = 3.0


class Call:
    """One recorded call: id, 20 ms frames of little-endian PCM, frame due offsets, turns."""

    def __init__(self, entry):
        self.id = entry["id"]
        self.turns = entry["turns"]
        with wave.open(str(DATASET / entry["audio"]), "rb") as w:
            assert w.getnchannels() == 1 and w.getsampwidth() == 2, "need mono 16-bit PCM"
            self.sample_rate = w.getframerate()
            pcm = w.readframes(w.getnframes())
        n = len(pcm) // 2
        per = self.sample_rate * FRAME_MS // 1000
        self.frames = [pcm[2 * i : 2 * min(i + per, n)] for i in range(0, n, per)]
        # A frame is due at the end of its audio (core/src/schedule.rs).
        self.due_s = [min((k + 1) * per, n) / self.sample_rate for k in range(len(self.frames))]

    def listen_url(self):
        url = (
            f"{STT_URL}?model={STT_MODEL}&encoding=linear16&sample_rate={self.sample_rate}"
            f"&channels=1&interim_results={INTERIM_RESULTS}&endpointing={ENDPOINTING_MS}"
            f"&punctuate=true&vad_events=true"
        )
        if UTTERANCE_END_MS > 0:
            url += f"&utterance_end_ms={UTTERANCE_END_MS}"
        return url + f"&tag={quote_plus(self.id)}"


def load_calls():
    with open(DATASET / "manifest.jsonl") as f:
        return [Call(json.loads(line)) for line in f if line.strip()]


CALLS = load_calls()

# Per-process results (one Locust process).
LAGS = array("d")  # scheduling lag of every frame sent, seconds
V2V = array("d")  # end of a turn's speech (as due) -> first TTS byte, seconds
LATE = []  # (lag, due) of frames more than 5 ms late, to see when they happened
COUNTS = {"calls_started": 0, "calls_completed": 0, "turns_expected": 0, "turns_dispatched": 0,
          "turns_answered": 0, "errors": 0}
ERRORS = {}
ERROR_SAMPLES = {}  # kind -> a few distinct messages
_user_ids = itertools.count()
_iterations = {}  # call id -> replays started (the session's iteration)
_cpu_start = {}
STOPPING = False  # set on test_stopping, before Locust kills the users


def _error(kind, exc=None):
    COUNTS["errors"] += 1
    ERRORS[kind] = ERRORS.get(kind, 0) + 1
    if exc is not None:
        seen = ERROR_SAMPLES.setdefault(kind, [])
        text = f"{type(exc).__name__}: {exc}"[:200]
        if len(seen) < 3 and text not in seen:
            seen.append(text)


def _fire(request_type, name, start_perf, start_time, exc=None, length=0):
    events.request.fire(
        request_type=request_type, name=name,
        response_time=(time.perf_counter() - start_perf) * 1000.0,
        response_length=length, exception=exc, context={}, start_time=start_time,
    )


def _gevent_sleep_until(due):
    """Sleeps (cooperatively) until perf_counter() >= due, on gevent's own timers.

    gevent's libev loop waits in epoll_wait, whose timeout is whole milliseconds rounded up,
    so a frame woken this way leaves up to about 1 ms late even on an idle machine.
    """
    while True:
        left = due - time.perf_counter()
        if left <= 0:
            return
        gevent.sleep(left)


class ThreadPacer:
    """latlab's pacer (core/src/clock.rs) in gevent terms: one real OS thread keeps the due
    times in a heap and sleeps on a lock with a timeout (a futex: microseconds of slack), then
    wakes the hub through an async watcher (eventfd), which resumes each waiting greenlet once.
    The pacer thread needs the GIL to run, so the switch interval is lowered to 0.5 ms.
    """

    def __init__(self):
        from collections import deque
        from gevent.hub import Waiter
        from gevent.monkey import get_original

        start_thread, allocate_lock = get_original("_thread", ["start_new_thread", "allocate_lock"])
        self._waiter = Waiter
        self._hub = gevent.get_hub()
        self._async = self._hub.loop.async_()
        self._async.start(self._fire)
        self._mutex = allocate_lock()
        self._wake = allocate_lock()  # held = nothing to say; released = look at the heap again
        self._wake.acquire()
        self._heap = []
        self._seq = 0
        self._fired = deque()
        sys.setswitchinterval(0.0005)
        start_thread(self._run, ())

    def sleep_until(self, due):
        if due <= time.perf_counter():
            return
        w = self._waiter(self._hub)
        with self._mutex:
            self._seq += 1
            heapq.heappush(self._heap, (due, self._seq, w))
            first = self._heap[0][2] is w
        if first:
            try:
                self._wake.release()
            except RuntimeError:  # already released
                pass
        w.get()

    def _fire(self):  # in the hub
        fired = self._fired
        while fired:
            try:
                fired.popleft().switch(None)
            except Exception:  # noqa: BLE001  (a greenlet Locust killed while it waited)
                pass

    def _run(self):  # in the pacer thread
        heap, fired = self._heap, self._fired
        while True:
            with self._mutex:
                now = time.perf_counter()
                n = 0
                while heap and heap[0][0] <= now:
                    fired.append(heapq.heappop(heap)[2])
                    n += 1
                timeout = heap[0][0] - now if heap else None
            if n:
                self._async.send()
            if timeout is None:
                self._wake.acquire()
            else:
                self._wake.acquire(timeout=timeout)


PACER = os.environ.get("LOCUST_PACER", "gevent")
if PACER == "thread":
    _sleep_until = ThreadPacer().sleep_until
elif PACER == "gevent":
    _sleep_until = _gevent_sleep_until
else:
    raise SystemExit(f"LOCUST_PACER must be gevent or thread, not {PACER!r}")


class VoiceCall(FastHttpUser):
    """One user = one call at a time, in real time, over the dataset's calls in turn."""

    wait_time = constant(0)
    host = LLM_URL.split("/v1/")[0] if LLM_URL else "http://127.0.0.1"
    network_timeout = RESPONSE_TIMEOUT_S
    connection_timeout = CONNECT_TIMEOUT_S
    concurrency = 4  # keep-alive connections per user (latlab `balanced`: connection reuse)

    def on_start(self):
        self.next_call = next(_user_ids) % len(CALLS)

    @task
    def call(self):
        c = CALLS[self.next_call]
        self.next_call = (self.next_call + 1) % len(CALLS)
        iteration = _iterations.get(c.id, 0)
        _iterations[c.id] = iteration + 1
        run_call(self.client, c, f"{c.id}#{iteration}")


def run_call(client, c, session):
    COUNTS["calls_started"] += 1
    COUNTS["turns_expected"] += len(c.turns)
    children = []
    ws = None
    state = {"dispatched": 0, "closed": False}
    try:
        t_wall, t_perf = time.time(), time.perf_counter()
        try:
            ws = websocket.create_connection(
                c.listen_url(), timeout=CONNECT_TIMEOUT_S,
                header=[f"x-latlab-session: {session}"],
            )
            ws.settimeout(None)
        except Exception as e:  # noqa: BLE001
            _fire("WS", "/v1/listen (connect)", t_perf, t_wall, exc=e)
            _error("stt_connect", e)
            return
        _fire("WS", "/v1/listen (connect)", t_perf, t_wall)
        # The recording starts now: frame k is due at t0 + its end time.
        t0 = time.perf_counter()
        ready = gevent.queue.Queue()
        children.append(gevent.spawn(reader, ws, c, state, ready))
        responder_g = gevent.spawn(responder, client, c, session, t0, ready, children)
        children.append(responder_g)

        lags = LAGS
        for frame, due_s in zip(c.frames, c.due_s):
            due = t0 + due_s
            _sleep_until(due)
            if STOPPING:
                # Locust is stopping the test: frames from here on are not measured, and no
                # new call starts.
                raise StopUser()
            lag = time.perf_counter() - due
            lags.append(lag)
            if lag > 0.005:
                LATE.append((lag, due))
            try:
                ws.send_binary(frame)
            except Exception as e:  # noqa: BLE001
                _error("stt_send", e)
                return

        # Audio done: keep alive until every turn is final or past its deadline.
        deadline = t0 + (c.turns[-1]["end_ms"] / 1000.0 if c.turns else 0) + TRANSCRIPT_TIMEOUT_S
        next_keepalive = time.perf_counter() + KEEPALIVE_S
        while state["dispatched"] < len(c.turns) and not state["closed"]:
            now = time.perf_counter()
            if now >= deadline:
                break
            if now >= next_keepalive:
                ws.send('{"type":"KeepAlive"}')
                next_keepalive = now + KEEPALIVE_S
            gevent.sleep(min(0.02, deadline - now))
        missing = len(c.turns) - state["dispatched"]
        for _ in range(missing):
            _error("no_final_transcript")
        ready.put(None)
        responder_g.join(timeout=2 * RESPONSE_TIMEOUT_S + 1)
        try:
            ws.send('{"type":"CloseStream"}')
        except Exception:  # noqa: BLE001
            pass
        COUNTS["calls_completed"] += 1
    finally:
        # Also runs when Locust stops the user mid-call (GreenletExit). The call is over: the
        # reader is stopped before the socket goes, so its end is not an error (latlab aborts
        # its listener the same way).
        state["closed"] = True
        gevent.killall([g for g in children if not g.dead], block=True, timeout=1.0)
        if ws is not None:
            try:
                ws.shutdown()
            except Exception:  # noqa: BLE001
                pass


def reader(ws, c, state, ready):
    """Reads STT messages; hands each finished turn's transcript to the responder."""
    segments = []
    t_wall, t_perf = time.time(), time.perf_counter()

    def dispatch():
        text = " ".join(s for s in segments if s.strip()).strip()
        segments.clear()
        if text and state["dispatched"] < len(c.turns):
            ready.put((state["dispatched"], text))
            state["dispatched"] += 1

    try:
        while True:
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                break
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            msg = json.loads(data)
            kind = msg.get("type")
            if kind == "Results":
                if msg.get("is_final"):
                    alts = msg.get("channel", {}).get("alternatives") or [{}]
                    segments.append(alts[0].get("transcript", ""))
                    if msg.get("speech_final") or msg.get("from_finalize"):
                        dispatch()
            elif kind == "UtteranceEnd" and segments:
                dispatch()
    except gevent.GreenletExit:
        raise
    except Exception as e:  # noqa: BLE001
        if not state["closed"]:
            _fire("WS", "/v1/listen (stream)", t_perf, t_wall, exc=e)
            _error("stt_stream", e)
    finally:
        state["closed"] = True


def sentence_end(text):
    """Index just after the first complete sentence (core/src/text.rs): `.`, `!` or `?`, then
    whitespace, then a character that is not lower-case; None until the next word starts."""
    for i, ch in enumerate(text):
        if ch not in ".!?":
            continue
        if i + 1 >= len(text) or not text[i + 1].isspace():
            continue
        rest = text[i + 1 :].lstrip()
        if not rest:
            return None
        if rest[0].islower():
            continue
        return i + 1
    return None


def responder(client, c, session, t0, ready, children):
    """Answers turns one at a time (each needs the previous reply): the LLM streams the reply
    and, with TTS_START=first_sentence (latlab `balanced`), each sentence goes to a speaker
    greenlet as soon as it is complete; the reply's speech streams on beside the next turn."""
    history = [{"role": "system", "content": SYSTEM_PROMPT}]
    speaking = []
    while True:
        item = ready.get()
        if item is None:
            break
        index, text = item
        COUNTS["turns_dispatched"] += 1
        history.append({"role": "user", "content": text})
        sentences = gevent.queue.Queue()
        g = gevent.spawn(speaker, client, session, sentences, t0 + c.turns[index]["end_ms"] / 1000.0)
        speaking.append(g)
        children.append(g)
        reply = llm(client, history, session, sentences)
        if reply is not None:
            history.append({"role": "assistant", "content": reply})
    gevent.joinall(speaking, timeout=RESPONSE_TIMEOUT_S + 1)


def llm(client, history, session, sentences):
    """Streams a chat completion to [DONE]; puts the reply's sentences on `sentences` (then None)."""
    body = json.dumps({
        "model": LLM_MODEL, "messages": history, "stream": True, "max_tokens": MAX_TOKENS,
        "temperature": 0.0, "stream_options": {"include_usage": True},
    })
    headers = {"Content-Type": "application/json", "x-latlab-session": session}
    start = time.perf_counter()
    reply = []
    pending = ""
    try:
        with client.request("POST", LLM_URL, data=body, headers=headers, stream=True,
                            catch_response=True, name="LLM chat/completions (SSE to [DONE])") as resp:
            try:
                if resp.status_code != 200 or resp._response is None:
                    resp.failure(f"HTTP {resp.status_code}")
                    _error("llm_status")
                    return None
                raw = resp._response
                done = False
                size = 0
                while True:
                    line = raw.readline(b"\n")
                    if not line:
                        break
                    size += len(line)
                    if not line.startswith(b"data: "):
                        continue
                    payload = line[6:].strip()
                    if payload == b"[DONE]":
                        done = True
                        continue
                    chunk = json.loads(payload)
                    for choice in chunk.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content")
                        if piece:
                            reply.append(piece)
                            if TTS_START == "first_sentence":
                                pending += piece
                                while (cut := sentence_end(pending)) is not None:
                                    sentence, pending = pending[:cut].strip(), pending[cut:]
                                    if sentence:
                                        sentences.put(sentence)
                resp.request_meta["response_time"] = (time.perf_counter() - start) * 1000.0
                resp.request_meta["response_length"] = size
                if not done:
                    resp.failure("SSE ended without [DONE]")
                    _error("llm_stream")
                    return None
                resp.success()
            except gevent.GreenletExit:
                raise
            except Exception as e:  # noqa: BLE001
                resp.failure(e)
                _error("llm_stream", e)
                return None
        text = "".join(reply).strip()
        rest = pending.strip() if TTS_START == "first_sentence" else text
        if rest:
            sentences.put(rest)
        if not text:
            _error("llm_empty")
            return None
        return text
    finally:
        sentences.put(None)


def speaker(client, session, sentences, speech_end):
    """Speaks a reply's sentences one after another (TTS stream, body read to the end)."""
    first_at = None
    spoke = False
    while True:
        text = sentences.get()
        if text is None:
            break
        at = tts(client, text, session)
        if at is None:
            return  # stop at the first failure, as latlab does
        spoke = True
        if first_at is None:
            first_at = at
    if not spoke:
        return
    COUNTS["turns_answered"] += 1
    V2V.append(first_at - speech_end)
    events.request.fire(
        request_type="TURN", name="end of speech -> first TTS byte",
        response_time=(first_at - speech_end) * 1000.0, response_length=0, exception=None,
        context={}, start_time=time.time(),
    )


def tts(client, text, session):
    """One streamed synthesis read to the end; returns when its first byte arrived, or None."""
    url = f"{TTS_URL}/{VOICE_ID}/stream?output_format={OUTPUT_FORMAT}"
    body = json.dumps({"text": text, "model_id": TTS_MODEL})
    headers = {"Content-Type": "application/json", "x-latlab-session": session}
    start = time.perf_counter()
    with client.request("POST", url, data=body, headers=headers, stream=True,
                        catch_response=True, name="TTS text-to-speech/stream (body to end)") as resp:
        try:
            if resp.status_code != 200 or resp._response is None:
                resp.failure(f"HTTP {resp.status_code}")
                _error("tts_status")
                return None
            raw = resp._response
            first = raw.read(1)  # returns as soon as the first chunk arrives
            first_at = time.perf_counter()
            size = len(first) + len(raw.read())
            resp.request_meta["response_time"] = (time.perf_counter() - start) * 1000.0
            resp.request_meta["response_length"] = size
            if not first:
                resp.failure("empty audio")
                _error("tts_stream")
                return None
            resp.success()
        except gevent.GreenletExit:
            raise
        except Exception as e:  # noqa: BLE001
            resp.failure(e)
            _error("tts_stream", e)
            return None
    return first_at


def _cpu_s(pid):
    """utime + stime of a process in seconds, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _self_cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _rank(sorted_values, q):
    """Nearest-rank percentile of already sorted values (an actual sample, not interpolated)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@events.test_start.add_listener
def _on_test_start(environment, **_):
    if not (STT_URL and LLM_URL and TTS_URL):
        raise SystemExit("set LATLAB_STT_URL, LATLAB_LLM_URL and LATLAB_TTS_URL")
    _cpu_start["t"] = time.perf_counter()
    _cpu_start["self"] = _self_cpu_s()
    emu = os.environ.get("LATLAB_EMU_PID")
    _cpu_start["emu"] = _cpu_s(emu) if emu else None


@events.test_stopping.add_listener
def _on_test_stopping(environment, **_):
    # Locust's stop() first walks the stack with inspect (tens of ms on one core), so frames
    # due just before the stop leave late; they belong to the stop, not to the load.
    global STOPPING
    STOPPING = True
    _cpu_start["stopping"] = time.perf_counter()


@events.test_stop.add_listener
def _on_test_stop(environment, **_):
    lags = sorted(LAGS)
    v2v = sorted(V2V)
    ms = lambda v: None if v is None else round(v * 1000.0, 4)  # noqa: E731
    emu = os.environ.get("LATLAB_EMU_PID")
    emu_now = _cpu_s(emu) if emu else None
    users = environment.runner.user_count if environment.runner else None
    out = {
        "frames": len(lags),
        "lag_p50_ms": ms(_rank(lags, 0.50)),
        "lag_p90_ms": ms(_rank(lags, 0.90)),
        "lag_p99_ms": ms(_rank(lags, 0.99)),
        "lag_p999_ms": ms(_rank(lags, 0.999)),
        "lag_max_ms": ms(lags[-1] if lags else None),
        "frames_late_gt_1ms": sum(1 for v in lags if v > 0.001),
        "frames_late_gt_5ms": sum(1 for v in lags if v > 0.005),
        "frames_late_gt_20ms": sum(1 for v in lags if v > 0.020),
        "late_frames_worst": [
            {"lag_ms": round(lag * 1000.0, 2), "at_s": round(due - _cpu_start.get("t", 0.0), 2)}
            for lag, due in sorted(LATE, reverse=True)[:8]
        ],
        "turns": COUNTS["turns_answered"],
        "turns_dispatched": COUNTS["turns_dispatched"],
        "calls_started": COUNTS["calls_started"],
        "calls_completed": COUNTS["calls_completed"],
        "errors": COUNTS["errors"],
        "error_kinds": ERRORS,
        "error_samples": ERROR_SAMPLES,
        "locust_failures": environment.stats.total.num_failures,
        "locust_requests": environment.stats.total.num_requests,
        "v2v_first_byte_p50_ms": ms(_rank(v2v, 0.50)),
        "v2v_first_byte_p99_ms": ms(_rank(v2v, 0.99)),
        "pacer": PACER,
        "tts_start": TTS_START,
        "users_at_stop": users,
        "test_s": round(time.perf_counter() - _cpu_start.get("t", time.perf_counter()), 3),
        "cpu_locust_s": round(_self_cpu_s() - _cpu_start.get("self", 0.0), 3),
        "cpu_emulator_s": (round(emu_now - _cpu_start["emu"], 3)
                           if emu_now is not None and _cpu_start.get("emu") is not None else None),
        "versions": {"locust": locust.__version__, "gevent": gevent.__version__,
                     "websocket-client": websocket.__version__},
    }
    path = os.environ.get("LOCUST_LAG_OUT")
    if path:
        with open(path, "w") as f:
            json.dump(out, f)
    else:
        print(json.dumps(out))
