"""Drives the pinned OpenFeature Python clients against a flagd, one JSON line at a time.

Usage: check.py rpc|in-process|ofrep HOST PORT. The provider gets only the host, the port and
the resolver type (OFREP: its base URL). Prints {"ready": true} once the provider is ready,
then answers each stdin line (see crates/flagd/tests/openfeature_clients.rs) with one line.
"""

import json
import sys
import time

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.provider import ProviderStatus

READY_TIMEOUT_S = 10


def provider(mode, host, port):
    if mode == "ofrep":
        from openfeature.contrib.provider.ofrep import OFREPProvider

        return OFREPProvider(f"http://{host}:{port}")
    from openfeature.contrib.provider.flagd import FlagdProvider
    from openfeature.contrib.provider.flagd.config import ResolverType

    resolver = {"rpc": ResolverType.RPC, "in-process": ResolverType.IN_PROCESS}[mode]
    return FlagdProvider(host=host, port=port, resolver_type=resolver)


def wait_ready(client):
    deadline = time.monotonic() + READY_TIMEOUT_S
    while client.get_provider_status() != ProviderStatus.READY:
        if time.monotonic() > deadline:
            raise SystemExit(f"provider not ready after {READY_TIMEOUT_S}s: {client.get_provider_status()}")
        time.sleep(0.01)


def ask(client, question):
    getter = {
        "bool": client.get_boolean_details,
        "string": client.get_string_details,
        "int": client.get_integer_details,
        "float": client.get_float_details,
        "object": client.get_object_details,
    }[question["type"]]
    context = dict(question.get("context") or {})
    targeting_key = context.pop("targetingKey", None)
    details = getter(question["flag"], question["default"], EvaluationContext(targeting_key, context))
    return {
        "value": details.value,
        "variant": details.variant,
        "reason": getattr(details.reason, "value", details.reason),
        "error_code": getattr(details.error_code, "value", details.error_code),
    }


def await_value(client, wanted):
    start = time.monotonic()
    deadline = start + wanted["timeout_ms"] / 1000
    while True:
        seen = ask(client, wanted["question"])["value"] == wanted["expect"]
        if seen or time.monotonic() > deadline:
            return {"seen": seen, "ms": round((time.monotonic() - start) * 1000)}
        time.sleep(0.005)


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    api.set_provider(provider(mode, host, port))
    client = api.get_client()
    wait_ready(client)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "ask" in request:
            answer = {"answers": [ask(client, question) for question in request["ask"]]}
        else:
            answer = await_value(client, request["await"])
        print(json.dumps(answer), flush=True)
    api.shutdown()


if __name__ == "__main__":
    main()
