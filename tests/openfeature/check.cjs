// Drives the pinned OpenFeature JavaScript clients against a flagd, one JSON line at a time.
//
// Usage: NODE_PATH=<node_modules> node check.cjs rpc|in-process|ofrep HOST PORT. The provider
// gets only the host, the port and the resolver type (OFREP: its base URL). Prints
// {"ready": true} once the provider is ready, then answers each stdin line (see
// crates/flagd/tests/openfeature_clients.rs) with one line. CommonJS, so that NODE_PATH finds
// the clients installed under target/.
const readline = require('node:readline');
const { OpenFeature } = require('@openfeature/server-sdk');

const READY_TIMEOUT_MS = 10_000;

function provider(mode, host, port) {
  if (mode === 'ofrep') {
    const { OFREPProvider } = require('@openfeature/ofrep-provider');
    return new OFREPProvider({ baseUrl: `http://${host}:${port}` });
  }
  const { FlagdProvider } = require('@openfeature/flagd-provider');
  return new FlagdProvider({ host, port, resolverType: mode });
}

async function ask(client, question) {
  // JavaScript has one number type: int and float both ask for a number.
  const getter = {
    bool: 'getBooleanDetails',
    string: 'getStringDetails',
    int: 'getNumberDetails',
    float: 'getNumberDetails',
    object: 'getObjectDetails',
  }[question.type];
  const details = await client[getter](question.flag, question.default, question.context ?? {});
  return {
    value: details.value,
    variant: details.variant ?? null,
    reason: details.reason ?? null,
    error_code: details.errorCode ?? null,
  };
}

async function awaitValue(client, wanted) {
  const start = Date.now();
  for (;;) {
    const { value } = await ask(client, wanted.question);
    const seen = JSON.stringify(value) === JSON.stringify(wanted.expect);
    if (seen || Date.now() - start > wanted.timeout_ms) return { seen, ms: Date.now() - start };
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function main() {
  const [mode, host, port] = process.argv.slice(2);
  const timeout = new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`provider not ready after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS).unref(),
  );
  await Promise.race([OpenFeature.setProviderAndWait(provider(mode, host, Number(port))), timeout]);
  const client = OpenFeature.getClient();
  console.log(JSON.stringify({ ready: true }));
  for await (const line of readline.createInterface({ input: process.stdin })) {
    const request = JSON.parse(line);
    const answer = request.ask
      ? { answers: await Promise.all(request.ask.map((question) => ask(client, question))) }
      : await awaitValue(client, request.await);
    console.log(JSON.stringify(answer));
  }
  await OpenFeature.close();
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
