#!/usr/bin/env node
// memwarden's test model server: a real llama.cpp engine (node-llama-cpp, CPU) behind the part of Ollama's API
// that memwarden uses, so that `memwarden test model --load` and the benchmarks meet real loads, real tokens and
// real memory. See README.md.
//
//   node server.mjs --model FILE.gguf [--model ...] [--models-dir DIR] [--listen HOST:PORT] [--threads 1]
//                   [--ctx 2048] [--no-mmap] [--num-predict 128] [--keep-alive 5m]
//
// Prints "listening http://HOST:PORT" when ready (port 0 picks one). Model names are the file's base name with
// ":latest". EOS is never sampled, so a request's eval_count is exactly its num_predict.
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import crypto from "node:crypto";
import {parseArgs} from "node:util";
import {getLlama, readGgufFileInfo, TokenBias} from "node-llama-cpp";

const {values: opt} = parseArgs({options: {
    model: {type: "string", multiple: true, default: []},
    "models-dir": {type: "string"},
    listen: {type: "string", default: process.env.OLLAMA_HOST || "127.0.0.1:11434"},
    threads: {type: "string", default: "1"},
    ctx: {type: "string", default: "2048"},
    "num-predict": {type: "string", default: "128"},
    "keep-alive": {type: "string", default: "5m"},
    "no-mmap": {type: "boolean", default: false},
}});

function fail(message) {
    console.error(`llm-server: ${message}`);
    process.exit(2);
}

const files = [...opt.model];
if (opt["models-dir"]) {
    for (const name of fs.readdirSync(opt["models-dir"]).sort()) {
        if (name.endsWith(".gguf")) files.push(path.join(opt["models-dir"], name));
    }
}
if (files.length === 0) fail("no model: give --model FILE.gguf or --models-dir DIR");
const listen = /^(?:http:\/\/)?(\[[^\]]+\]|[^:]*):(\d+)$/.exec(opt.listen.trim());
if (!listen) fail(`--listen: '${opt.listen}' is not HOST:PORT`);
const host = listen[1].replace(/^\[|\]$/g, "") || "0.0.0.0";

const FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 7: "Q8_0", 15: "Q4_K_M"};
const models = new Map();  // "name:latest" -> what /api/tags and /api/show say
for (const file of files) {
    const stat = fs.statSync(file);
    const info = await readGgufFileInfo(file);
    const meta = info.metadata;
    const arch = meta.general.architecture;
    const modelInfo = {"general.architecture": arch};
    let parameters = 0;
    for (const t of info.fullTensorInfo ?? info.tensorInfo ?? []) {
        parameters += t.dimensions.reduce((a, d) => a * Number(d), 1);
    }
    modelInfo["general.parameter_count"] = parameters;
    const flatten = (prefix, object) => {
        for (const [key, value] of Object.entries(object)) {
            if (typeof value === "number") modelInfo[`${prefix}.${key}`] = value;
            else if (value && typeof value === "object" && !Array.isArray(value)) flatten(`${prefix}.${key}`, value);
        }
    };
    flatten(arch, meta[arch] ?? {});
    modelInfo[`${arch}.vocab_size`] ??= meta.tokenizer?.ggml?.tokens?.length;
    const name = path.basename(file).replace(/\.gguf$/, "") + ":latest";
    const details = {parent_model: "", format: "gguf", family: arch, families: [arch],
        parameter_size: `${(parameters / 1e6).toFixed(1)}M`,
        quantization_level: FILE_TYPES[meta.general.file_type] ?? "unknown"};
    models.set(name, {name, model: name, path: file, size: stat.size, modified_at: stat.mtime.toISOString(),
        digest: crypto.createHash("sha256").update(`${path.resolve(file)}:${stat.size}:${stat.mtimeMs}`).digest("hex"),
        details, model_info: modelInfo});
}

const llama = await getLlama({gpu: false, build: "never", logLevel: "error"});
const loaded = new Map();  // name -> {model, context, sequence, bias, expires, timer}
let queue = Promise.resolve();  // loads, unloads and generations run one at a time, like one Ollama runner
const serial = (work) => (queue = queue.then(work, work));
const nanoseconds = () => process.hrtime.bigint();

// Ollama's keep_alive: a number is seconds; a string is a Go duration ("5m", "1h30m", "-1s", "0"), where a bare
// number such as "300" is an error; negative means forever and 0 unloads now. null: not a valid one.
function keepAliveMs(value, fromFlag = false) {
    if (value == null) return keepAliveMs(opt["keep-alive"], true);
    if (typeof value === "number") return value * 1e3;
    if (typeof value !== "string") return null;
    const text = value.trim();
    if (text === "0" || text === "-0" || text === "+0") return 0;
    if (fromFlag && /^-?[\d.]+$/.test(text)) return Number(text) * 1e3;  // OLLAMA_KEEP_ALIVE also takes seconds
    const m = /^([-+]?)((?:[\d.]+(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
    if (!m) return null;
    const unit = {ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3};
    let ms = 0;
    for (const part of m[2].matchAll(/([\d.]+)(ns|us|µs|ms|s|m|h)/g)) ms += Number(part[1]) * unit[part[2]];
    return m[1] === "-" ? -ms : ms;
}

function resolve(name) {
    if (typeof name !== "string" || name === "") return null;
    const full = name.includes(":") ? name : `${name}:latest`;
    return models.has(full) ? full : null;
}

async function load(name) {
    if (loaded.has(name)) return [loaded.get(name), 0n];
    const start = nanoseconds();
    const model = await llama.loadModel({modelPath: models.get(name).path, useMmap: !opt["no-mmap"], gpuLayers: 0});
    const context = await model.createContext({contextSize: Math.min(Number(opt.ctx), model.trainContextSize),
        threads: Number(opt.threads)});
    const entry = {model, context, sequence: context.getSequence(), bias: new TokenBias(model.tokenizer)};
    for (const token of [model.tokens.eos, model.tokens.eot]) if (token != null) entry.bias.set(token, "never");
    loaded.set(name, entry);
    return [entry, nanoseconds() - start];
}

async function unload(name) {
    const entry = loaded.get(name);
    if (!entry) return;
    loaded.delete(name);
    clearTimeout(entry.timer);
    await entry.context.dispose();
    await entry.model.dispose();
}

async function keep(name, ms) {
    if (ms === 0) return unload(name);
    const entry = loaded.get(name);
    clearTimeout(entry.timer);
    entry.expires = ms < 0 ? null : Date.now() + ms;
    if (ms > 0) entry.timer = setTimeout(() => serial(() => unload(name)), ms);
}

function send(res, code, body) {
    res.writeHead(code, {"content-type": "application/json"});
    res.end(JSON.stringify(body));
}

// Runs one completion: `emit(piece)` for each piece of text as it is decoded; returns the figures.
async function complete(entry, promptText, options, emit, res) {
    const tokens = entry.model.tokenize(promptText);
    if (entry.model.tokens.shouldPrependBosToken && entry.model.tokens.bos != null) tokens.unshift(entry.model.tokens.bos);
    const room = entry.context.contextSize - tokens.length;
    if (room <= 0) return {error: "the prompt is longer than the context"};
    const wanted = options.num_predict ?? Number(opt["num-predict"]);
    const limit = wanted < 0 ? room : Math.min(wanted, room);
    await entry.sequence.clearHistory();
    const out = [];
    let text = "", sent = 0, first = null;
    const evaluating = nanoseconds();
    for await (const token of entry.sequence.evaluate(tokens, {temperature: options.temperature ?? 0.8,
        topK: options.top_k ?? 40, topP: options.top_p ?? 0.9, seed: options.seed, tokenBias: entry.bias})) {
        first ??= nanoseconds();
        out.push(token);
        text = entry.model.detokenize(out);
        if (text.length > sent && !text.endsWith("\uFFFD")) {
            emit(text.slice(sent));
            sent = text.length;
        }
        if (out.length >= limit || res.destroyed) break;
    }
    const ended = nanoseconds();
    first ??= ended;
    return {text, rest: text.slice(sent), promptTokens: tokens.length, evaluating, first, ended, count: out.length};
}

async function generate(body, res) {
    const name = resolve(body.model);
    if (!name) return send(res, 404, {error: `model '${body.model}' not found, try pulling it first`});
    const keepMs = keepAliveMs(body.keep_alive);
    if (keepMs === null) return send(res, 400, {error: `invalid keep_alive '${body.keep_alive}'`});
    const started = nanoseconds();
    const head = {model: body.model, created_at: new Date().toISOString()};
    if (!body.prompt) {  // as Ollama: no prompt only loads the model, or with keep_alive 0 unloads it
        if (keepMs !== 0) await load(name);
        if (loaded.has(name)) await keep(name, keepMs);
        return send(res, 200, {...head, response: "", done: true, done_reason: keepMs === 0 ? "unload" : "load"});
    }
    const [entry, loadNs] = await load(name);
    const stream = body.stream !== false;
    let headed = false;
    const r = await complete(entry, (body.system ? `${body.system}\n\n` : "") + body.prompt, body.options ?? {},
        (piece) => {
            if (!stream) return;
            if (!headed) res.writeHead(200, {"content-type": "application/x-ndjson"});
            headed = true;
            res.write(JSON.stringify({...head, created_at: new Date().toISOString(), response: piece, done: false}) +
                "\n");
        }, res);
    if (r.error) return send(res, 400, {error: r.error});
    if (!headed) res.writeHead(200, {"content-type": stream ? "application/x-ndjson" : "application/json"});
    await keep(name, keepMs);
    res.end(JSON.stringify({...head, created_at: new Date().toISOString(), response: stream ? r.rest : r.text,
        done: true, done_reason: "length", total_duration: Number(r.ended - started), load_duration: Number(loadNs),
        prompt_eval_count: r.promptTokens, prompt_eval_duration: Number(r.first - r.evaluating),
        eval_count: r.count, eval_duration: Number(r.ended - r.first)}) + "\n");
}

// The OpenAI-compatible chat endpoint, streamed as Server-Sent Events the way llama.cpp's server sends them:
// one chat.completion.chunk per piece, a last chunk with finish_reason and llama.cpp's `timings`, the usage chunk
// when stream_options.include_usage, then "data: [DONE]". Errors are OpenAI error objects.
async function chat(body, res) {
    const name = resolve(body.model);
    const fail = (code, message, type) => send(res, code, {error: {message, type, param: null, code: null}});
    if (!name) return fail(404, `model "${body.model}" not found, try pulling it first`, "api_error");
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
        return fail(400, "messages must be a non-empty array", "invalid_request_error");
    }
    const prompt = body.messages.map((m) => String(m?.content ?? "")).join("\n\n");
    const [entry] = await load(name);
    const id = `chatcmpl-${Math.floor(Math.random() * 1e9)}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta, finish) => ({id, object: "chat.completion.chunk", created, model: body.model,
        choices: [{index: 0, delta, finish_reason: finish}]});
    const stream = body.stream === true;
    let headed = false;
    const write = (object) => {
        if (!headed) res.writeHead(200, {"content-type": "text/event-stream"});
        headed = true;
        res.write(`data: ${JSON.stringify(object)}\n\n`);
    };
    const options = {num_predict: body.max_tokens ?? body.max_completion_tokens, temperature: body.temperature,
        seed: body.seed};
    const r = await complete(entry, prompt, options, (piece) => {
        if (stream) write(chunk({role: "assistant", content: piece}, null));
    }, res);
    if (r.error) return fail(400, r.error, "invalid_request_error");
    const usage = {prompt_tokens: r.promptTokens, completion_tokens: r.count, total_tokens: r.promptTokens + r.count};
    const timings = {prompt_n: r.promptTokens, prompt_ms: Number(r.first - r.evaluating) / 1e6, predicted_n: r.count,
        predicted_ms: Number(r.ended - r.first) / 1e6};
    if (!stream) {
        return send(res, 200, {id, object: "chat.completion", created, model: body.model, usage, timings,
            choices: [{index: 0, message: {role: "assistant", content: r.text}, finish_reason: "length"}]});
    }
    write({...chunk(r.rest ? {content: r.rest} : {}, "length"), timings});
    if (body.stream_options?.include_usage) write({id, object: "chat.completion.chunk", created, model: body.model,
        choices: [], usage});
    res.end("data: [DONE]\n\n");
}

function listed(name, entry) {
    const {path: _, modified_at: __, model_info: ___, ...info} = models.get(name);
    return {...info, size: entry.model.size + entry.context.memoryUsage.ram, size_vram: 0,
        context_length: entry.context.contextSize,
        expires_at: entry.expires ? new Date(entry.expires).toISOString() : "2318-01-01T00:00:00Z"};
}

const MAX_BODY = 1 << 20;
const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => {
        body += chunk;
        if (body.length > MAX_BODY) {
            send(res, 413, {error: "request body too large"});
            req.destroy();
        }
    });
    req.on("end", async () => {
        try {
            const url = req.url.split("?")[0];
            if (url === "/") return res.end("Ollama is running");
            if (url === "/api/version") return send(res, 200, {version: "0.12.0-memwarden-llm"});
            if (url === "/api/tags") {
                return send(res, 200, {models: [...models.values()].map(({path: _, model_info: __, ...m}) => m)});
            }
            if (url === "/api/ps") return send(res, 200, {models: [...loaded].map(([n, e]) => listed(n, e))});
            if (url === "/api/show" && req.method === "POST") {
                const b = JSON.parse(body || "{}");
                const name = resolve(b.model ?? b.name);
                if (!name) return send(res, 404, {error: `model '${b.model ?? b.name}' not found`});
                const m = models.get(name);
                return send(res, 200, {license: "", modelfile: "", parameters: "", template: "{{ .Prompt }}",
                    details: m.details, model_info: m.model_info, capabilities: ["completion"],
                    modified_at: m.modified_at});
            }
            if (url === "/api/generate" && req.method === "POST") {
                const b = JSON.parse(body || "{}");
                return await serial(() => generate(b, res));
            }
            if (url === "/v1/chat/completions" && req.method === "POST") {
                const b = JSON.parse(body || "{}");
                return await serial(() => chat(b, res));
            }
            send(res, 404, {error: "not found"});
        } catch (e) {
            const message = String(e?.message ?? e);
            if (!res.headersSent) send(res, e instanceof SyntaxError ? 400 : 500, {error: message});
            else res.end(JSON.stringify({error: message}) + "\n");
        }
    });
});
server.listen(Number(listen[2]), host, () => {
    const address = server.address();
    console.log(`listening http://${host.includes(":") ? `[${host}]` : host}:${address.port}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
