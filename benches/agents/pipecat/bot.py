#!/usr/bin/env python3
"""A real Pipecat voice agent, fully local, that latlab's agent backend calls as a Twilio caller.

    python bot.py --port 8765 --llm-url http://127.0.0.1:8766/v1 --models DIR --self-report FILE

Serves Twilio Media Streams on ws://127.0.0.1:PORT/ws (FastAPI + uvicorn). Each call runs its
own pipeline: Silero VAD and the smart-turn model (both inside the pipecat wheel) → Whisper
tiny.en (faster-whisper, CPU int8, from DIR/whisper/faster-tiny.en) → an OpenAI-protocol LLM at
--llm-url (latlab's emulator) → Piper (DIR/piper/en_US-joe-medium.onnx) → back to the caller.

The agent's own view of each user turn goes to --self-report as one JSON line (see SelfReport);
it is what Pipecat itself measured, so latlab can set it beside what the caller heard. This bot
must never reach beyond loopback: no hub downloads, no Twilio REST calls.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TextIO

import uvicorn
from fastapi import FastAPI, WebSocket
from loguru import logger

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.frames.frames import (
    BotStoppedSpeakingFrame,
    MetricsFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData, TTFBMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transports.websocket.fastapi import (
    FastAPIWebsocketParams,
    FastAPIWebsocketTransport,
)
from pipecat.workers.runner import WorkerRunner

# latlab's emulator picks a call's scripted replies by this header (`<call>#<iteration>`).
SESSION_HEADER = "x-latlab-session"
SYSTEM_PROMPT = "You are a helpful phone assistant. Answer in one or two short sentences."
PIPER_VOICE = "en_US-joe-medium"


class SelfReport(BaseObserver):
    """Writes Pipecat's own view of each user turn as one JSON line.

    latency_ms is Pipecat's UserBotLatencyObserver figure (VAD stop time minus the VAD's
    stop_secs, i.e. when the user fell silent → BotStartedSpeakingFrame). stages holds the
    first TTFBMetricsData / ProcessingMetricsData of each service in the turn, keyed by kind
    (stt, llm, tts). The line is written when the bot stops speaking, the user starts again,
    or the call ends, so metrics that arrive after the bot started speaking are included.
    """

    def __init__(self, out: TextIO, call_sid: str, kinds: dict[str, str]):
        # First pushes only, as the latency observer does: each frame is counted once.
        super().__init__(observe_every_push=False)
        self._out = out
        self._call_sid = call_sid
        self._kinds = kinds
        self._user_turns = 0
        self._stages: dict[str, float] = {}
        self._pending: dict | None = None

    async def on_latency_measured(self, _observer, latency_secs: float) -> None:
        self._pending = {
            "call_sid": self._call_sid,
            "turn": self._user_turns - 1,
            "source": "pipecat",
            "latency_ms": round(latency_secs * 1000, 1),
        }

    async def on_push_frame(self, data: FramePushed) -> None:
        if data.direction != FrameDirection.DOWNSTREAM:
            return
        frame = data.frame
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._user_turns += 1
        elif isinstance(frame, MetricsFrame):
            self._record(frame)
        elif isinstance(frame, (BotStoppedSpeakingFrame, VADUserStartedSpeakingFrame)):
            self.flush()
            if isinstance(frame, VADUserStartedSpeakingFrame):
                self._stages = {}

    def _record(self, frame: MetricsFrame) -> None:
        for item in frame.data:
            if isinstance(item, TTFBMetricsData):
                what = "ttfb"
            elif isinstance(item, ProcessingMetricsData):
                what = "processing"
            else:
                continue
            kind = self._kinds.get(item.processor)
            if kind is None or item.value <= 0:
                continue
            # The first figure of a turn is the one on the path to the first audio.
            self._stages.setdefault(f"{kind}_{what}_ms", round(item.value * 1000, 1))

    def flush(self) -> None:
        if self._pending is None:
            return
        line = {**self._pending, "stages": dict(sorted(self._stages.items()))}
        self._out.write(json.dumps(line, separators=(",", ":")) + "\n")
        self._out.flush()
        self._pending = None
        self._stages = {}


def services(args: argparse.Namespace, call_sid: str):
    stt = WhisperSTTService(
        settings=WhisperSTTService.Settings(model=str(args.models / "whisper" / "faster-tiny.en")),
        device="cpu",
        compute_type="int8",
    )
    llm = OpenAILLMService(
        api_key="latlab-emulator",
        base_url=args.llm_url,
        settings=OpenAILLMService.Settings(model="latlab-emulated", system_instruction=SYSTEM_PROMPT),
        default_headers={SESSION_HEADER: call_sid},
    )
    tts = PiperTTSService(
        settings=PiperTTSService.Settings(voice=PIPER_VOICE),
        download_dir=args.models / "piper",
    )
    return stt, llm, tts


async def run_call(args: argparse.Namespace, report: TextIO, websocket: WebSocket) -> None:
    """One call: its own transport, services and pipeline, until the caller hangs up."""
    _, call_data = await parse_telephony_websocket(websocket)
    call_sid = call_data["call_id"]
    logger.info(f"call {call_sid} (stream {call_data['stream_id']})")
    serializer = TwilioFrameSerializer(
        stream_sid=call_data["stream_id"],
        call_sid=call_sid,
        # No Twilio credentials here: hanging up is the caller closing the socket.
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket,
        FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    stt, llm, tts = services(args, call_sid)
    aggregators = LLMContextAggregatorPair(
        LLMContext(), user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer())
    )
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            aggregators.user(),
            llm,
            tts,
            transport.output(),
            aggregators.assistant(),
        ]
    )
    latency = UserBotLatencyObserver()
    self_report = SelfReport(report, call_sid, {stt.name: "stt", llm.name: "llm", tts.name: "tts"})
    latency.add_event_handler("on_latency_measured", self_report.on_latency_measured)
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            enable_metrics=True,
            # Whisper and the smart-turn model read 16 kHz; the serializer resamples 8 kHz μ-law.
            audio_in_sample_rate=16000,
            audio_out_sample_rate=8000,
        ),
        observers=[latency, self_report],
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport, _client) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
    self_report.flush()
    logger.info(f"call {call_sid} ended")


def app_for(args: argparse.Namespace, report: TextIO) -> FastAPI:
    app = FastAPI()

    @app.websocket("/ws")
    async def call(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_call(args, report, websocket)
        # A finished call is cyclic garbage holding the models' native buffers; left to
        # Python's lazy collector the bot's RSS grew ~125 MB per call.
        gc.collect()

    return app


class ReadyServer(uvicorn.Server):
    """Prints the READY line once the socket is listening (a test harness waits for it)."""

    def __init__(self, config: uvicorn.Config, url: str):
        super().__init__(config)
        self._url = url

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"READY {self._url}", flush=True)


def parse_args() -> argparse.Namespace:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    parser.add_argument(
        "--llm-url",
        required=True,
        help="OpenAI-protocol base URL, e.g. http://127.0.0.1:8766/v1 (latlab emulate's llm)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=here.parents[2] / "models",
        help="latlab's models folder (whisper/faster-tiny.en, piper/) (default: the repo's)",
    )
    parser.add_argument(
        "--self-report",
        type=Path,
        required=True,
        help="JSON-lines file the bot appends its own per-turn latency to",
    )
    parser.add_argument("--log-level", default="INFO", help="loguru level for stderr (default INFO)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    args.models = args.models.resolve()
    for needed in (args.models / "whisper/faster-tiny.en/model.bin", args.models / f"piper/{PIPER_VOICE}.onnx"):
        if not needed.is_file():
            print(
                f"error: {needed} is missing; fetch it with: "
                "python3 models/fetch.py whisper-tiny.en-ct2 piper-joe",
                file=sys.stderr,
            )
            return 2
    logger.remove()
    logger.add(sys.stderr, level=args.log_level)
    args.self_report.parent.mkdir(parents=True, exist_ok=True)
    with open(args.self_report, "a", encoding="utf-8") as report:
        config = uvicorn.Config(
            app_for(args, report), host="127.0.0.1", port=args.port, log_level="warning"
        )
        ReadyServer(config, f"ws://127.0.0.1:{args.port}/ws").run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
