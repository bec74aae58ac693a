// The official openai npm SDK against Switchyard's OpenAI-compatible REST API.
// Run by test/e2e/node_test.go with SWITCHYARD_REST_URL and SWITCHYARD_API_KEY set; the models
// (mock/*, up/*, the alias "chat") are the ones test/e2e/harness_test.go configures.
import assert from "node:assert/strict";
import { test } from "node:test";
import OpenAI, { APIError, AuthenticationError, BadRequestError, NotFoundError } from "openai";

const baseURL = `${env("SWITCHYARD_REST_URL")}/v1`;
const apiKey = env("SWITCHYARD_API_KEY");

// SDK retries are off so every error the gateway answers is seen as it is.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

const messages = (text) => [
  { role: "system", content: "Be brief." },
  { role: "user", content: text },
];

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a city.",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

test("chat", async () => {
  const res = await client.chat.completions.create({ model: "chat", messages: messages("hello from node"), max_tokens: 16 });
  assert.equal(res.object, "chat.completion");
  assert.equal(res.choices[0].message.content, "pong: hello from node");
  assert.equal(res.choices[0].finish_reason, "stop");
  assert.equal(res.usage.total_tokens, 13);
});

test("streamed chat with include_usage", async () => {
  for (const [model, want] of [["chat", "pong: stream these words"], ["mock/echo", "stream these words"]]) {
    const stream = await client.chat.completions.create({
      model, messages: messages("stream these words"), stream: true, stream_options: { include_usage: true },
    });
    let text = "", chunks = 0, finish, usage;
    for await (const chunk of stream) {
      chunks++;
      for (const c of chunk.choices) {
        text += c.delta.content ?? "";
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, want, model);
    assert.equal(finish, "stop", model);
    assert.ok(chunks >= 3, `${model}: ${chunks} chunks`);
    assert.ok(usage?.total_tokens > 0, `${model}: usage ${JSON.stringify(usage)}`);
  }
});

test("tool call", async () => {
  const res = await client.chat.completions.create({
    model: "mock/tools", messages: messages("weather in Paris?"), tools: [weatherTool], tool_choice: "auto",
  });
  const [call, ...rest] = res.choices[0].message.tool_calls ?? [];
  assert.equal(rest.length, 0);
  assert.equal(res.choices[0].finish_reason, "tool_calls");
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "get_weather");
  assert.ok(call.id);
  const args = JSON.parse(call.function.arguments);
  assert.equal(typeof args, "object");

  // The follow-up turn carrying the tool result goes through too.
  const follow = await client.chat.completions.create({
    model: "mock/tools", tools: [weatherTool],
    messages: [...messages("weather in Paris?"), res.choices[0].message,
      { role: "tool", tool_call_id: call.id, content: '{"temperature_c":18}' }],
  });
  assert.equal(follow.choices.length, 1);
});

test("embeddings: the SDK's default base64 decodes to the float answer", async () => {
  // Record what the SDK asks for, to be sure the default request really is base64.
  const formats = [];
  const recording = new OpenAI({
    baseURL, apiKey, maxRetries: 0,
    fetch: (url, init) => {
      formats.push(JSON.parse(init.body).encoding_format);
      return fetch(url, init);
    },
  });
  const input = ["alpha", "bravo charlie", "delta echo foxtrot"];
  for (const model of ["mock/embed", "up/emb"]) {
    const float = await recording.embeddings.create({ model, input, encoding_format: "float" });
    const dflt = await recording.embeddings.create({ model, input });
    assert.equal(dflt.data.length, input.length, model);
    for (const [i, d] of dflt.data.entries()) {
      assert.equal(d.index, i);
      assert.ok(d.embedding.length > 0, `${model}: empty vector ${i}`);
      // base64 carries float32; the float answer is the shortest decimal of the same float32.
      assert.deepEqual(d.embedding, float.data[i].embedding.map(Math.fround), `${model}: vector ${i}`);
    }
  }
  assert.deepEqual(formats, ["float", "base64", "float", "base64"]);

  // up/emb is the fake upstream: [len, first byte, 0.5, -0.25], in input order.
  const up = await client.embeddings.create({ model: "up/emb", input });
  assert.deepEqual(up.data.map((d) => d.embedding), input.map((s) => [s.length, s.charCodeAt(0), 0.5, -0.25]));
});

test("models list", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  for (const want of ["mock/echo", "mock/tools", "mock/embed", "chat"]) {
    assert.ok(ids.includes(want), `models ${ids} lack ${want}`);
  }
});

test("error classes", async (t) => {
  const cases = [
    { name: "bad key", key: "sk-wrong", body: {}, cls: AuthenticationError, status: 401, type: "authentication_error" },
    { name: "unknown model", body: { model: "nope/missing" }, cls: NotFoundError, status: 404, type: "invalid_request_error" },
    { name: "bad temperature", body: { temperature: 3 }, cls: BadRequestError, status: 400, type: "invalid_request_error", param: "temperature" },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const cl = c.key ? new OpenAI({ baseURL, apiKey: c.key, maxRetries: 0 }) : client;
      const req = cl.chat.completions.create({ model: "mock/echo", messages: messages("hi"), ...c.body });
      await assert.rejects(req, (err) => {
        assert.ok(err instanceof c.cls, `got ${err?.constructor?.name}: ${err}`);
        assert.equal(err.status, c.status);
        assert.equal(err.type, c.type);
        assert.ok(err.message);
        if (c.param) assert.equal(err.param, c.param);
        return true;
      });
    });
  }
});

test("mid-stream upstream failure surfaces as an APIError after the partial text", async () => {
  const stream = await client.chat.completions.create({ model: "up/reset-mid", messages: messages("x"), stream: true });
  let text = "";
  await assert.rejects(
    async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    },
    (err) => {
      assert.ok(err instanceof APIError, `got ${err?.constructor?.name}: ${err}`);
      assert.equal(err.type, "api_error");
      assert.ok(err.message);
      return true;
    },
  );
  assert.equal(text, "partial ");
});

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through test/e2e/node_test.go`);
  return v;
}
