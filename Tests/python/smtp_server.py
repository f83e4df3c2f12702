"""A real SMTP server for Gatehouse's tests (aiosmtpd), driven by Tests/GatehouseTestSupport/SMTPServer.swift.

Each accepted message becomes <dir>/<n>.json (envelope: sender, recipients, AUTH login and
mechanism) and then <dir>/<n>.eml (the data as received, dot-stuffing undone), each written
to a temporary name and renamed, so that a reader that sees an .eml sees a whole message and
its envelope. Numbers continue after a restart on the same directory.
"""

import argparse
import json
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, directory, fail_with, refuse_ehlo):
        self.directory = directory
        self.fail_with = fail_with
        self.refuse_ehlo = refuse_ehlo
        names = [name for name in os.listdir(directory) if name.endswith(".eml")]
        self.next = max([int(name[:-4]) for name in names], default=0) + 1

    def refusal(self):
        status = "4.3.0" if self.fail_with < 500 else "5.7.1"
        return f"{self.fail_with} {status} refused by the test server"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if self.refuse_ehlo:
            # An old server: only HELO.
            session.extended_smtp = False
            return ["502 5.5.1 EHLO not implemented"]
        # With this hook defined, aiosmtpd leaves recording the greeting to it.
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.fail_with:
            return self.refusal()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail_with:
            return self.refusal()
        number = self.next
        self.next += 1
        envelope_fields = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "login": getattr(session, "gatehouse_login", None),
            "mechanism": getattr(session, "gatehouse_mechanism", None),
        }
        self.write(f"{number}.json", json.dumps(envelope_fields).encode())
        self.write(f"{number}.eml", envelope.original_content)
        return "250 Message accepted"

    def write(self, name, data):
        temporary = os.path.join(self.directory, f".{name}.tmp")
        with open(temporary, "wb") as file:
            file.write(data)
        os.rename(temporary, os.path.join(self.directory, name))


def authenticator(username, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        valid = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == username.encode()
            and auth_data.password == password.encode()
        )
        if valid:
            session.gatehouse_login = username
            session.gatehouse_mechanism = mechanism
        return AuthResult(success=valid, handled=False)

    return authenticate


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--security", choices=["plain", "starttls", "tls"], default="plain")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--mechanisms", default="PLAIN,LOGIN")
    parser.add_argument("--fail-with", type=int, default=0)
    parser.add_argument("--refuse-ehlo", action="store_true")
    arguments = parser.parse_args()

    options = {"hostname": "127.0.0.1", "port": arguments.port, "server_hostname": "localhost", "ready_timeout": 60}
    if arguments.security != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(arguments.cert, arguments.key)
        if arguments.security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        else:
            options.update(ssl_context=context)
    if arguments.username:
        offered = set(arguments.mechanisms.split(","))
        options.update(
            authenticator=authenticator(arguments.username, arguments.password),
            auth_required=True,
            # Over plain text AUTH is still offered: the client must refuse on its own.
            auth_require_tls=arguments.security == "starttls",
            auth_exclude_mechanism=[name for name in ("PLAIN", "LOGIN") if name not in offered],
        )

    controller = Controller(Handler(arguments.dir, arguments.fail_with, arguments.refuse_ehlo), **options)
    controller.start()
    # What the tests wait for: the port is this server's (a connection alone could reach
    # another process that took the port first).
    print(f"ready {arguments.port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
