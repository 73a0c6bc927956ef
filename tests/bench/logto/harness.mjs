// Runs Logto's own @logto/connector-huggingface against the Hub sandbox, on the same terms as
// `connector-bench worker` (see tests/bench/src/signin.rs), and prints one JSON line: the same
// fields as the Rust `Sample`.
//
//   node harness.mjs --endpoint http://127.0.0.1:PORT --concurrency 64 --count 10000 \
//     --warmup 1000 --batch 1000 --client-id ID --client-secret SECRET --scope "profile email"
//   node harness.mjs --load      # only: how long importing and creating the connector takes
//
// The connector's endpoints are fixed to https://huggingface.co. Its HTTP client (ky) builds a
// `new globalThis.Request(url)` and calls `globalThis.fetch` at request time, so both are
// wrapped here, before the connector is imported, to send those URLs to the sandbox instead.
// Node's fetch (undici) keeps connections alive by default.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    endpoint: { type: 'string', default: 'http://127.0.0.1:0' },
    concurrency: { type: 'string', default: '64' },
    count: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '0' },
    batch: { type: 'string', default: '1000' },
    'client-id': { type: 'string', default: 'bench-client' },
    'client-secret': { type: 'string', default: 'bench-secret' },
    scope: { type: 'string', default: 'profile email' },
    load: { type: 'boolean', default: false },
  },
});

const HUB = 'https://huggingface.co';
const SANDBOX = args.endpoint.replace(/\/$/, '');
const REDIRECT_URI = 'http://localhost:3000/callback';
const rewrite = (url) => (url.startsWith(HUB) ? SANDBOX + url.slice(HUB.length) : url);

const NativeRequest = globalThis.Request;
globalThis.Request = class Request extends NativeRequest {
  constructor(input, init) {
    super(typeof input === 'string' ? rewrite(input) : input instanceof URL ? rewrite(input.href) : input, init);
  }
};
const nativeFetch = globalThis.fetch;
globalThis.fetch = (input, init) =>
  nativeFetch(typeof input === 'string' ? rewrite(input) : input instanceof URL ? rewrite(input.href) : input, init);

const loadStart = process.hrtime.bigint();
const { default: createConnector } = await import('@logto/connector-huggingface');
const config = { clientId: args['client-id'], clientSecret: args['client-secret'], scope: args.scope };
const connector = await createConnector({ getConfig: async () => config });
const loadMs = Number(process.hrtime.bigint() - loadStart) / 1e6;
if (args.load) {
  console.log(JSON.stringify({ load_ms: loadMs }));
  process.exit(0);
}

/** The browser: follows the authorization URI to the sandbox, which approves with a 303. */
async function approve(uri) {
  const response = await nativeFetch(rewrite(uri), { redirect: 'manual' });
  await response.arrayBuffer();
  const location = response.headers.get('location');
  if (!location) throw new Error(`no 303 from the sandbox: ${response.status}`);
  return Object.fromEntries(new URL(location).searchParams);
}

/** Starts sign-in `n` up to the browser's return (not measured). */
async function prepare(n) {
  let session = {};
  const uri = await connector.getAuthorizationUri(
    {
      state: `state-${n}`,
      redirectUri: REDIRECT_URI,
      connectorId: 'huggingface',
      connectorFactoryId: 'huggingface-universal',
      jti: `jti-${n}`,
      headers: { userAgent: 'connector-bench' },
    },
    async (value) => {
      session = { ...session, ...value };
    },
  );
  return { data: await approve(uri), session };
}

/** `f(i)` for every i < n, `limit` at a time. */
async function pool(n, limit, f) {
  let next = 0;
  const results = new Array(n);
  const worker = async () => {
    for (let i = next++; i < n; i = next++) results[i] = await f(i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return results;
}

async function batch(n, sample) {
  const prepared = await pool(n, 16, prepare);
  const cpu = process.cpuUsage();
  const switches = contextSwitches();
  const start = process.hrtime.bigint();
  const outcomes = await pool(n, Number(args.concurrency), async (i) => {
    const { data, session } = prepared[i];
    try {
      const user = await connector.getUserInfo(data, async () => session);
      return user.id ? null : 'empty user id';
    } catch (error) {
      return String(error?.code ?? '') + ' ' + String(error?.message ?? error);
    }
  });
  sample.wall_secs += Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  sample.cpu_us += used.user + used.system;
  sample.switches += contextSwitches() - switches;
  for (const outcome of outcomes) {
    if (outcome === null) sample.ok += 1;
    else {
      sample.errors += 1;
      sample.first_error ??= outcome;
    }
  }
}

async function run(total, sample) {
  for (let left = total; left > 0; ) {
    const n = Math.min(left, Number(args.batch));
    await batch(n, sample);
    left -= n;
  }
}

function contextSwitches() {
  const usage = process.resourceUsage();
  return usage.voluntaryContextSwitches + usage.involuntaryContextSwitches;
}

function memory() {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? 0);
  return { rss_kib: field('VmRSS'), peak_kib: field('VmHWM') };
}

const empty = () => ({ ok: 0, errors: 0, first_error: null, wall_secs: 0, cpu_us: 0, switches: 0 });
await run(Number(args.warmup), empty());
const sample = empty();
await run(Number(args.count), sample);
sample.memory = memory();
console.log(JSON.stringify(sample));
