// A generated Node gRPC client (protoc-gen-es + Connect's gRPC transport over HTTP/2) against
// Switchyard's gRPC API. The code under gen/ is generated from proto/switchyard by buf.gen.yaml.
// Run by test/e2e/node_test.go with SWITCHYARD_GRPC_ADDR and SWITCHYARD_API_KEY set.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ChatService } from "./gen/switchyard/v1/chat_pb.js";
import { ModelService } from "./gen/switchyard/v1/models_pb.js";
import { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

const transport = createGrpcTransport({ baseUrl: `http://${env("SWITCHYARD_GRPC_ADDR")}` });
const chat = createClient(ChatService, transport);
const models = createClient(ModelService, transport);
const headers = { authorization: `Bearer ${env("SWITCHYARD_API_KEY")}` };

const user = (text) => ({ role: "user", content: { content: { case: "text", value: text } } });

test("unary CreateChatCompletion", async () => {
  let route;
  const res = await chat.createChatCompletion(
    { model: "chat", messages: [user("over grpc from node")] },
    { headers, onHeader: (h) => { route = h.get("x-switchyard-route"); } },
  );
  assert.equal(res.choices[0].message.content, "pong: over grpc from node");
  assert.equal(res.choices[0].finishReason, "stop");
  assert.equal(res.usage.totalTokens, 13);
  assert.equal(route, "up/gpt-ok");
});

test("server-streaming StreamChatCompletion", async () => {
  const stream = chat.streamChatCompletion(
    { request: { model: "mock/echo", messages: [user("one two three four five six")], streamOptions: { includeUsage: true } } },
    { headers },
  );
  let text = "", chunks = 0, usage;
  for await (const chunk of stream) {
    chunks++;
    for (const c of chunk.choices) text += c.delta?.content ?? "";
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, "one two three four five six");
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.ok(usage?.totalTokens > 0, `usage ${JSON.stringify(usage)}`);
});

test("ListModels", async () => {
  const res = await models.listModels({}, { headers });
  const ids = res.data.map((m) => m.id);
  for (const want of ["mock/echo", "mock/tools", "mock/embed", "chat"]) {
    assert.ok(ids.includes(want), `models ${ids} lack ${want}`);
  }
  assert.equal(res.data.find((m) => m.id === "chat").target, "up/gpt-ok");
});

test("errors carry a gRPC code and google.rpc.ErrorInfo", async (t) => {
  const cases = [
    { name: "no key", opts: {}, model: "chat", code: Code.Unauthenticated, cls: "authentication", http: "401" },
    { name: "bad key", opts: { headers: { authorization: "Bearer sk-wrong" } }, model: "chat", code: Code.Unauthenticated, cls: "authentication", http: "401" },
    { name: "unknown model", opts: { headers }, model: "nope/x", code: Code.NotFound, cls: "parameter", http: "404" },
    { name: "upstream 429", opts: { headers }, model: "up/err-429", code: Code.ResourceExhausted, cls: "quota", http: "429" },
  ];
  for (const c of cases) {
    await t.test(c.name, async () => {
      const call = chat.createChatCompletion({ model: c.model, messages: [user("hi")] }, c.opts);
      await assert.rejects(call, (err) => {
        assert.ok(err instanceof ConnectError, `got ${err}`);
        assert.equal(err.code, c.code, `got ${Code[err.code]}: ${err.message}`);
        // Connect decodes grpc-status-details-bin; findDetails picks the ErrorInfo out of it.
        const [info] = err.findDetails(ErrorInfoSchema);
        assert.ok(info, `no ErrorInfo in ${JSON.stringify(err.details)}`);
        assert.equal(info.metadata.class, c.cls);
        assert.equal(info.metadata.http_status, c.http);
        assert.ok(info.reason);
        return true;
      });
    });
  }
});

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; run this through test/e2e/node_test.go`);
  return v;
}
