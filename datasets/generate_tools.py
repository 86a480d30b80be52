#!/usr/bin/env python3
"""Generate the latlab tools dataset: customers calling a home-goods company
about their orders, store hours and appointments, where most turns need a tool
call (OpenAI function calling) to answer; writes datasets/tools/ (WAVs,
manifest.jsonl) and datasets/tools/tools.json (the function definitions).

The audio is made exactly as the smoke set's (generate_smoke.py: espeak-ng,
16 kHz mono, pink noise, the 8 kHz mu-law round trip for telephone calls, turn
boundaries measured by its energy detector), from this file's own seed.

Each tool turn carries `tool`: the function's name, its arguments and the
result the company API returns (the emulator's tool API answers with it), and
a `reply` that speaks that result. Tool arguments repeat across calls (4 order
ids, 3 store/day pairs, 2 service/day pairs over 25 tool turns), so a tool
cache's hit rate means something: at most 16 of the 25 calls can be hits
(64 %), replaying every call once into one cache that keeps results all run.

Requirements: espeak-ng, sox (soxi), Python >= 3.11 with numpy; jsonschema
(optional) validates the manifest lines.

Usage
-----
    python3 datasets/generate_tools.py            # writes datasets/tools/
    python3 datasets/generate_tools.py --out DIR  # somewhere else
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import generate_smoke as smoke

SEED = 20250318
MAX_CALL_S = 18.0
MAX_TOTAL_BYTES = 6_000_000

REPO = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------
# The company API: function definitions (OpenAI JSON Schema style) and the
# records it holds.
# --------------------------------------------------------------------------
TOOLS = [
    {
        "name": "get_order_status",
        "description": "Look up an order by its number: where it is and when it arrives.",
        "parameters": {
            "type": "object",
            "properties": {
                "order_id": {"type": "string",
                             "description": "The order number, digits only, e.g. 48152."},
            },
            "required": ["order_id"],
            "additionalProperties": False,
        },
    },
    {
        "name": "get_store_hours",
        "description": "Opening hours of one of our stores on a day of the week.",
        "parameters": {
            "type": "object",
            "properties": {
                "store": {"type": "string", "enum": ["downtown", "riverside"]},
                "day": {"type": "string",
                        "enum": ["monday", "tuesday", "wednesday", "thursday",
                                 "friday", "saturday", "sunday"]},
            },
            "required": ["store", "day"],
            "additionalProperties": False,
        },
    },
    {
        "name": "check_appointment_availability",
        "description": "Free appointment slots for a service on a day of the week.",
        "parameters": {
            "type": "object",
            "properties": {
                "service": {"type": "string",
                            "enum": ["design_consultation", "furniture_assembly"]},
                "day": {"type": "string",
                        "enum": ["monday", "tuesday", "wednesday", "thursday",
                                 "friday", "saturday", "sunday"]},
            },
            "required": ["service", "day"],
            "additionalProperties": False,
        },
    },
]

ORDERS = {
    "48152": {"order_id": "48152", "status": "shipped", "carrier": "UPS",
              "eta": "Thursday"},
    "50382": {"order_id": "50382", "status": "processing", "ships_by": "Monday"},
    "31977": {"order_id": "31977", "status": "delivered", "delivered_on": "Tuesday",
              "left_at": "front door"},
    "62045": {"order_id": "62045", "status": "delayed", "carrier": "FedEx",
              "eta": "next Wednesday", "reason": "weather"},
}
HOURS = {
    ("downtown", "saturday"): {"open": "09:00", "close": "18:00"},
    ("downtown", "sunday"): {"open": "11:00", "close": "16:00"},
    ("riverside", "saturday"): {"open": "10:00", "close": "20:00"},
}
SLOTS = {
    ("design_consultation", "friday"): ["10:30", "14:00"],
    ("furniture_assembly", "monday"): ["09:00", "13:30", "16:00"],
}


@dataclass
class Tool:
    name: str
    arguments: dict
    result: dict


def order(order_id: str) -> Tool:
    return Tool("get_order_status", {"order_id": order_id}, ORDERS[order_id])


def hours(store: str, day: str) -> Tool:
    return Tool("get_store_hours", {"store": store, "day": day},
                {"store": store, "day": day, **HOURS[(store, day)]})


def slots(service: str, day: str) -> Tool:
    return Tool("check_appointment_availability", {"service": service, "day": day},
                {"service": service, "day": day, "slots": SLOTS[(service, day)]})


@dataclass
class Turn:
    text: str
    reply: str
    tool: Tool | None = None


@dataclass
class Call:
    id: str
    voice: str
    band: str
    snr_db: int
    turns: list[Turn] = field(default_factory=list)
    speed: int = 170


# What the agent says once it has each result: one phrasing per record.
SAY_ORDER = {
    "48152": "Order 48152 shipped with UPS and should arrive on Thursday.",
    "50382": "Order 50382 is still being packed and should ship by Monday.",
    "31977": "Order 31977 was delivered on Tuesday and left at your front door.",
    "62045": "Order 62045 is delayed by the weather; FedEx now expects to deliver it "
             "next Wednesday.",
}
SAY_HOURS = {
    ("downtown", "saturday"): "On Saturday the downtown store is open from 9 a.m. to 6 p.m.",
    ("downtown", "sunday"): "On Sunday the downtown store is open from 11 a.m. to 4 p.m.",
    ("riverside", "saturday"): "On Saturday the riverside store is open from 10 a.m. "
                               "until 8 p.m.",
}
SAY_SLOTS = {
    ("design_consultation", "friday"): "For a design consultation on Friday I have "
                                        "10:30 a.m. or 2 p.m.",
    ("furniture_assembly", "monday"): "For furniture assembly on Monday I have 9 a.m., "
                                       "1:30 p.m. or 4 p.m.",
}


def ask_order(text: str, order_id: str) -> Turn:
    return Turn(text, SAY_ORDER[order_id], order(order_id))


def ask_hours(text: str, store: str, day: str) -> Turn:
    return Turn(text, SAY_HOURS[(store, day)], hours(store, day))


def ask_slots(text: str, service: str, day: str) -> Turn:
    return Turn(text, SAY_SLOTS[(service, day)], slots(service, day))


# --------------------------------------------------------------------------
# The calls. 25 tool turns over 9 distinct calls of the API; 6 turns without.
# --------------------------------------------------------------------------
CALLS: list[Call] = [
    Call("tools-01", "en-us+m3", "wideband", 25, [
        ask_order("Hi, I'm calling about order 48152.", "48152"),
        ask_hours("Is the downtown store open on Saturday?", "downtown", "saturday"),
        Turn("Thanks, bye.", "You're welcome. Goodbye!"),
    ]),
    Call("tools-02", "en-gb+f2", "telephone", 22, [
        ask_order("Where is my order 50382?", "50382"),
        ask_order("And what about order 48152?", "48152"),
    ]),
    Call("tools-03", "en-us+f3", "wideband", 28, [
        ask_slots("Can I book a design consultation on Friday?",
                  "design_consultation", "friday"),
        ask_order("Also, did order 31977 arrive?", "31977"),
    ]),
    Call("tools-04", "en-gb-x-rp+m1", "telephone", 20, [
        ask_hours("When does the riverside store close on Saturday?",
                  "riverside", "saturday"),
        ask_order("Can you check order 62045?", "62045"),
        Turn("Okay, thank you.", "You're welcome."),
    ]),
    Call("tools-05", "en-us+m1", "wideband", 24, [
        ask_order("I want to check on order 48152.", "48152"),
        ask_hours("Are you open downtown on Sunday?", "downtown", "sunday"),
    ]),
    Call("tools-06", "en-us+f2", "telephone", 23, [
        ask_order("Is order 62045 still on its way?", "62045"),
        ask_slots("Can someone assemble it on Monday?", "furniture_assembly", "monday"),
        Turn("The afternoon slot, please.",
             "Great, furniture assembly is booked for Monday at 1:30 p.m."),
    ]),
    Call("tools-07", "en-gb+m2", "wideband", 27, [
        ask_hours("When does the downtown store open on Saturday?",
                  "downtown", "saturday"),
        ask_order("And where is order 50382?", "50382"),
        Turn("That's all, thanks.", "Thanks for calling. Goodbye!"),
    ]),
    Call("tools-08", "en-us+f4", "telephone", 21, [
        ask_order("Was order 31977 delivered?", "31977"),
        ask_slots("I'd like a design consultation this Friday.",
                  "design_consultation", "friday"),
        Turn("Two p.m. works.",
             "Done. Your design consultation is booked for Friday at 2 p.m."),
    ]),
    Call("tools-09", "en-us+m4", "wideband", 26, [
        ask_order("Hello, any news on order 48152?", "48152"),
        ask_hours("Is the riverside store open late on Saturday?",
                  "riverside", "saturday"),
    ]),
    Call("tools-10", "en-gb+f3", "telephone", 24, [
        ask_slots("Do you have assembly slots on Monday?", "furniture_assembly", "monday"),
        ask_order("My order number is 62045.", "62045"),
        Turn("Thanks.", "Anytime."),
    ]),
    Call("tools-11", "en-us+m2", "wideband", 22, [
        ask_order("Has order 50382 shipped yet?", "50382"),
        ask_hours("What are the downtown hours on Sunday?", "downtown", "sunday"),
    ]),
    Call("tools-12", "en-us+f1", "telephone", 25, [
        ask_order("I'm checking on order 48152 again.", "48152"),
        ask_order("And order 31977 too.", "31977"),
        ask_slots("Is Friday still free for a design consultation?",
                  "design_consultation", "friday"),
    ], speed=185),
]


def die(msg: str) -> None:
    print(f"generate_tools: ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


def tool_json(tool: Tool) -> dict:
    return {"name": tool.name, "arguments": tool.arguments, "result": tool.result}


def cache_stats(calls: list[Call]) -> tuple[int, int, int]:
    """(tool turns, distinct name+arguments, repeats): a cache that keeps every result
    for the whole run hits at most `repeats` times in one pass over the calls."""
    keys = [(t.tool.name, json.dumps(t.tool.arguments, sort_keys=True))
            for c in calls for t in c.turns if t.tool]
    return len(keys), len(set(keys)), len(keys) - len(set(keys))


def check(entries: list[dict], out_dir: Path) -> None:
    """Every tool turn names a defined function with arguments its schema allows."""
    specs = {t["name"]: t["parameters"] for t in TOOLS}
    for e in entries:
        for t in e["turns"]:
            tool = t.get("tool")
            if tool is None:
                continue
            params = specs.get(tool["name"]) or die(f"{e['id']}: unknown tool {tool['name']}")
            props = params["properties"]
            for k, v in tool["arguments"].items():
                if k not in props:
                    die(f"{e['id']}: {tool['name']} has no parameter {k}")
                if "enum" in props[k] and v not in props[k]["enum"]:
                    die(f"{e['id']}: {tool['name']}.{k} = {v!r} is not allowed")
            missing = set(params["required"]) - set(tool["arguments"])
            if missing:
                die(f"{e['id']}: {tool['name']} misses {sorted(missing)}")
    # The smoke checks (soxi, turn bounds, the manifest schema, which describes `tool`); the
    # tools were checked above against tools.json.
    smoke.check_manifest(out_dir, entries)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "datasets" / "tools")
    args = ap.parse_args()
    for tool in ("espeak-ng", "sox", "soxi"):
        if shutil.which(tool) is None:
            die(f"{tool} not found; apt-get install espeak-ng sox")

    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.wav"):
        old.unlink()

    entries, reports = [], []
    with tempfile.TemporaryDirectory(prefix="latlab-tools-") as tmpd:
        for idx, call in enumerate(CALLS):
            spoken = smoke.Call(call.id, "espeak-ng", call.voice, call.band, call.snr_db,
                                [smoke.Turn(t.text, t.reply) for t in call.turns],
                                speed=call.speed, max_s=MAX_CALL_S)
            entry, report = smoke.build_call(idx, spoken, out_dir, Path(tmpd), seed=SEED)
            for turn, planned in zip(entry["turns"], call.turns):
                if planned.tool:
                    turn["tool"] = copy.deepcopy(tool_json(planned.tool))
            entries.append(entry)
            reports.append(report)

    with (out_dir / "manifest.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n")
    with (out_dir / "tools.json").open("w", encoding="utf-8", newline="\n") as f:
        json.dump(TOOLS, f, indent=2)
        f.write("\n")
    check(entries, out_dir)

    for r in reports:
        turns = "  ".join(f"{s}-{e}" for s, e in r["spans"])
        print(f"{r['id']:9} {r['dur_s']:6.2f} s {r['band']:9} snr {r['snr']:5.1f}  {turns}")
    tool_turns, distinct, repeats = cache_stats(CALLS)
    total = sum(p.stat().st_size for p in out_dir.iterdir() if p.is_file())
    print(f"\n{len(entries)} calls, {sum(len(e['turns']) for e in entries)} turns, "
          f"{tool_turns} tool turns over {distinct} distinct calls: at most {repeats} cache "
          f"hits ({repeats / tool_turns:.0%}); {total} bytes ({total / 1e6:.2f} MB)")
    if total >= MAX_TOTAL_BYTES:
        die(f"dataset is {total} bytes, over the {MAX_TOTAL_BYTES} byte budget")


if __name__ == "__main__":
    main()
