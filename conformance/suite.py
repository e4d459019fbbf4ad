"""Client conformance of sluice serve's tool calling with the official
Python openai package, against a random-weight model (calls forced; see
suite.mjs). Run by conformance_test.go with SLUICE_URL and SLUICE_MODEL."""
import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["SLUICE_URL"], api_key="unused", max_retries=0)
model = os.environ["SLUICE_MODEL"]
tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]}},
    "required": ["city"], "additionalProperties": False}}}]
messages = [{"role": "user", "content": "What is the weather in Paris?"}]


def check_args(args):
    assert json.loads(args)["city"] in ("Paris", "Oslo", "Lima"), args


def required():
    r = client.chat.completions.create(model=model, messages=messages, tools=tools, tool_choice="required", max_tokens=150, seed=3)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c.finish_reason
    tc = c.message.tool_calls[0]
    assert tc.id.startswith("call_") and tc.type == "function" and tc.function.name == "get_weather", tc
    check_args(tc.function.arguments)


def streamed_named():
    choice = {"type": "function", "function": {"name": "get_weather"}}
    with client.chat.completions.stream(model=model, messages=messages, tools=tools, tool_choice=choice, max_tokens=150, seed=3) as s:
        r = s.get_final_completion()
    c = r.choices[0]
    assert c.finish_reason == "tool_calls", c.finish_reason
    assert len(c.message.tool_calls) == 1 and c.message.tool_calls[0].function.name == "get_weather", c.message
    check_args(c.message.tool_calls[0].function.arguments)


def unknown_tool():
    try:
        client.chat.completions.create(model=model, messages=messages, tools=tools, max_tokens=5,
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    except openai.BadRequestError as e:
        assert e.status_code == 400
        return
    raise AssertionError("accepted")


def round_trip():
    r = client.chat.completions.create(model=model, max_tokens=5, tools=tools, messages=messages + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c":18}'}])
    assert len(r.choices) == 1


failed = 0
checks = [("python openai: tool_choice required", required), ("python openai: streaming, named function", streamed_named),
          ("python openai: unknown tool is a 400", unknown_tool), ("python openai: round trip", round_trip)]
for name, fn in checks:
    try:
        fn()
        print("PASS", name)
    except Exception as e:  # report every check, then fail
        failed += 1
        print("FAIL", name + ":", repr(e))
print(f"{len(checks) - failed}/{len(checks)} passed")
sys.exit(1 if failed else 0)
