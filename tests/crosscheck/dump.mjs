// Parses GGUF files with @huggingface/gguf (an independent parser) and prints what it read as JSON, in a form
// that loses nothing, for tests/crosscheck/gguf_crosscheck.cpp to compare with memwarden's reader.
//
//   node dump.mjs FILE.gguf...   ->   [{"path": ..., "version": 3, "metadata": [...], "tensors": [...]}, ...]
//
// Values:      a number that is a safe integer (and not -0) as a JSON number; any other number as
//              {"f64": "<the double's 64 bits in hex>"} (a float32 is the double it widens to, exactly);
//              a BigInt (u64, i64, counts, dims, offsets) as {"bigint": "<decimal>"}; booleans, strings and
//              arrays as themselves (nested arrays nest).
// Metadata:    [{"key", "type": <gguf_type>, "element_type": <gguf_type, arrays only>, "value"}], in the order
//              the package's object gives them; "distinct_keys" counts them.
// Tensors:     [{"name", "dims": [<bigint>...], "type": <ggml_type>, "offset": <bigint>}] in file order.
// Exit status: 0, or 1 with the package's error on stderr.
import { gguf } from "@huggingface/gguf";

// The package puts these three in front of the file's keys.
const k_synthetic = new Set(["version", "tensor_count", "kv_count"]);

function f64_bits(v) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  return view.getBigUint64(0).toString(16).padStart(16, "0");
}

function encode(v) {
  if (typeof v === "bigint") {
    return { bigint: v.toString() };
  }
  if (typeof v === "number") {
    return Number.isSafeInteger(v) && !Object.is(v, -0) ? v : { f64: f64_bits(v) };
  }
  if (typeof v === "boolean" || typeof v === "string") {
    return v;
  }
  if (Array.isArray(v)) {
    return v.map(encode);
  }
  throw new Error(`unexpected value of type ${typeof v}`);
}

async function dump(path) {
  const { typedMetadata, tensorInfos, tensorDataOffset } = await gguf(path, {
    allowLocalFile: true,
    typedMetadata: true,
  });
  const metadata = [];
  for (const [key, entry] of Object.entries(typedMetadata)) {
    if (k_synthetic.has(key)) {
      continue;
    }
    const out = { key, type: entry.type };
    if (entry.subType !== undefined) {
      out.element_type = entry.subType;
    }
    out.value = encode(entry.value);
    metadata.push(out);
  }
  return {
    path,
    version: typedMetadata.version.value,
    tensor_count: encode(typedMetadata.tensor_count.value),
    kv_count: encode(typedMetadata.kv_count.value),
    distinct_keys: metadata.length,
    metadata,
    tensors: tensorInfos.map((t) => ({
      name: t.name,
      dims: t.shape.map(encode),
      type: t.dtype,
      offset: encode(t.offset),
    })),
    data_offset: encode(tensorDataOffset),
  };
}

const paths = process.argv.slice(2);
if (paths.length === 0) {
  process.stderr.write("usage: node dump.mjs FILE.gguf...\n");
  process.exitCode = 2;
} else {
  try {
    const files = [];
    for (const path of paths) {
      files.push(
        await dump(path).catch((err) => {
          throw new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`);
        }),
      );
    }
    process.stdout.write(JSON.stringify(files));
    process.stdout.write("\n");
  } catch (err) {
    process.stderr.write(`dump.mjs: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
