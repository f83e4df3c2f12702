"""Checks Gatehouse's OpenAPI description against a live `gatehouse serve`, with schemathesis.

Usage: openapi_check.py SPEC BASE_URL [--max-examples N] [--seed N] [--cookie TOKEN] [-- SCHEMATHESIS_ARGS...]
  SPEC      the OpenAPI file (Sources/GatehouseServer/Resources/openapi.yaml)
  BASE_URL  a gatehouse serving its own API there (http://127.0.0.1:PORT), on a database
            of its own: the check signs up a user and fuzzes every endpoint

Needs schemathesis (pinned: 4.32.5) importable, e.g. installed with
`pip install --target DIR schemathesis==4.32.5` and run with PYTHONPATH=DIR; it is run as
`python3 -m schemathesis.cli`, so no console script is needed. openapi-spec-validator is used
too when it is importable.

1. The file must be valid OpenAPI 3.1: the OpenAPI 3.1 meta-schema (schemathesis's copy,
   and openapi-spec-validator's when present), every Schema Object against JSON Schema
   2020-12, and every local `$ref` must resolve. When the server answers GET /openapi.yaml
   with 200, that document must be the same as the file.
2. A fresh account is signed up (or `--cookie` is used) and its session cookie given to
   schemathesis as the `sessionCookie` security scheme (its name taken from the server's
   `Set-Cookie`, so `cookie.secure` may be on or off).
3. schemathesis runs every phase with every check but two (see EXCLUDED_CHECKS), a fixed
   seed and bounded examples, in three passes, so that no operation meets a session that
   another one ended: every operation but those that end the session; then the sessions
   list and revoking sessions (schemathesis reads the current session's id from the list
   and revokes it); then login (which replaces the session it is sent with), logout and logout-all, with a second
   new account's session (both
   accounts are signed up first: schemathesis's own signups spend `abuse.signup_per_ip`).

Exits 0 when the file is valid and no check failed; else 1, with the failures printed.
"""

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

PINNED_SCHEMATHESIS = "4.32.5"
SCHEME = "sessionCookie"

# Every check but:
# - unsupported_method: Gatehouse answers 404 `not_found`, not 405, to a method a path does
#   not serve (README, "API": "a known path with another method"); a documented choice.
# - positive_data_acceptance: schema-valid input is refused by rules a schema cannot state
#   (common passwords, NFKC lengths, tokens that must exist, codes that must be right).
EXCLUDED_CHECKS = ["unsupported_method", "positive_data_acceptance"]

# Invalid input is refused with these. 303 is how an HTML form without a session (or with
# no valid CSRF token and no session) is refused: to the login page, nothing done. 413 is
# an oversize body.
NEGATIVE_REJECTION_STATUSES = ["303", "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

# Operations that end the caller's session, each group in a pass of its own, after the rest.
REVOKING = r"^/auth/sessions(/\{id\}(/revoke)?)?$"
# A login sent with a session cookie replaces that session (no fixation): it ends the caller's
# session too, so it goes in the last pass.
LOGGING_OUT = r"^/auth/(logout(-all)?|login(/mfa)?)$"


def fail(message):
    print(f"openapi_check: {message}", file=sys.stderr)
    sys.exit(1)


# MARK: The file


def validate_spec(path):
    """Every problem found in the file, as text lines (none: valid)."""
    problems = []
    with open(path, encoding="utf-8") as handle:
        try:
            spec = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            return [f"not YAML: {error}"]
    if not isinstance(spec, dict):
        return ["not a YAML mapping"]
    if not re.fullmatch(r"3\.1\.\d+", str(spec.get("openapi", ""))):
        problems.append(f"openapi is {spec.get('openapi')!r}, not 3.1.x")

    try:
        from schemathesis.specs.openapi.adapter.validators import validate_v3
    except ImportError:
        validate_v3 = None
        print("openapi_check: schemathesis's OpenAPI 3.1 meta-schema not found; skipped", file=sys.stderr)
    if validate_v3 is not None:
        try:
            validate_v3(spec)
        except Exception as error:  # jsonschema_rs.ValidationError
            problems.append(f"OpenAPI 3.1 meta-schema: {error}")

    try:
        from openapi_spec_validator import validate as osv_validate
    except ImportError:
        osv_validate = None
    if osv_validate is not None:
        try:
            osv_validate(spec)
        except Exception as error:
            problems.append(f"openapi-spec-validator: {error}")

    import jsonschema_rs

    for where, schema in schema_objects(spec):
        try:
            jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema", **schema} if isinstance(schema, dict) else schema)
        except Exception as error:
            problems.append(f"{where}: not a JSON Schema 2020-12 schema: {str(error).splitlines()[0]}")

    for where, ref in references(spec):
        if not ref.startswith("#/"):
            problems.append(f"{where}: only local $refs are expected, got {ref}")
        elif resolve(spec, ref) is None:
            problems.append(f"{where}: $ref {ref} does not resolve")
    return problems


def schema_objects(spec):
    """(where, Schema Object) for every schema in components and under a `schema` key."""
    for name, schema in (spec.get("components", {}).get("schemas") or {}).items():
        yield f"components/schemas/{name}", schema

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "schema" and isinstance(value, (dict, bool)):
                    yield f"{where}/schema", value
                elif key != "schemas":
                    yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}/{index}")

    yield from walk(spec.get("paths", {}), "paths")
    for section in ("parameters", "headers", "responses", "requestBodies"):
        yield from walk(spec.get("components", {}).get(section, {}), f"components/{section}")


def references(node, where="#"):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from references(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, f"{where}/{index}")


def resolve(spec, ref):
    node = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# MARK: The server


def request(method, url, body=None, headers=None):
    """(status, headers as a list of pairs, body bytes) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, response.headers.items(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.items(), error.read()


def wait_until_up(base_url, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, _, _ = request("GET", base_url + "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            fail(f"{base_url}/healthz did not answer 200 within {seconds} s")
        time.sleep(0.2)


def session_cookie(base_url):
    """(cookie name, token) of a new account's session."""
    email = f"openapi-check-{secrets.token_hex(6)}@example.com"
    password = "openapi check " + secrets.token_urlsafe(12)
    status, headers, body = request("POST", base_url + "/auth/signup", {"email": email, "password": password})
    if status != 201:
        fail(f"signup for the check answered {status}: {body[:300]!r} (pass --cookie TOKEN to use an existing session)")
    for name, value in headers:
        if name.lower() == "set-cookie":
            match = re.match(r"\s*((?:__Host-)?[!#$%&'*+.^_`|~0-9A-Za-z-]+)=([A-Za-z0-9_-]{43});", value)
            if match:
                return match.group(1), match.group(2)
    fail("signup answered 201 without a session cookie")


def served_spec_matches(spec_path, base_url):
    """Problems with GET /openapi.yaml: none when it is 200 and the file's document, or not 200 (schemathesis reports that)."""
    status, _, body = request("GET", base_url + "/openapi.yaml")
    if status != 200:
        return []
    with open(spec_path, encoding="utf-8") as handle:
        expected = yaml.safe_load(handle)
    try:
        served = yaml.safe_load(body)
    except yaml.YAMLError as error:
        return [f"GET /openapi.yaml is not YAML: {error}"]
    if served != expected:
        return ["GET /openapi.yaml serves another document than the file"]
    return []


# MARK: schemathesis


def toml_string(value):
    return json.dumps(value)


def write_config(directory, token):
    path = os.path.join(directory, "schemathesis.toml")
    statuses = ", ".join(toml_string(s) for s in NEGATIVE_REJECTION_STATUSES)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(
            "[auth.openapi.%s]\napi_key = %s\n\n[checks.negative_data_rejection]\nexpected-statuses = [%s]\n"
            % (SCHEME, toml_string(token), statuses)
        )
    return path


def spec_for_cookie(spec_path, directory, cookie_name):
    """The spec with the security scheme's cookie name set to what the server uses (a copy only if it differs)."""
    with open(spec_path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    scheme = spec["components"]["securitySchemes"][SCHEME]
    if scheme.get("name") == cookie_name:
        return spec_path
    print(f"openapi_check: the server's session cookie is {cookie_name!r}; checking with the scheme's name set to it")
    scheme["name"] = cookie_name
    path = os.path.join(directory, "openapi.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(spec, handle, sort_keys=False, allow_unicode=True)
    return path


def run_schemathesis(label, config, spec_path, base_url, args, selection, directory):
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", config, "--no-color",
        "run", spec_path, "--url", base_url,
        "--checks", "all", "--exclude-checks", ",".join(EXCLUDED_CHECKS),
        "--max-examples", str(args.max_examples), "--seed", str(args.seed),
        "--workers", "1", "--generation-database", "none", "--request-timeout", "10",
        *selection, *args.extra,
    ]
    print(f"openapi_check: {label}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=args.timeout)
    # A failing pass's report goes to stderr, which is what a caller shows when the check fails.
    print(result.stdout, file=sys.stdout if result.returncode == 0 else sys.stderr, flush=True)
    print(f"openapi_check: {label}: exit {result.returncode} in {time.monotonic() - started:.1f} s", flush=True)
    return result.returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("base_url")
    parser.add_argument("--max-examples", type=int, default=30)
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument("--cookie", help="an existing session token instead of a new signup")
    parser.add_argument("--timeout", type=int, default=600, help="seconds for each schemathesis pass")
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.extra = extra  # after --: more `schemathesis run` arguments
    base_url = args.base_url.rstrip("/")

    try:
        import schemathesis
    except ImportError:
        fail("schemathesis is not importable (install it with pip --target DIR and set PYTHONPATH=DIR)")
    version = getattr(schemathesis, "__version__", "?")
    if version != PINNED_SCHEMATHESIS:
        print(f"openapi_check: schemathesis {version}, not the pinned {PINNED_SCHEMATHESIS}", file=sys.stderr)

    problems = validate_spec(args.spec)
    for problem in problems:
        print(f"openapi_check: invalid spec: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"openapi_check: {args.spec} is valid OpenAPI 3.1")

    wait_until_up(base_url)
    problems = served_spec_matches(args.spec, base_url)
    for problem in problems:
        print(f"openapi_check: {problem}", file=sys.stderr)

    # Both sessions before any fuzzing: schemathesis's signups spend `abuse.signup_per_ip`.
    if args.cookie:
        with open(args.spec, encoding="utf-8") as handle:
            cookie_name = yaml.safe_load(handle)["components"]["securitySchemes"][SCHEME]["name"]
        tokens = [args.cookie, args.cookie]
    else:
        cookie_name, first = session_cookie(base_url)
        tokens = [first, session_cookie(base_url)[1]]

    passes = [
        ("pass 1 (all but the session-ending operations)", ["--exclude-path-regex", f"{REVOKING}|{LOGGING_OUT}"]),
        ("pass 2 (sessions: list and revoke)", ["--include-path-regex", REVOKING]),
        ("pass 3 (login, logout, logout-all)", ["--include-path-regex", LOGGING_OUT]),
    ]
    passed = True
    with tempfile.TemporaryDirectory(prefix="openapi-check-") as directory:
        spec_path = spec_for_cookie(os.path.abspath(args.spec), directory, cookie_name)
        for index, (label, selection) in enumerate(passes):
            # Pass 2 may have revoked the first account's session: pass 3 logs out of the second's.
            config = write_config(directory, tokens[1] if index == 2 else tokens[0])
            passed = run_schemathesis(label, config, spec_path, base_url, args, selection, directory) and passed

    if problems or not passed:
        print("openapi_check: FAILED", file=sys.stderr)
        sys.exit(1)
    print("openapi_check: passed")


if __name__ == "__main__":
    main()
