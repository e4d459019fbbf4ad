// Client conformance of sluice serve's tool calling: the official openai
// SDK, the Vercel AI SDK and LangChain JS against a random-weight model.
// Run by conformance_test.go with SLUICE_URL (…/v1) and SLUICE_MODEL set.
// Random weights write no tools on their own, so calls are forced
// (tool_choice required or a named function): the point is that every
// client accepts sluice's responses as they are.
import OpenAI from "openai";
import { generateText, streamText, generateObject, tool, stepCountIs } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { tool as lcTool } from "@langchain/core/tools";
import { z } from "zod";

const baseURL = process.env.SLUICE_URL;
const model = process.env.SLUICE_MODEL;
const seed = 3;

const weatherParams = {
  type: "object",
  properties: { city: { type: "string", enum: ["Paris", "Oslo", "Lima"] } },
  required: ["city"],
  additionalProperties: false,
};
const tools = [{ type: "function", function: { name: "get_weather", description: "Weather of a city", parameters: weatherParams } }];
const citySchema = z.object({ city: z.enum(["Paris", "Oslo", "Lima"]) });
const messages = [{ role: "user", content: "What is the weather in Paris?" }];

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function checkArgs(args) {
  const a = typeof args === "string" ? JSON.parse(args) : args;
  assert(["Paris", "Oslo", "Lima"].includes(a.city), `arguments ${JSON.stringify(args)}`);
}

const openai = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
const provider = createOpenAICompatible({ name: "sluice", baseURL, apiKey: "unused", supportsStructuredOutputs: true });
// A seed keeps the sampled output reproducible; one call per answer keeps a
// random-weight model from writing calls until max_tokens cuts the last.
const lc = () => new ChatOpenAI({ model, apiKey: "unused", configuration: { baseURL }, maxTokens: 150, temperature: 1, maxRetries: 0, modelKwargs: { seed } });

const checks = {
  "openai: tool_choice required": async () => {
    const r = await openai.chat.completions.create({ model, messages, tools, tool_choice: "required", max_tokens: 150, seed });
    const c = r.choices[0];
    assert(c.finish_reason === "tool_calls", `finish_reason ${c.finish_reason}`);
    const tc = c.message.tool_calls[0];
    assert(tc.id.startsWith("call_") && tc.type === "function" && tc.function.name === "get_weather", JSON.stringify(tc));
    checkArgs(tc.function.arguments);
  },
  "openai: streaming, named function": async () => {
    const stream = openai.chat.completions.stream({ model, messages, tools, max_tokens: 150, seed,
      tool_choice: { type: "function", function: { name: "get_weather" } } });
    const r = await stream.finalChatCompletion();
    const c = r.choices[0];
    assert(c.finish_reason === "tool_calls", `finish_reason ${c.finish_reason}`);
    assert(c.message.tool_calls.length === 1 && c.message.tool_calls[0].function.name === "get_weather", JSON.stringify(c.message));
    checkArgs(c.message.tool_calls[0].function.arguments);
  },
  "openai: tool_choice naming an unknown tool is a 400": async () => {
    try {
      await openai.chat.completions.create({ model, messages, tools, max_tokens: 5, tool_choice: { type: "function", function: { name: "nope" } } });
    } catch (e) {
      assert(e.status === 400 && e.param === "tool_choice", `status ${e.status} param ${e.param}`);
      return;
    }
    throw new Error("accepted");
  },
  "openai: round trip (content null + tool_calls, then a tool message)": async () => {
    const r = await openai.chat.completions.create({ model, max_tokens: 5, tools, messages: [
      ...messages,
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: '{"temp_c":18}' },
    ] });
    assert(r.choices.length === 1, "no choice");
  },
  "vercel: generateText, a 2-step loop executing the tool": async () => {
    let executed = 0;
    const r = await generateText({
      model: provider(model), messages, maxOutputTokens: 150, seed, toolChoice: "required", stopWhen: stepCountIs(2),
      tools: { get_weather: tool({ description: "Weather of a city", inputSchema: citySchema, execute: async ({ city }) => { executed++; return { city, temp_c: 18 }; } }) },
    });
    assert(r.steps.length === 2 && executed >= 1, `steps ${r.steps.length}, executed ${executed}`);
    assert(r.steps[0].toolCalls.length >= 1 && r.steps[0].toolResults.length >= 1, "no tool call/result in step 1");
    checkArgs(r.steps[0].toolCalls[0].input);
  },
  "vercel: streamText with tools": async () => {
    const r = streamText({
      model: provider(model), messages, maxOutputTokens: 150, seed, toolChoice: { type: "tool", toolName: "get_weather" },
      tools: { get_weather: tool({ description: "Weather of a city", inputSchema: citySchema }) },
    });
    const calls = await r.toolCalls;
    assert(calls.length === 1 && calls[0].toolName === "get_weather", JSON.stringify(calls));
    checkArgs(calls[0].input);
    assert((await r.finishReason) === "tool-calls", `finishReason ${await r.finishReason}`);
  },
  "vercel: generateObject": async () => {
    const r = await generateObject({ model: provider(model), schema: citySchema, prompt: "A city", maxOutputTokens: 100, seed });
    checkArgs(r.object);
  },
  "langchain: bindTools, tool_choice required": async () => {
    const t = lcTool(async ({ city }) => city, { name: "get_weather", description: "Weather of a city", schema: citySchema });
    const ai = await lc().bindTools([t], { tool_choice: "required", parallel_tool_calls: false }).invoke("What is the weather in Paris?");
    assert(ai.tool_calls.length >= 1 && ai.tool_calls[0].name === "get_weather", JSON.stringify(ai.tool_calls));
    checkArgs(ai.tool_calls[0].args);
  },
  "langchain: bindTools, streaming": async () => {
    const t = lcTool(async ({ city }) => city, { name: "get_weather", description: "Weather of a city", schema: citySchema });
    let full;
    for await (const chunk of await lc().bindTools([t], { tool_choice: "get_weather", parallel_tool_calls: false }).stream("Weather in Paris?")) {
      full = full ? full.concat(chunk) : chunk;
    }
    assert(full.tool_calls.length === 1 && full.tool_calls[0].name === "get_weather", JSON.stringify(full.tool_calls));
    checkArgs(full.tool_calls[0].args);
  },
};
for (const method of ["functionCalling", "jsonSchema"]) {
  checks[`langchain: withStructuredOutput (${method})`] = async () => {
    const out = await lc().withStructuredOutput(citySchema, { method, name: "city" }).invoke("A city, as JSON");
    checkArgs(out);
  };
}

let failed = 0;
for (const [name, fn] of Object.entries(checks)) {
  try {
    await fn();
    console.log(`PASS ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack.split("\n").slice(0, 3).join(" | ") : e}`);
  }
}
console.log(`${Object.keys(checks).length - failed}/${Object.keys(checks).length} passed`);
process.exit(failed ? 1 : 0);
